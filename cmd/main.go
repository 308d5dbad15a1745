// Command manager runs the NodeAgentSet controller.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/tools/leaderelection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/nodeagentset/nodeagentset/internal/controller/nodeagentset"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// options are the command line of the manager.
type options struct {
	manager      nodeagentset.Config
	kubeAPIQPS   float64
	kubeAPIBurst int
	memoryLimit  int64
	zap          zap.Options
}

func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	m := &o.manager
	fs.StringVar(&m.MetricsBindAddress, "metrics-bind-address", "0", "Address the metrics endpoint binds to, e.g. :8443 (HTTPS) or :8080 (HTTP); 0 disables it.")
	fs.BoolVar(&m.MetricsSecure, "metrics-secure", true, "Serve metrics over HTTPS, with authentication and authorization through the API server.")
	fs.BoolVar(&m.EnableHTTP2, "enable-http2", false, "Enable HTTP/2 for the metrics server (off by default: HTTP/2 Rapid Reset and Stream Cancellation CVEs).")
	fs.StringVar(&m.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz endpoints bind to.")
	fs.StringVar(&m.PprofBindAddress, "pprof-bind-address", "", "Address a net/http/pprof endpoint binds to, e.g. 127.0.0.1:6060; "+
		"empty disables it (the default).")
	fs.BoolVar(&m.LeaderElection, "leader-elect", false, "Elect a leader, so that only one replica reconciles at a time.")
	fs.StringVar(&m.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election lease (default: the pod's namespace).")
	fs.DurationVar(&m.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a replica waits, after it last saw the leader "+
		"renew the lease, before it takes the lease over (upstream's default).")
	fs.DurationVar(&m.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader keeps trying to renew the lease "+
		"before it gives up leadership and exits; less than the lease duration (upstream's default).")
	fs.DurationVar(&m.RetryPeriod, "leader-elect-retry-period", 2*time.Second, "How often a replica tries to acquire or renew the lease "+
		"(upstream's default).")
	fs.IntVar(&m.MaxConcurrentReconciles, "max-concurrent-reconciles", 2, "How many NodeAgentSets are reconciled in parallel "+
		"(upstream --concurrent-daemonset-syncs defaults to 2).")
	fs.DurationVar(&m.ReconcileTimeout, "reconcile-timeout", nodeagentset.DefaultReconcileTimeout, "Longest a pass over one NodeAgentSet may run; "+
		"/healthz fails when one runs a minute past it.")
	fs.Float64Var(&o.kubeAPIQPS, "kube-api-qps", -1, "Client-side limit of API requests per second; "+
		"negative: no limit (controller-runtime's default, server-side priority and fairness applies).")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", 0, "Client-side burst of API requests above --kube-api-qps; 0 keeps the client default.")
	fs.Int64Var(&o.memoryLimit, "memory-limit-bytes", 0, "The container's memory limit (config/manager passes limits.memory); "+
		"the Go runtime's soft limit is set to 90% of it unless GOMEMLIMIT is set. 0: no soft limit.")
	fs.Func("readiness-gate-taint-prefixes", "Comma-separated taint key prefixes a NodeAgentSet's nodeReadinessGate may lift "+
		"(default "+planner.DefaultGateTaintPrefix+"); keys outside them are refused. readiness.k8s.io/ works with Kubernetes' "+
		"node readiness controller.", func(v string) error {
		m.ReadinessGateTaintPrefixes = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				m.ReadinessGateTaintPrefixes = append(m.ReadinessGateTaintPrefixes, p)
			}
		}
		if len(m.ReadinessGateTaintPrefixes) == 0 {
			return errors.New("at least one prefix is required")
		}
		return nil
	})
	o.zap = zap.Options{Development: false, TimeEncoder: zapcore.ISO8601TimeEncoder}
	o.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	return o, validateLeaderElection(m)
}

// validateLeaderElection refuses timings the leader elector would refuse only once the manager starts:
// the renew deadline must be shorter than the lease duration, and longer than the retry period stretched
// by client-go's jitter (leaderelection.JitterFactor), by the same test client-go applies.
func validateLeaderElection(m *nodeagentset.Config) error {
	if m.RetryPeriod <= 0 {
		return fmt.Errorf("--leader-elect-retry-period must be positive, got %s", m.RetryPeriod)
	}
	if m.LeaseDuration <= m.RenewDeadline {
		return fmt.Errorf("--leader-elect-lease-duration (%s) must be longer than --leader-elect-renew-deadline (%s)", m.LeaseDuration, m.RenewDeadline)
	}
	if m.RenewDeadline <= time.Duration(leaderelection.JitterFactor*float64(m.RetryPeriod)) {
		return fmt.Errorf("--leader-elect-renew-deadline (%s) must be longer than %g times --leader-elect-retry-period (%s)",
			m.RenewDeadline, leaderelection.JitterFactor, m.RetryPeriod)
	}
	return nil
}

func main() {
	opts, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.zap)))
	if err := run(opts); err != nil {
		ctrl.Log.Error(err, "Manager exited")
		os.Exit(1)
	}
}

func run(opts options) error {
	if limit, ok := nodeagentset.SoftMemoryLimit(opts.memoryLimit, os.Getenv("GOMEMLIMIT")); ok {
		debug.SetMemoryLimit(limit)
	}
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	restConfig.QPS = float32(opts.kubeAPIQPS)
	if opts.kubeAPIBurst > 0 {
		restConfig.Burst = opts.kubeAPIBurst
	}
	opts.manager.MetricsRegistry = metrics.Registry
	mgr, fence, err := nodeagentset.NewManager(restConfig, opts.manager)
	if err != nil {
		return err
	}
	opts.manager.Fence = fence
	ctx := ctrl.SetupSignalHandler()
	if _, err := nodeagentset.SetupWithManager(ctx, mgr, opts.manager); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting manager", "softMemoryLimit", debug.SetMemoryLimit(-1), "reconcileTimeout", opts.manager.ReconcileTimeout.String())
	return mgr.Start(ctx)
}
