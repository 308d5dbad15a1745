package nodeagentset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// The node readiness gate's writes (docs/design/node-readiness-gate.md): the planner decides, this
// file patches nodes, records events and keeps the finalizer of Continuous sets.

// Events of the readiness gate: on the node when its gate lifts, returns or is released; on the set
// when its key is refused.
const (
	EventGateLifted   = "ReadinessGateLifted"
	EventGateReturned = "ReadinessGateReturned"
	EventGateReleased = "ReadinessGateReleased"
	EventGateRefused  = "ReadinessGateRefused"
	EventGateFailed   = "FailedReadinessGate"
)

// Cache indexes of the gate.
const (
	// indexSetGateKey: the taint key a NodeAgentSet gates.
	indexSetGateKey = "nodeagentset.io/gate-key"
	// indexNodeTaintValue: the values of a node's taints; a set's own gate taints carry its UID.
	indexNodeTaintValue = "nodeagentset.io/taint-value"
)

// nodeBarrierProbe is a taint value no node carries (values are label values, without a slash).
const nodeBarrierProbe = "/"

// setupGateIndexes registers the gate's cache indexes.
func setupGateIndexes(ctx context.Context, c interface {
	IndexField(context.Context, client.Object, string, client.IndexerFunc) error
}) error {
	if err := c.IndexField(ctx, &nasv1alpha1.NodeAgentSet{}, indexSetGateKey, setGateKey); err != nil {
		return err
	}
	return c.IndexField(ctx, &corev1.Node{}, indexNodeTaintValue, nodeTaintValues)
}

// setGateKey indexes a set by the taint key it gates.
func setGateKey(o client.Object) []string {
	if key := gateKey(o); key != "" {
		return []string{key}
	}
	return nil
}

// nodeTaintValues indexes a node by the non-empty values of its taints.
func nodeTaintValues(o client.Object) []string {
	var out []string
	for _, t := range o.(*corev1.Node).Spec.Taints {
		if t.Value != "" {
			out = append(out, t.Value)
		}
	}
	return out
}

// waitForOwnNodeWrites is the read barrier of node writes, as waitForOwnWrites is for pods: a list
// through the read-your-writes client, of nodes no taint selects, returns once the node cache has
// seen every node patch this process made. Without it a pass right after a patch could count the set's
// tainted nodes on a stale cache (the patches' test would still refuse any write planned on it).
func (r *Reconciler) waitForOwnNodeWrites(ctx context.Context) error {
	bounded, cancel := context.WithTimeout(ctx, barrierTimeout)
	defer cancel()
	err := r.Client.List(bounded, &corev1.NodeList{}, client.MatchingFields{indexNodeTaintValue: nodeBarrierProbe}, client.UnsafeDisableDeepCopy)
	if err != nil && ctx.Err() == nil && bounded.Err() != nil {
		return fmt.Errorf("%w after %s", errCacheBehind, barrierTimeout)
	}
	return err
}

// gateInput is what the planner needs beyond the set: the allowed prefixes, and the older set that
// gates the same key, if any (the oldest by creationTimestamp, then namespace/name, owns a key).
func (r *Reconciler) gateInput(ctx context.Context, set *nasv1alpha1.NodeAgentSet) (planner.GateInput, error) {
	in := planner.GateInput{AllowedPrefixes: r.GatePrefixes}
	g := set.Spec.NodeReadinessGate
	if g == nil {
		return in, nil
	}
	var sets nasv1alpha1.NodeAgentSetList
	if err := r.Client.List(ctx, &sets, client.MatchingFields{indexSetGateKey: g.TaintKey}, client.DisableReadYourWritesConsistency); err != nil {
		return in, fmt.Errorf("listing sets gating %s: %w", g.TaintKey, err)
	}
	owner := set
	for i := range sets.Items {
		if other := &sets.Items[i]; other.UID != set.UID && other.DeletionTimestamp == nil && olderSet(other, owner) {
			owner = other
		}
	}
	if owner != set {
		in.ConflictsWith = owner.Namespace + "/" + owner.Name
	}
	return in, nil
}

