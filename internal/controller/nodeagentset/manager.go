package nodeagentset

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// LeaderElectionID names the lease the replicas compete for.
const LeaderElectionID = "nodeagentset.apps.nodeagentset.io"

// DefaultReconcileTimeout bounds one pass over a set. A pass over 5,000 nodes that creates every pod at
// a client rate of 50 requests a second takes about 100 s: the bound leaves room for that.
const DefaultReconcileTimeout = 5 * time.Minute

// Config is everything the manager and the controller are built from: cmd/main.go fills it from its
// flags, the integration suites from what they test. Zero values are the defaults.
type Config struct {
	// MetricsBindAddress is where the metrics endpoint listens; "0" or empty disables it.
	MetricsBindAddress string
	// MetricsSecure serves metrics over HTTPS, with authentication and authorization through the API
	// server.
	MetricsSecure bool
	// EnableHTTP2 allows HTTP/2 for the metrics server (off: HTTP/2 Rapid Reset and Stream Cancellation
	// CVEs).
	EnableHTTP2 bool
	// HealthProbeBindAddress is where /healthz and /readyz listen; "0" or empty disables them.
	HealthProbeBindAddress string
	// PprofBindAddress is where net/http/pprof listens; empty disables it.
	PprofBindAddress string

	// LeaderElection elects one replica to reconcile.
	LeaderElection bool
	// LeaderElectionNamespace holds the lease (default: the pod's namespace).
	LeaderElectionNamespace string
	// LeaseDuration, RenewDeadline and RetryPeriod tune the election; zero keeps controller-runtime's
	// defaults (15 s, 10 s, 2 s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration

	// MaxConcurrentReconciles is how many sets are reconciled at once (default 1).
	MaxConcurrentReconciles int
	// ReconcileTimeout bounds one pass (default DefaultReconcileTimeout). /healthz fails when a pass
	// runs longer than this plus stuckGrace: the worker no longer answers its context.
	ReconcileTimeout time.Duration
	// SkipControllerNameValidation lets one process run several managers (tests of leader handover);
	// controller names are otherwise unique per process, for their metrics.
	SkipControllerNameValidation bool

	// ReadinessGateTaintPrefixes are the taint key prefixes a set's nodeReadinessGate may lift; empty
	// means planner.DefaultGateTaintPrefix.
	ReadinessGateTaintPrefixes []string

	// MetricsRegistry receives the per-set series; nil records none.
	MetricsRegistry prometheus.Registerer
	// Clock is the controller's time; nil is the real clock.
	Clock clock.Clock
	// Fence is the lease fence NewManager returns with leader election: passes write only while this
	// replica is sure it leads (fence.go). Nil: passes are not fenced.
	Fence *LeaseFence
}

// NewScheme knows the built-in types and NodeAgentSets.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(nasv1alpha1.AddToScheme(scheme))
	return scheme
}

// ManagerOptions are the manager's options for cfg: the scheme, what the cache holds and how it is
// stripped (docs/design/cache.md), read-your-writes reads (docs/design/stale-cache.md), leader
// election, and the metrics, health and pprof endpoints.
func ManagerOptions(cfg Config) ctrl.Options {
	var tlsOpts []func(*tls.Config)
	if !cfg.EnableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: orDisabled(cfg.MetricsBindAddress), SecureServing: cfg.MetricsSecure, TLSOpts: tlsOpts}
	if cfg.MetricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return ctrl.Options{
		Scheme:                  NewScheme(),
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  orDisabled(cfg.HealthProbeBindAddress),
		PprofBindAddress:        cfg.PprofBindAddress,
		LeaderElection:          cfg.LeaderElection,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: cfg.LeaderElectionNamespace,
		// Leaving the lease on shutdown lets the next replica take over at once.
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 nonZero(cfg.LeaseDuration),
		RenewDeadline:                 nonZero(cfg.RenewDeadline),
		RetryPeriod:                   nonZero(cfg.RetryPeriod),
		Cache: cache.Options{
			// managedFields are never read; dropping them saves memory on every cached object.
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Node{}:               {Transform: stripNode},
				&corev1.Pod{}:                {Transform: stripPod},
				&appsv1.ControllerRevision{}: {Transform: stripRevision},
			},
		},
		Client: client.Options{
			Cache: &client.CacheOptions{
				// Writes record their resourceVersion, so that waitForOwnWrites can wait until the
				// cache has seen them (docs/design/stale-cache.md).
				EnableReadYourWritesConsistency: ptr.To(true),
				// Namespaces and the like are read seldom; pods, nodes and sets come from the cache.
				DisableFor: []client.Object{&corev1.Namespace{}},
			},
		},
	}
}

