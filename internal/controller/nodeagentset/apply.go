package nodeagentset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// Event reasons, the same as the upstream DaemonSet controller's.
const (
	EventSelectingAll     = "SelectingAll"
	EventFailedDaemonPod  = "FailedDaemonPod"
	EventSucceededDaemon  = "SucceededDaemonPod"
	EventSuccessfulCreate = "SuccessfulCreate"
	EventFailedCreate     = "FailedCreate"
	EventSuccessfulDelete = "SuccessfulDelete"
	EventFailedDelete     = "FailedDelete"
	// EventSurgeBlockedByHostPort is ours: a surge rollout of a template that binds host ports is
	// carried out delete-first.
	EventSurgeBlockedByHostPort = "SurgeBlockedByHostPort"
)

// slowStartFirstWindow is how many creates a set's pass has in flight at first when nothing is
// remembered: a pass creates only once the API server accepted a dry-run create of the revision's pod
// (checkTemplate), and that check is the lone first create of upstream's slow start. What it cannot
// see (a quota that runs out part-way, a webhook that refuses some nodes) costs at most this many
// calls, once: a failed create makes the set's next passes start at slowStartProbeWindow. The window
// grows by one with every accepted create (see createNodePods).
const slowStartFirstWindow = 100

// slowStartProbeWindow is the window of a set's passes after a failed create, until a pass has all its
// creates accepted: the first create goes alone.
const slowStartProbeWindow = 1

// slowStartMemory is how long the window a set's creates reached is remembered: the next pass within
// it starts there instead of at slowStartFirstWindow. Covering 10,000 nodes takes four passes of at
// most 2,500 creates (planner.CreateBurst), and a rollout a pass of creates per step. A failed create
// is remembered until a pass has all its creates accepted, however long that takes.
const slowStartMemory = time.Minute

// slowStartWindow is the window a set's last pass reached with every create accepted, and when; or
// (failed) that its last pass with creates had one refused, which holds until a pass succeeds.
type slowStartWindow struct {
	size   int
	at     time.Time
	failed bool
}

// slowStartWindow is the window a pass of the set starts with.
func (m *memory) slowStartWindow(set *nasv1alpha1.NodeAgentSet, now time.Time) int {
	size := slowStartFirstWindow
	m.with(set, func(s *setMemory) {
		switch {
		case s.slowStart.failed:
			size = slowStartProbeWindow
		case s.slowStart.size > 0 && now.Sub(s.slowStart.at) < slowStartMemory:
			size = s.slowStart.size
		}
	})
	return size
}

// recordSlowStart keeps the window a pass reached with no failure, or that it had one.
func (m *memory) recordSlowStart(set *nasv1alpha1.NodeAgentSet, size int, failed bool, now time.Time) {
	m.with(set, func(s *setMemory) {
		s.slowStart = slowStartWindow{size: size, at: now}
		if failed {
			s.slowStart = slowStartWindow{failed: true}
		}
	})
}

// apply carries out a plan as the planner made it: deletes first (in parallel), then creates through a
// slow-start window. It returns the errors it met; NotFound on delete is not one, nor a create refused
// because the namespace is terminating.
//
// A pass records one SuccessfulDelete and one SuccessfulCreate event for all the pods it deleted or
// created, not one per pod: see podBatchNote.
func (r *Reconciler) apply(ctx context.Context, set *nasv1alpha1.NodeAgentSet, hash string, plan planner.Plan) error {
	// The plan was made from this replica's cache: if the lease may have passed to another replica
	// since the pass began (this one was frozen), the plan may be stale and another leader may act.
	if !r.fence.held() {
		return errLeaseNotHeld
	}
	if plan.Strategy.HostPortFallback && !plan.Rollout.Complete {
		r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, EventSurgeBlockedByHostPort, "Update", "%s",
			planner.HostPortFallbackNote(plan.Strategy))
	}
	r.recordCanaryVerdict(set, plan)
	relabelErr := r.relabelPods(ctx, hash, plan.Relabels)
	deleteErr := r.deletePods(ctx, set, plan.Deletes)
	creates, heldErr := r.createCanaryHeldPods(ctx, set, plan)
	return errors.Join(relabelErr, deleteErr, heldErr, r.createNodePods(ctx, set, hash, creates, plan.Overrides))
}