// olderSet: a was created before b, or at the same second and sorts first by namespace/name.
func olderSet(a, b *nasv1alpha1.NodeAgentSet) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// applyGate carries out the gate's part of a plan: the finalizer first (a Continuous set must not
// taint a node it could not release), then the node writes, in parallel, each with its event.
func (r *Reconciler) applyGate(ctx context.Context, set *nasv1alpha1.NodeAgentSet, gp planner.GatePlan) error {
	if err := r.syncGateFinalizer(ctx, set, gp.Finalizer); err != nil {
		return err
	}
	if gp.State == planner.GateKeyNotAllowed || gp.State == planner.GateKeyConflict {
		cond, _ := planner.GateCondition(planner.Plan{Gate: gp})
		r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, EventGateRefused, "Gate", "%s", cond.Message)
	}
	return r.writeNodes(ctx, set, gp.Key, gp.Writes)
}

// syncGateFinalizer adds or removes ReadinessGateFinalizer as the plan wants it.
func (r *Reconciler) syncGateFinalizer(ctx context.Context, set *nasv1alpha1.NodeAgentSet, want bool) error {
	if controllerutil.ContainsFinalizer(set, nasv1alpha1.ReadinessGateFinalizer) == want {
		return nil
	}
	updated := set.DeepCopy()
	if want {
		controllerutil.AddFinalizer(updated, nasv1alpha1.ReadinessGateFinalizer)
	} else {
		controllerutil.RemoveFinalizer(updated, nasv1alpha1.ReadinessGateFinalizer)
	}
	if err := r.Client.Patch(ctx, updated, client.MergeFromWithOptions(set, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("updating the readiness gate finalizer: %w", client.IgnoreNotFound(err))
	}
	// The pass's own write: its status write, conditional on the version it read, goes on from this one.
	set.ResourceVersion = updated.ResourceVersion
	return nil
}

// finalizeGate releases the nodes a set being deleted has tainted, then removes its finalizer.
func (r *Reconciler) finalizeGate(ctx context.Context, set *nasv1alpha1.NodeAgentSet) error {
	if !controllerutil.ContainsFinalizer(set, nasv1alpha1.ReadinessGateFinalizer) {
		return nil
	}
	if err := r.waitForOwnNodeWrites(ctx); err != nil {
		return err
	}
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes, client.MatchingFields{indexNodeTaintValue: string(set.UID)},
		client.DisableReadYourWritesConsistency); err != nil {
		return fmt.Errorf("listing nodes tainted by the set: %w", err)
	}
	ptrs := make([]*corev1.Node, len(nodes.Items))
	for i := range nodes.Items {
		ptrs[i] = &nodes.Items[i]
	}
	writes := planner.ReleaseGate(set, ptrs)
	key := ""
	if g := set.Spec.NodeReadinessGate; g != nil {
		key = g.TaintKey
	}
	if err := r.writeNodes(ctx, set, key, writes); err != nil || len(writes) > 0 {
		// The node events bring the next pass, which checks again before the finalizer goes.
		return err
	}
	return r.syncGateFinalizer(ctx, set, false)
}

// errTaintsChanged: a node's taints changed since the pass read them; the node's event brings a pass
// planned on the new ones.
var errTaintsChanged = errors.New("the node's taints changed since they were read")