// orDisabled maps an empty address to "0", controller-runtime's "do not listen".
func orDisabled(addr string) string {
	if addr == "" {
		return "0"
	}
	return addr
}

func nonZero(d time.Duration) *time.Duration {
	if d == 0 {
		return nil
	}
	return &d
}

// SetupWithManager builds the reconciler and registers it with mgr (built from ManagerOptions(cfg)):
// the cache indexes, the controller and its watches (sets on spec changes, their ControllerRevisions,
// pods to their controlling set or for orphans the sets that may adopt them, nodes on label and taint
// changes), the leader handover wait (handover.go), the lease fence (fence.go), the stuck-worker health
// check (guard.go), and the
// garbage collection of the failed-pod backoff.
func SetupWithManager(ctx context.Context, mgr ctrl.Manager, cfg Config) (*Reconciler, error) {
	if err := SetupIndexes(ctx, mgr.GetCache()); err != nil {
		return nil, err
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	r := NewReconciler(mgr.GetClient(), mgr.GetCache(), mgr.GetAPIReader(), mgr.GetEventRecorder(ControllerName), clk)
	if cfg.MetricsRegistry != nil {
		r.Metrics = NewMetrics(cfg.MetricsRegistry)
	}
	r.GatePrefixes = cfg.ReadinessGateTaintPrefixes
	timeout := cfg.ReconcileTimeout
	if timeout == 0 {
		timeout = DefaultReconcileTimeout
	}
	handover := newHandover(mgr.GetAPIReader(), r.stores)
	r.fence = cfg.Fence
	guarded := newGuardedReconciler(r, handover, timeout, clk)
	guarded.fence = cfg.Fence
	if err := mgr.Add(handover); err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(r.collectGarbage)); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("reconcilers", guarded.healthy); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&nasv1alpha1.NodeAgentSet{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, canaryDecisionChanged()))).
		Owns(&appsv1.ControllerRevision{}).
		Watches(&nasv1alpha1.NodeAgentSet{}, gateHandler{reader: mgr.GetCache()}).
		WatchesRawSource(source.Kind(mgr.GetCache(), &corev1.Pod{}, podHandler{reader: mgr.GetCache(), throttle: newWakeThrottle(podEventDelay, clk)})).
		WatchesRawSource(source.Kind(mgr.GetCache(), &corev1.Node{}, nodeHandler{reader: mgr.GetCache()}, nodeSchedulingChanged())).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: cfg.MaxConcurrentReconciles,
			SkipNameValidation:      ptr.To(cfg.SkipControllerNameValidation),
		}).
		Complete(guarded)
	return r, err
}

// SoftMemoryLimit is the Go runtime's soft memory limit for a container whose memory limit is
// hardLimit bytes: 90% of it, so the garbage collector works harder before the kernel's OOM killer
// acts, leaving a tenth for what the limit counts and the runtime does not (page cache, fragmentation).
// It returns false when there is no limit, or when GOMEMLIMIT (goMemLimitEnv) is set: the runtime has
// applied that one already and it wins (docs/design/cache.md).
func SoftMemoryLimit(hardLimit int64, goMemLimitEnv string) (int64, bool) {
	if hardLimit <= 0 || goMemLimitEnv != "" {
		return 0, false
	}
	return hardLimit / 10 * 9, true
}
