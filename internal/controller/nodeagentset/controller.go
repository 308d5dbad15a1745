// Package nodeagentset holds the NodeAgentSet reconciler: fetch, observe, claim, plan, apply, write
// status once. Decisions live in internal/planner; this package reads the cache and writes the API.
package nodeagentset

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// ControllerName names the controller in events, logs, metrics and as the field manager of status.
const ControllerName = "nodeagentset-controller"

// Failed-pod backoff per (set generation, node), as kube-controller-manager wires it (rule 30).
const (
	failedPodBackoffInitial = time.Second
	failedPodBackoffMax     = 15 * time.Minute
)

// Reconciler keeps one agent pod on every eligible node for each NodeAgentSet.
type Reconciler struct {
	// Client reads from the cache (waiting for our own writes to show up) and writes to the API.
	Client client.Client
	// APIReader reads around the cache, for the few checks that must be live.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.Clock
	// Metrics, when set, receive the per-set series.
	Metrics *Metrics
	// GatePrefixes are the taint key prefixes a readiness gate may lift (--readiness-gate-taint-prefixes);
	// empty means planner.DefaultGateTaintPrefix.
	GatePrefixes []string

	stores stores
	memory *memory
	// fence, when set, lets apply write only while this replica is sure it leads.
	fence *LeaseFence
}

// NewReconciler builds a reconciler; clk is injected so tests control time. informers is the cache
// behind c (the manager's GetCache()), with SetupIndexes run on it: nodes and pods are read from its
// stores.
func NewReconciler(c client.Client, informers cache.Informers, apiReader client.Reader, recorder events.EventRecorder, clk clock.Clock) *Reconciler {
	return &Reconciler{
		Client:    c,
		stores:    stores{informers: informers},
		APIReader: apiReader,
		Recorder:  identityRecorder{recorder},
		Clock:     clk,
		memory:    newMemory(),
	}
}

// +kubebuilder:rbac:groups=apps.nodeagentset.io,resources=nodeagentsets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=apps.nodeagentset.io,resources=nodeagentsets/status,verbs=get;update;patch
// The pods and revisions the controller creates carry an owner reference with blockOwnerDeletion:
// the OwnerReferencesPermissionEnforcement admission plugin (OpenShift, hardened clusters) lets only
// those who may update the owner's finalizers set it (upstream's daemon-set-controller role has
// daemonsets/finalizers update too).
// +kubebuilder:rbac:groups=apps.nodeagentset.io,resources=nodeagentsets/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile runs one pass over a set: fetch, observe, claim pods, sync revisions, plan (checking the
// template when the plan asks), apply, prune history, and one status write. It requeues when the plan
// says the world changes without an event, or sooner when the status write was held back.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	set, err := r.fetch(ctx, req.NamespacedName)
	if set == nil || err != nil {
		return ctrl.Result{}, err
	}
	if mismatch := planner.SelectorMismatch(set); mismatch != "" {
		return ctrl.Result{}, r.writeSelectorMismatch(ctx, set, mismatch)
	}
	obs, err := r.observe(ctx, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	pods, err := r.claimPods(ctx, set, obs)
	if err != nil {
		return ctrl.Result{}, err
	}
	history, err := r.syncRevisions(ctx, set, pods)
	if errors.Is(err, errNamespaceTerminating) {
		// As upstream ignores pod creates refused in a terminating namespace.
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	plan, checkErr := r.plan(ctx, set, history, obs, pods)
	err = errors.Join(checkErr, r.apply(ctx, set, history.hash(), plan), r.applyGate(ctx, set, plan.Gate))
	if err == nil {
		err = r.cleanupHistory(ctx, set, history, pods)
	}
	statusWait, statusErr := r.writeStatus(ctx, set, plan, history.hash(), err == nil)
	if err := errors.Join(err, statusErr); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: sooner(plan.RequeueAfter, statusWait)}, nil
}

// fetch reads the set; nil when there is nothing to reconcile: the set is gone (and forgotten), being
// deleted, or selects every pod.
func (r *Reconciler) fetch(ctx context.Context, key types.NamespacedName) (*nasv1alpha1.NodeAgentSet, error) {
	set := &nasv1alpha1.NodeAgentSet{}
	if err := r.Client.Get(ctx, key, set); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(key)
		}
		return nil, client.IgnoreNotFound(err)
	}
	if set.DeletionTimestamp != nil {
		// The garbage collector removes the pods through their owner references; the nodes a
		// Continuous readiness gate tainted are released first.
		return nil, r.finalizeGate(ctx, set)
	}
	if isEmptySelector(set.Spec.Selector) {
		// The schema forbids it; this guards objects stored before the rule existed.
		r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, EventSelectingAll, "Sync",
			"This NodeAgentSet is selecting all pods. A non-empty selector is required.")
		return nil, nil
	}
	return set, nil
}

// forget drops everything kept about a set that no longer exists: its memory and its metric series.
func (r *Reconciler) forget(key types.NamespacedName) {
	r.memory.forget(key)
	r.Metrics.forget(key)
}

// plan computes the plan for the pass. When it asks for a template check, plan runs the check,
// remembers the verdict and plans again with it: the plan that is carried out is always the
// planner's own. A check that failed is returned as an error, with a plan that deletes but does not
// create.
func (r *Reconciler) plan(ctx context.Context, set *nasv1alpha1.NodeAgentSet, history *revisions, obs *observation,
	pods []*corev1.Pod) (planner.Plan, error) {
	now, hash := r.Clock.Now(), history.hash()
	older, olderOverrides := olderRevisions(set, history)
	in := planner.Input{
		Set: set, Hash: hash, Nodes: obs.nodes, Pods: pods, Now: now, Gate: obs.gate,
		RolloutStartedAt:      history.rolloutStartedAt(),
		FailedPodBackoffUntil: r.memory.failedPodBackoff(set, now),
		Template:              r.memory.templateVerdict(set, hash),
		Revisions:             older,
		RevisionOverrides:     olderOverrides,
	}
	plan := planner.Compute(in)
	if plan.CheckTemplateOn == "" {
		return plan, nil
	}
	var err error
	in.Template, err = r.checkTemplate(ctx, set, hash, plan)
	return planner.Compute(in), err
}

// sooner is the earlier of two requeue delays, where 0 means none.
func sooner(a, b time.Duration) time.Duration {
	if b > 0 && (a == 0 || b < a) {
		return b
	}
	return a
}

func isEmptySelector(sel *metav1.LabelSelector) bool {
	return sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0)
}

// collectGarbage drops expired failed-pod backoff entries, once a minute.
func (r *Reconciler) collectGarbage(ctx context.Context) error {
	wait.UntilWithContext(ctx, func(context.Context) { r.memory.collectGarbage(r.Clock.Now()) }, time.Minute)
	return nil
}