// relabelPods sets the controller-revision-hash label of pods that already equal what their node
// should run (planner.Plan.Relabels), one merge patch each, so their revision reads as current.
func (r *Reconciler) relabelPods(ctx context.Context, hash string, relabels []planner.Relabel) error {
	var errs []error
	for _, rl := range relabels {
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, nasv1alpha1.ControllerRevisionHashLabel, hash)
		err := r.Client.Patch(ctx, rl.Pod.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)))
		if client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("relabelling pod %s: %w", rl.Pod.Name, err))
		}
	}
	return errors.Join(errs...)
}

// podBatchEventNames is how many pod names a batch event lists before it counts the rest.
const podBatchEventNames = 5

// podBatchEventNoteLimit keeps a batch note well inside the 1 KiB events.k8s.io allows.
const podBatchEventNoteLimit = 800

// podBatchNote words one event for the pods a pass created or deleted: "Created pod: a" for one,
// "Created 250 pods: a, b, c, d, e and 245 more" for many (upstream's message, aggregated).
//
// One event per pass, rather than one per pod as upstream's recorder is asked for, is what keeps
// events from doubling the controller's writes: upstream's core/v1 recorder drops most per-pod
// events in its spam filter, while the events.k8s.io recorder sends every event whose related
// object differs. Batch events have no related object, so the recorder folds the batches of
// consecutive passes into one event series.
func podBatchNote(verb string, names []string) string {
	if len(names) == 1 {
		return verb + " pod: " + names[0]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d pods: ", verb, len(names))
	listed := 0
	for _, name := range names {
		if listed == podBatchEventNames || b.Len()+len(name) > podBatchEventNoteLimit {
			break
		}
		if listed > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name)
		listed++
	}
	if rest := len(names) - listed; rest > 0 {
		fmt.Fprintf(&b, " and %d more", rest)
	}
	return b.String()
}

// identityRecorder records events about a set against the set's identity (namespace, name, UID),
// not against the version of it a pass read: the events.k8s.io recorder folds only events whose
// regarding reference is equal, resourceVersion included, and every status write moves the
// resourceVersion.
type identityRecorder struct {
	events.EventRecorder
}

