// Package nodeagentset holds the NodeAgentSet reconciler: fetch, observe, claim, plan, apply, write
// status once. Decisions live in internal/planner; this package reads the cache and writes the API.
package nodeagentset

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// ControllerName names the controller in events, logs, metrics and as the field manager of status.
const ControllerName = "nodeagentset-controller"

// Failed-pod backoff per (set, generation, node), as kube-controller-manager wires it (rule 30).
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

	stores       stores
	failedPods   *flowcontrol.Backoff
	templates    *templateChecker
	statusWrites *statusWrites
	slowStart    *slowStartWindows
}

// NewReconciler builds a reconciler; clk is injected so tests control time. informers is the cache
// behind c (the manager's GetCache()), with SetupIndexes run on it: nodes and pods are read from its
// stores.
func NewReconciler(c client.Client, informers cache.Informers, apiReader client.Reader, recorder events.EventRecorder, clk clock.Clock) *Reconciler {
	return &Reconciler{
		Client:       c,
		stores:       stores{informers: informers},
		APIReader:    apiReader,
		Recorder:     identityRecorder{recorder},
		Clock:        clk,
		failedPods:   flowcontrol.NewFakeBackOff(failedPodBackoffInitial, failedPodBackoffMax, clk),
		templates:    newTemplateChecker(c, clk),
		statusWrites: newStatusWrites(),
		slowStart:    newSlowStartWindows(),
	}
}

// +kubebuilder:rbac:groups=apps.nodeagentset.io,resources=nodeagentsets,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps.nodeagentset.io,resources=nodeagentsets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile runs one pass over a set: fetch, observe, claim pods, sync revisions, plan, apply, prune
// history, and one status write.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	set := &nasv1alpha1.NodeAgentSet{}
	if err := r.Client.Get(ctx, req.NamespacedName, set); err != nil {
		if apierrors.IsNotFound(err) {
			r.templates.forget(req.NamespacedName)
			r.statusWrites.forget(req.NamespacedName)
			r.slowStart.forget(req.NamespacedName)
			r.Metrics.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if set.DeletionTimestamp != nil {
		// The garbage collector removes the pods through their owner references.
		return ctrl.Result{}, nil
	}
	if isEmptySelector(set.Spec.Selector) {
		// The schema forbids it; this guards objects stored before the rule existed.
		r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, EventSelectingAll, "Sync",
			"This NodeAgentSet is selecting all pods. A non-empty selector is required.")
		return ctrl.Result{}, nil
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
	hash := history.hash()
	now := r.Clock.Now()
	plan := planner.Compute(planner.Input{
		Set: set, Hash: hash, Nodes: obs.nodes, Pods: pods, Now: now,
		RolloutStartedAt:      history.rolloutStartedAt(),
		FailedPodBackoffUntil: r.failedPodBackoff(set, pods, now),
	})

	verdict, applyErr := r.carryOut(ctx, set, hash, &plan)
	if applyErr == nil {
		applyErr = r.cleanupHistory(ctx, set, history, pods)
	}
	statusWait, statusErr := r.writeStatus(ctx, set, statusInput{
		set: set, plan: plan, hash: hash, synced: applyErr == nil, template: verdict, now: metav1.NewTime(now),
	})
	if err := errors.Join(applyErr, statusErr); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: sooner(requeueAfter(set, plan, verdict, now), statusWait)}, nil
}

// carryOut checks the template with the API server when the plan creates pods, then applies the plan.
// A rejected template creates nothing; its deletes still happen. It returns the latest verdict on the
// template, nil when none was needed.
func (r *Reconciler) carryOut(ctx context.Context, set *nasv1alpha1.NodeAgentSet, hash string, plan *planner.Plan) (*templateVerdict, error) {
	if plan.SurgeBlockedByHostPort && !plan.Rollout.Complete {
		r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, EventSurgeBlockedByHostPort, "Update",
			"The template binds host ports %v, so a second pod cannot run next to the old one: maxSurge is applied "+
				"as delete-then-create with the same budget as maxUnavailable", planner.HostPorts(&set.Spec.Template.Spec))
	}
	var verdict *templateVerdict
	if len(plan.Creates) > 0 {
		v, err := r.templates.check(ctx, set, hash, plan.Creates[0])
		if err != nil {
			return nil, fmt.Errorf("dry-run create of the pod template: %w", err)
		}
		verdict = &v
		if !v.accepted {
			r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, EventFailedCreate, "Create", "Error creating: %s", v.message)
			plan.Creates = nil
		}
	} else if v, ok := r.templates.cached(set, hash); ok {
		verdict = &v
	}
	err := r.apply(ctx, set, hash, *plan)
	if verdict != nil {
		// A real create may have found the template rejected after all (an admission policy that
		// dry-run did not trip): report the latest verdict.
		if v, ok := r.templates.cached(set, hash); ok {
			verdict = &v
		}
	}
	return verdict, err
}

