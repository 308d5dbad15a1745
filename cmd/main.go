// Command manager runs the NodeAgentSet controller.
package main

import (
	"crypto/tls"
	"flag"
	"os"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/controller/nodeagentset"
)

// options are the command line of the manager.
type options struct {
	metricsAddr             string
	metricsSecure           bool
	enableHTTP2             bool
	probeAddr               string
	pprofAddr               string
	leaderElect             bool
	leaderElectionNamespace string
	kubeAPIQPS              float64
	kubeAPIBurst            int
	maxConcurrentReconciles int
	zap                     zap.Options
}

func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "0", "Address the metrics endpoint binds to, e.g. :8443 (HTTPS) or :8080 (HTTP); 0 disables it.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS, with authentication and authorization through the API server.")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false, "Enable HTTP/2 for the metrics server (off by default: HTTP/2 Rapid Reset and Stream Cancellation CVEs).")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz endpoints bind to.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address a net/http/pprof endpoint binds to, e.g. 127.0.0.1:6060; empty disables it (the default).")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so that only one replica reconciles at a time.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election lease (default: the pod's namespace).")
	fs.Float64Var(&o.kubeAPIQPS, "kube-api-qps", -1, "Client-side limit of API requests per second; "+
		"negative: no limit (controller-runtime's default, server-side priority and fairness applies).")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", 0, "Client-side burst of API requests above --kube-api-qps; 0 keeps the client default.")
	fs.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", 2, "How many NodeAgentSets are reconciled in parallel "+
		"(upstream --concurrent-daemonset-syncs defaults to 2).")
	o.zap = zap.Options{Development: false, TimeEncoder: zapcore.ISO8601TimeEncoder}
	o.zap.BindFlags(fs)
	return o, fs.Parse(args)
}

func main() {
	opts, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.zap)))
	if err := run(opts); err != nil {
		ctrl.Log.Error(err, "Manager exited")
		os.Exit(1)
	}
}

func newScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(nasv1alpha1.AddToScheme(scheme))
	return scheme
}

// stripNode drops what the controller never reads from a cached node, the bulk of a node object: the
// image list, volume bookkeeping and managed fields. Labels, taints, conditions and addresses stay.
func stripNode(obj any) (any, error) {
	if node, ok := obj.(*corev1.Node); ok {
		node.ManagedFields = nil
		node.Status.Images = nil
		node.Status.VolumesInUse = nil
		node.Status.VolumesAttached = nil
	}
	return obj, nil
}

func run(opts options) error {
	setupLog := ctrl.Log.WithName("setup")
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	restConfig.QPS = float32(opts.kubeAPIQPS)
	if opts.kubeAPIBurst > 0 {
		restConfig.Burst = opts.kubeAPIBurst
	}

	var tlsOpts []func(*tls.Config)
	if !opts.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: opts.metricsAddr, SecureServing: opts.metricsSecure, TLSOpts: tlsOpts}
	if opts.metricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  newScheme(),
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  opts.probeAddr,
		PprofBindAddress:        opts.pprofAddr,
		LeaderElection:          opts.leaderElect,
		LeaderElectionID:        "nodeagentset.apps.nodeagentset.io",
		LeaderElectionNamespace: opts.leaderElectionNamespace,
		// Leaving the lease on shutdown lets the next replica take over at once.
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{
			// managedFields are never read; dropping them saves memory on every cached object.
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Node{}: {Transform: stripNode},
			},
		},
		Client: client.Options{
			Cache: &client.CacheOptions{
				// A reconcile waits until the cache has seen this controller's own writes, so it never
				// plans on a world that misses the pods it just created (docs/design/stale-cache.md).
				EnableReadYourWritesConsistency: ptr.To(true),
				// Namespaces and the like are read seldom; pods, nodes and sets come from the cache.
				DisableFor: []client.Object{&corev1.Namespace{}},
			},
		},
	})
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	if err := nodeagentset.SetupIndexes(ctx, mgr.GetCache()); err != nil {
		return err
	}
	reconciler := nodeagentset.NewReconciler(mgr.GetClient(), mgr.GetCache(), mgr.GetAPIReader(),
		mgr.GetEventRecorder(nodeagentset.ControllerName), clock.RealClock{})
	reconciler.Metrics = nodeagentset.NewMetrics(metrics.Registry)
	if err := reconciler.SetupWithManager(mgr, nodeagentset.Options{MaxConcurrentReconciles: opts.maxConcurrentReconciles}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	setupLog.Info("Starting manager")
	return mgr.Start(ctx)
}