// writeNodes patches the nodes, at most podWritesInFlight at once, and records an event on each.
func (r *Reconciler) writeNodes(ctx context.Context, set *nasv1alpha1.NodeAgentSet, key string, writes []planner.GateWrite) error {
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	inFlight := make(chan struct{}, podWritesInFlight)
	for i, w := range writes {
		inFlight <- struct{}{}
		wg.Go(func() {
			defer func() { <-inFlight }()
			err := r.patchTaints(ctx, w)
			switch {
			case err == nil:
				r.recordGateWrite(ctx, set, key, w)
			case errors.Is(err, errTaintsChanged) || apierrors.IsNotFound(err):
				log.FromContext(ctx).V(2).Info("Node changed under a gate write", "node", w.Node.Name, "code", w.Code)
			default:
				r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, EventGateFailed, "Gate", "Error writing the taints of node %s: %v", w.Node.Name, err)
				errs[i] = fmt.Errorf("writing the taints of node %s: %w", w.Node.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// jsonPatchOp is one operation of a JSON patch (RFC 6902).
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// taintsPatch is the node write: test that spec.taints is still what the plan read (null when the node
// had none), then set it. The API server applies both or neither, so a concurrent change of any taint
// makes the write fail instead of being overwritten.
func taintsPatch(w planner.GateWrite) ([]byte, error) {
	var old any
	if len(w.Node.Spec.Taints) > 0 {
		old = w.Node.Spec.Taints
	}
	taints := w.Taints
	if taints == nil {
		taints = []corev1.Taint{}
	}
	return json.Marshal([]jsonPatchOp{{Op: "test", Path: "/spec/taints", Value: old}, {Op: "add", Path: "/spec/taints", Value: taints}})
}

// patchTaints sends one node write; errTaintsChanged when the test failed.
func (r *Reconciler) patchTaints(ctx context.Context, w planner.GateWrite) error {
	data, err := taintsPatch(w)
	if err != nil {
		return err
	}
	node := &corev1.Node{}
	node.Name = w.Node.Name
	err = r.Client.Patch(ctx, node, client.RawPatch(types.JSONPatchType, data))
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code == http.StatusUnprocessableEntity {
		return fmt.Errorf("%w: %v", errTaintsChanged, err)
	}
	return err
}

// recordGateWrite records the event on the node and, for a lift of a taint the node registered with,
// the time from the node's creation.
func (r *Reconciler) recordGateWrite(ctx context.Context, set *nasv1alpha1.NodeAgentSet, key string, w planner.GateWrite) {
	reason := map[planner.GateCode]string{planner.GateLift: EventGateLifted, planner.GateReturn: EventGateReturned}[w.Code]
	if reason == "" {
		reason = EventGateReleased
	}
	r.Recorder.Eventf(w.Node, set, corev1.EventTypeNormal, reason, string(w.Code), "%s", planner.GateEventNote(w, key))
	if w.Code == planner.GateLift && w.Registered {
		r.Metrics.gateLifted(set, r.Clock.Since(w.Node.CreationTimestamp.Time))
	}
	log.FromContext(ctx).V(1).Info("Wrote node taints", "node", w.Node.Name, "code", w.Code)
}

// gateHandler wakes, when a set that gates a key is created, deleted or changes its key, the other
// sets gating the same keys: the owner of a key may have changed.
type gateHandler struct {
	reader client.Reader
}

func (h gateHandler) Create(ctx context.Context, e event.TypedCreateEvent[client.Object], q queue) {
	h.enqueueSharing(ctx, q, e.Object)
}

func (h gateHandler) Update(ctx context.Context, e event.TypedUpdateEvent[client.Object], q queue) {
	if gateKey(e.ObjectOld) != gateKey(e.ObjectNew) || (e.ObjectOld.GetDeletionTimestamp() == nil) != (e.ObjectNew.GetDeletionTimestamp() == nil) {
		h.enqueueSharing(ctx, q, e.ObjectOld, e.ObjectNew)
	}
}

func (h gateHandler) Delete(ctx context.Context, e event.TypedDeleteEvent[client.Object], q queue) {
	h.enqueueSharing(ctx, q, e.Object)
}

func (h gateHandler) Generic(context.Context, event.TypedGenericEvent[client.Object], queue) {}

func (h gateHandler) enqueueSharing(ctx context.Context, q queue, objs ...client.Object) {
	for _, o := range objs {
		key := gateKey(o)
		if key == "" {
			continue
		}
		var sets nasv1alpha1.NodeAgentSetList
		if err := h.reader.List(ctx, &sets, client.MatchingFields{indexSetGateKey: key}); err != nil {
			log.FromContext(ctx).Error(err, "Listing NodeAgentSets gating a key", "key", key)
			continue
		}
		for i := range sets.Items {
			if sets.Items[i].UID != o.GetUID() {
				q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: sets.Items[i].Namespace, Name: sets.Items[i].Name}})
			}
		}
	}
}

func gateKey(o client.Object) string {
	if set, ok := o.(*nasv1alpha1.NodeAgentSet); ok && set.Spec.NodeReadinessGate != nil {
		return set.Spec.NodeReadinessGate.TaintKey
	}
	return ""
}

// gateTaintsChanged: the node's taints that concern the set's gate (its key, or carrying its UID)
// differ between old and node; a nil old counts as no taints.
func gateTaintsChanged(set *nasv1alpha1.NodeAgentSet, old, node *corev1.Node) bool {
	return fmt.Sprint(gateTaints(set, old)) != fmt.Sprint(gateTaints(set, node))
}

func gateTaints(set *nasv1alpha1.NodeAgentSet, node *corev1.Node) []string {
	if node == nil {
		return nil
	}
	key := gateKey(set)
	var out []string
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		if (key != "" && t.Key == key) || (set.UID != "" && t.Value == string(set.UID)) {
			out = append(out, planner.TaintString(t))
		}
	}
	sort.Strings(out)
	return out
}