// requeueAfter is when to look again without an event: a backoff or minReadySeconds expiring, the
// progress deadline of a rollout passing, or a rejected template's recheck.
func requeueAfter(set *nasv1alpha1.NodeAgentSet, plan planner.Plan, verdict *templateVerdict, now time.Time) time.Duration {
	after := plan.RequeueAfter
	if verdict != nil && !verdict.accepted {
		after = sooner(after, templateRecheckInterval)
	}
	if deadline, ok := progressDeadline(set, plan.Rollout); ok && deadline.After(now) {
		// A second late, so that the pass that wakes up finds the deadline passed.
		after = sooner(after, deadline.Sub(now)+time.Second)
	}
	return after
}

// sooner is the earlier of two requeue delays, where 0 means none.
func sooner(a, b time.Duration) time.Duration {
	if b > 0 && (a == 0 || b < a) {
		return b
	}
	return a
}

// failedPodBackoff returns, for each node with a failed pod, until when its deletion must wait.
func (r *Reconciler) failedPodBackoff(set *nasv1alpha1.NodeAgentSet, pods []*corev1.Pod, now time.Time) map[string]time.Time {
	var out map[string]time.Time
	for _, pod := range pods {
		if pod.Status.Phase != corev1.PodFailed {
			continue
		}
		node, ok := planner.TargetNodeName(pod)
		if !ok {
			continue
		}
		key := failedPodBackoffKey(set, node)
		if r.failedPods.IsInBackOffSinceUpdate(key, now) {
			if out == nil {
				out = map[string]time.Time{}
			}
			out[node] = now.Add(r.failedPods.Get(key))
		}
	}
	return out
}

// recordFailedPodDeletion starts or doubles the backoff of a node's failed pods.
func (r *Reconciler) recordFailedPodDeletion(set *nasv1alpha1.NodeAgentSet, node string) {
	r.failedPods.Next(failedPodBackoffKey(set, node), r.Clock.Now())
}

// failedPodBackoffKey: a new generation (say, a fixed template) starts a fresh backoff.
func failedPodBackoffKey(set *nasv1alpha1.NodeAgentSet, node string) string {
	return fmt.Sprintf("%s/%d/%s", set.UID, set.Generation, node)
}

// writeStatus writes the derived status once, and only when it changed, with server-side apply of the
// fields this controller owns: conditions of other types written by others survive. A change of
// counters alone within statusWriteInterval (busyStatusWriteInterval while the set is in motion) of
// the last write waits: writeStatus returns how long, and the pass that comes back then writes the
// counters of its time.
func (r *Reconciler) writeStatus(ctx context.Context, set *nasv1alpha1.NodeAgentSet, in statusInput) (time.Duration, error) {
	updated := computeStatus(in)
	r.Metrics.observeStatus(set, &updated)
	key := client.ObjectKeyFromObject(set)
	// The pass's pod writes took time (seconds at a low client rate): the intervals count from when
	// they and the status writes happened, not from when the pass began.
	now := r.Clock.Now()
	if len(in.plan.Creates) > 0 || len(in.plan.Deletes) > 0 {
		r.statusWrites.podsWritten(key, now)
	}
	if !statusChanged(&set.Status, &updated) {
		return 0, nil
	}
	if delay := r.statusWrites.wait(key, &set.Status, &updated, now); delay > 0 {
		return delay, nil
	}
	apply, err := statusApplyConfiguration(set, &updated)
	if err != nil {
		return 0, err
	}
	if err := r.Client.Status().Apply(ctx, apply, client.FieldOwner(ControllerName), client.ForceOwnership); err != nil {
		return 0, fmt.Errorf("writing status: %w", err)
	}
	r.statusWrites.wrote(key, r.Clock.Now())
	log.FromContext(ctx).V(1).Info("Wrote status", "why", writeReason(&set.Status, &updated), "desired", updated.DesiredNumberScheduled,
		"current", updated.CurrentNumberScheduled, "ready", updated.NumberReady, "available", updated.NumberAvailable,
		"updated", updated.UpdatedNumberScheduled, "misscheduled", updated.NumberMisscheduled,
		"creates", len(in.plan.Creates), "deletes", len(in.plan.Deletes))
	return 0, nil
}

func isEmptySelector(sel *metav1.LabelSelector) bool {
	return sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0)
}

// collectBackoffGarbage drops backoff entries unused for a while, once a minute.
func (r *Reconciler) collectBackoffGarbage(ctx context.Context) error {
	wait.UntilWithContext(ctx, func(context.Context) { r.failedPods.GC() }, time.Minute)
	return nil
}