func (r identityRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if set, ok := regarding.(*nasv1alpha1.NodeAgentSet); ok {
		regarding = &nasv1alpha1.NodeAgentSet{TypeMeta: set.TypeMeta,
			ObjectMeta: metav1.ObjectMeta{Namespace: set.Namespace, Name: set.Name, UID: set.UID}}
	}
	r.EventRecorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

// recordBatch records the batch event for the pods one pass created or deleted, if any.
func (r *Reconciler) recordBatch(set *nasv1alpha1.NodeAgentSet, reason, action, verb string, names []string) {
	if len(names) == 0 {
		return
	}
	slices.Sort(names)
	r.Recorder.Eventf(set, nil, corev1.EventTypeNormal, reason, action, "%s", podBatchNote(verb, names))
}

func (r *Reconciler) deletePods(ctx context.Context, set *nasv1alpha1.NodeAgentSet, deletions []planner.Deletion) error {
	errs := make([]error, len(deletions))
	deleted := make([]string, len(deletions))
	var wg sync.WaitGroup
	inFlight := make(chan struct{}, podWritesInFlight)
	for i, d := range deletions {
		switch d.Reason {
		case planner.DeleteFailed:
			r.memory.failedPodDeleted(set, d.Node, r.Clock.Now())
			r.Recorder.Eventf(set, d.Pod, corev1.EventTypeWarning, EventFailedDaemonPod, "Delete",
				"Found failed daemon pod %s/%s on node %s, will try to kill it", d.Pod.Namespace, d.Pod.Name, d.Node)
		case planner.DeleteSucceeded:
			r.Recorder.Eventf(set, d.Pod, corev1.EventTypeNormal, EventSucceededDaemon, "Delete",
				"Found succeeded daemon pod %s/%s on node %s, will try to delete it", d.Pod.Namespace, d.Pod.Name, d.Node)
		}
		inFlight <- struct{}{}
		wg.Go(func() {
			defer func() { <-inFlight }()
			// The UID precondition makes sure we delete the pod we looked at, not a namesake; the
			// resourceVersion one, that it is still as we saw it: the plan decided from that version,
			// and a pod that has changed since (became Ready a moment ago, while the cache lagged)
			// may no longer be one to delete. A changed pod sends an event, and the next pass decides
			// again from what it is now.
			pre := client.Preconditions{UID: &d.Pod.UID}
			if d.Pod.ResourceVersion != "" {
				pre.ResourceVersion = &d.Pod.ResourceVersion
			}
			err := r.Client.Delete(ctx, d.Pod.DeepCopy(), pre)
			switch {
			case err == nil:
				r.Metrics.podDeleted(set, d.Reason)
				deleted[i] = d.Pod.Name
				log.FromContext(ctx).V(2).Info("Deleted pod", "pod", client.ObjectKeyFromObject(d.Pod), "node", d.Node, "reason", d.Reason)
			case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
				// Gone already, replaced by a namesake, or changed since the plan saw it: nothing to
				// delete on this plan's word.
			default:
				r.Recorder.Eventf(set, d.Pod, corev1.EventTypeWarning, EventFailedDelete, "Delete", "Error deleting: %v", err)
				errs[i] = fmt.Errorf("deleting pod %s: %w", d.Pod.Name, err)
			}
		})
	}
	wg.Wait()
	r.recordBatch(set, EventSuccessfulDelete, "Delete", "Deleted", slices.DeleteFunc(deleted, func(n string) bool { return n == "" }))
	return errors.Join(errs...)
}

// podWritesInFlight caps the pod creates or deletes one pass has in flight at once. A pass may issue
// more than that (a rollout step of a large cluster, see planner.BurstReplicas); the rest queue here
// rather than as goroutines blocked in the client.
const podWritesInFlight = planner.BurstReplicas

// createNodePods creates one pod per node through a slow-start window: slowStartFirstWindow creates go
// out at first (the template's dry-run was the lone first create), and each accepted create lets one
// more be in flight, up to podWritesInFlight; a create that returns makes room at once instead of
// waiting for the slowest of a batch, as upstream's slowStartBatch does. After a failure no further
// create starts, the ones in flight finish, the rest waits for the next pass, and the set's passes
// start from a lone create again until one has all its creates accepted; so does the rest of a pass
// whose lease fence closes (fence.go). A pass shortly after one whose creates all succeeded starts with
// the window that one reached (slowStartMemory). Each node's pod is built from its override
// (planner.Plan.Overrides), if it has one.
func (r *Reconciler) createNodePods(ctx context.Context, set *nasv1alpha1.NodeAgentSet, hash string, nodes []string,
	overrides map[string]planner.NodeOverride) error {
	if len(nodes) == 0 {
		return nil
	}
	type outcome struct {
		name string
		err  error
	}
	window := min(r.memory.slowStartWindow(set, r.Clock.Now()), podWritesInFlight)
	done := make(chan outcome)
	var created []string
	var errs []error
	next, inFlight := 0, 0
	for inFlight > 0 || (len(errs) == 0 && next < len(nodes)) {
		for len(errs) == 0 && next < len(nodes) && inFlight < window {
			if !r.fence.held() {
				// A pass of thousands of creates takes seconds: each create, not only the pass,
				// goes out while this replica surely leads (fence.go).
				errs = append(errs, errLeaseNotHeld)
				break
			}
			node := nodes[next]
			next, inFlight = next+1, inFlight+1
			go func() {
				name, err := r.createPod(ctx, set, hash, node, overrides[node])
				done <- outcome{name, err}
			}()
		}
		o := <-done
		inFlight--
		switch {
		case o.err != nil:
			errs = append(errs, o.err)
		case o.name != "":
			created = append(created, o.name)
			window = min(window+1, podWritesInFlight)
		}
	}
	r.memory.recordSlowStart(set, window, len(errs) > 0, r.Clock.Now())
	r.recordBatch(set, EventSuccessfulCreate, "Create", "Created", created)
	return errors.Join(errs...)
}

// createPod creates the pod for one node and returns its name, or "" when no pod was created.
func (r *Reconciler) createPod(ctx context.Context, set *nasv1alpha1.NodeAgentSet, hash, node string,
	override planner.NodeOverride) (string, error) {
	pod := planner.NewNodePod(set, node, hash, override)
	err := r.Client.Create(ctx, pod)
	switch {
	case err == nil:
		r.Metrics.podCreated(set)
		log.FromContext(ctx).V(2).Info("Created pod", "pod", client.ObjectKeyFromObject(pod), "node", node)
		return pod.Name, nil
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return "", nil
	default:
		r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, EventFailedCreate, "Create", "Error creating: %v", err)
		if state := templateState(err); state == planner.TemplateRejected || state == planner.TemplateServiceAccountMissing {
			// The dry-run passed but the create did not (an admission policy that dry-run did not
			// trip, an account deleted since): the next pass plans with this verdict.
			r.memory.recordTemplateVerdict(set, hash, state, err.Error(), r.Clock.Now())
		}
		return "", fmt.Errorf("creating pod on node %s: %w", node, err)
	}
}
