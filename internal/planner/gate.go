package planner

// The node readiness gate (spec.nodeReadinessGate, docs/design/node-readiness-gate.md).
//
// Invariants:
//   - A refused gate (key not allowed, or gated by an older set) plans no node write, except the
//     removal of taints that carry the set's own UID: the controller put those there itself.
//   - A node the set does not target is never written, except to remove a taint carrying the set's UID.
//   - A taint of the gate key is lifted from an eligible node only when one of the set's pods on the
//     node is available.
//   - Only Continuous adds the taint, with effect NoSchedule and the set's UID as its value, never on a
//     node without a live agent pod (the set replaces it), and never beyond maxTaintedNodes nodes that
//     carry the set's taint.
//   - At most one write per node per pass: the node's whole new taint list, next to the list it was
//     planned from.
//   - Output is deterministic: nodes in name order, candidates for a returned taint by longest
//     unavailable first, then by name.

import (
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// DefaultGateTaintPrefix is the taint key prefix the controller lifts when the admin allows no other.
const DefaultGateTaintPrefix = "readiness.nodeagentset.io/"

// DefaultGateGracePeriod is how long an agent may be unavailable before Continuous puts the taint back,
// when gracePeriodSeconds is unset.
const DefaultGateGracePeriod = 30 * time.Second

// DefaultMaxTaintedNodes is maxTaintedNodes when unset: a tenth of the eligible nodes, rounded up.
const DefaultMaxTaintedNodes = "10%"

// GateInput is what the controller knows about the gate beyond the set itself.
type GateInput struct {
	// AllowedPrefixes are the taint key prefixes the controller may lift
	// (--readiness-gate-taint-prefixes); empty means DefaultGateTaintPrefix alone.
	AllowedPrefixes []string
	// ConflictsWith names ("namespace/name") the older set that gates the same key; empty when none.
	ConflictsWith string
}

// GateState is the verdict on the set's gate.
type GateState string

const (
	// GateNone means the set has no nodeReadinessGate.
	GateNone GateState = ""
	// GateActive means the controller lifts (and in Continuous mode puts back) the taint.
	GateActive GateState = "Active"
	// GateKeyNotAllowed means the key starts with no allowed prefix: no node is touched.
	GateKeyNotAllowed GateState = "KeyNotAllowed"
	// GateKeyConflict means an older set gates the same key: no node is touched.
	GateKeyConflict GateState = "KeyConflict"
)

// GateCode says, as data, where one node stands with the gate.
type GateCode string

const (
	// GateWaiting means the node carries the gate taint and waits for its agent to be available.
	GateWaiting GateCode = "WaitingForAgent"
	// GateLift means the agent is available: the plan lifts the taint.
	GateLift GateCode = "Lift"
	// GateReturn means the agent has been unavailable for the grace period: the plan puts the taint back.
	GateReturn GateCode = "Return"
	// GateGracePeriod means the agent is unavailable; the taint returns at Until unless it recovers.
	GateGracePeriod GateCode = "GracePeriod"
	// GateReplacing means the set is replacing the node's agent pod: no taint for that.
	GateReplacing GateCode = "Replacing"
	// GateMaxTainted means the taint would return, but maxTaintedNodes nodes carry it already.
	GateMaxTainted GateCode = "MaxTaintedNodes"
	// GateRelease means the node carries a taint the set put there and no longer wants (the node is no
	// longer eligible, the key or mode changed, the gate is refused): the plan removes it.
	GateRelease GateCode = "Release"
)

// GatePlan is the gate's part of a plan.
type GatePlan struct {
	State GateState
	// Key, Mode and Effect are the gate's spec; Mode is never empty when there is a gate.
	Key    string
	Mode   nasv1alpha1.NodeReadinessGateMode
	Effect corev1.TaintEffect
	// ConflictsWith is the older set gating the key (KeyConflict).
	ConflictsWith string
	// AllowedPrefixes are the prefixes the key was checked against (KeyNotAllowed).
	AllowedPrefixes []string
	// Writes are the node writes of the pass, in node-name order, at most one per node.
	Writes []GateWrite
	// Nodes holds, keyed by name, every node the gate concerns: gated, lifted, returned, waiting for
	// the grace period or the budget, released.
	Nodes map[string]GateNode
	// NumberGated counts the eligible nodes that carry the gate taint once Writes land.
	NumberGated int32
	// Tainted counts the nodes that carry the set's own taint once Writes land; MaxTainted is
	// maxTaintedNodes in nodes (Continuous).
	Tainted    int32
	MaxTainted int32
	// Finalizer says the set needs ReadinessGateFinalizer: it is Continuous, or a node carries a taint
	// of the set's.
	Finalizer bool

	// owner is the set's UID, the value of the taints it puts on nodes.
	owner string
	// writeIndex maps a node name to its write in Writes.
	writeIndex map[string]int
}

// GateWrite is one node write: the node's taints become Taints.
type GateWrite struct {
	// Node is the node as the plan read it: its taints are what the write tests for.
	Node *corev1.Node
	// Taints is the node's new taint list.
	Taints []corev1.Taint
	// Code is GateLift, GateReturn or GateRelease.
	Code GateCode
	// Registered: the write lifts a gate taint the node was registered with (not the set's own), the
	// moment the node-creation-to-lift metric measures.
	Registered bool
}

// GateNode is where one node stands with the gate.
type GateNode struct {
	Code GateCode
	// Until is when the grace period ends (GracePeriod).
	Until time.Time
}

// GateToleration is the toleration the set's pods get for its gate's taint: the key, with any value,
// and the gate's effect (every effect when it names none), so that the agent runs on a gated node.
func GateToleration(set *nasv1alpha1.NodeAgentSet) (corev1.Toleration, bool) {
	g := set.Spec.NodeReadinessGate
	if g == nil {
		return corev1.Toleration{}, false
	}
	return corev1.Toleration{Key: g.TaintKey, Operator: corev1.TolerationOpExists, Effect: g.Effect}, true
}

// WithGateToleration returns tolerations with the set's gate toleration appended, unless one equal to
// it is there already. The input is not modified.
func WithGateToleration(tolerations []corev1.Toleration, set *nasv1alpha1.NodeAgentSet) []corev1.Toleration {
	t, ok := GateToleration(set)
	if !ok {
		return tolerations
	}
	for _, have := range tolerations {
		if sameToleration(have, t) {
			return tolerations
		}
	}
	return append(append(make([]corev1.Toleration, 0, len(tolerations)+1), tolerations...), t)
}

// GateKeyAllowed reports whether key starts with one of prefixes (DefaultGateTaintPrefix when none).
func GateKeyAllowed(key string, prefixes []string) bool {
	if len(prefixes) == 0 {
		prefixes = []string{DefaultGateTaintPrefix}
	}
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// gateState is the verdict on the set's gate: none, refused, or active.
func gateState(set *nasv1alpha1.NodeAgentSet, in GateInput) GateState {
	g := set.Spec.NodeReadinessGate
	switch {
	case g == nil:
		return GateNone
	case !GateKeyAllowed(g.TaintKey, in.AllowedPrefixes):
		return GateKeyNotAllowed
	case in.ConflictsWith != "":
		return GateKeyConflict
	}
	return GateActive
}

// gate plans the gate's node writes from the world.
func (w *world) gate(req *requeue) GatePlan {
	set := w.in.Set
	gp := GatePlan{State: gateState(set, w.in.Gate), Nodes: map[string]GateNode{}, AllowedPrefixes: w.in.Gate.AllowedPrefixes,
		ConflictsWith: w.in.Gate.ConflictsWith, owner: string(set.UID)}
	if g := set.Spec.NodeReadinessGate; g != nil {
		gp.Key, gp.Mode, gp.Effect = g.TaintKey, g.Mode, g.Effect
		if gp.Mode == "" {
			gp.Mode = nasv1alpha1.BootstrapGateMode
		}
	}
	gp.Finalizer = gp.Mode == nasv1alpha1.ContinuousGateMode
	var candidates []gateCandidate
	for _, v := range w.nodes {
		if v.node == nil || (!v.tainted && (gp.State != GateActive || !v.placement.ShouldRun)) {
			// Nothing to remove from a node without taints, and nothing to add unless the gate is
			// active and targets it.
			continue
		}
		if hasTaint(v.node, gp.own) {
			gp.Finalizer = true
		}
		if gp.State != GateActive || !v.placement.ShouldRun {
			// Refused, no gate, or a node the set does not target: only the set's own taints go.
			if kept, removed := withoutTaints(v.node.Spec.Taints, gp.own); removed {
				gp.write(v.node, kept, GateRelease, false)
			}
			continue
		}
		if c, ok := w.gateEligible(&gp, v, req); ok {
			candidates = append(candidates, c)
		}
	}
	if gp.continuous() {
		gp.MaxTainted = int32(scaled(gp.maxTainted(set), countDesired(w.nodes)))
		gp.returnTaints(candidates)
	}
	sort.Slice(gp.Writes, func(i, j int) bool { return gp.Writes[i].Node.Name < gp.Writes[j].Node.Name })
	gp.writeIndex = nil
	return gp
}

// gateEligible plans an eligible node of an active gate: lift once the agent is available, keep
// waiting while the node is gated, and, in Continuous mode, time the grace period; a node whose
// grace period is over is returned as a candidate for the taint.
func (w *world) gateEligible(gp *GatePlan, v *nodeView, req *requeue) (gateCandidate, bool) {
	gated := hasTaint(v.node, gp.isGateTaint)
	if w.agentAvailable(v) {
		kept, removed := withoutTaints(v.node.Spec.Taints, func(t *corev1.Taint) bool { return gp.isGateTaint(t) || gp.stale(t) })
		if removed {
			code := GateLift
			if !gated {
				code = GateRelease
			}
			gp.write(v.node, kept, code, hasTaint(v.node, func(t *corev1.Taint) bool { return gp.isGateTaint(t) && !gp.own(t) }))
		}
		return gateCandidate{}, false
	}
	if kept, removed := withoutTaints(v.node.Spec.Taints, gp.stale); removed {
		gp.write(v.node, kept, GateRelease, false)
	}
	if gated {
		gp.Nodes[v.name] = GateNode{Code: GateWaiting}
		gp.NumberGated++
		if hasTaint(v.node, func(t *corev1.Taint) bool { return gp.isGateTaint(t) && gp.own(t) }) {
			gp.Tainted++
		}
		return gateCandidate{}, false
	}
	if !gp.continuous() {
		return gateCandidate{}, false
	}
	since, ok := w.unavailableSince(v)
	grace := gp.grace(w.in.Set)
	switch {
	case !ok:
		gp.Nodes[v.name] = GateNode{Code: GateReplacing}
	case since.Add(grace).After(w.in.Now):
		gp.Nodes[v.name] = GateNode{Code: GateGracePeriod, Until: since.Add(grace)}
		req.at(since.Add(grace))
	default:
		return gateCandidate{v: v, since: since}, true
	}
	return gateCandidate{}, false
}

// continuous: the gate is active and puts the taint back.
func (gp *GatePlan) continuous() bool {
	return gp.State == GateActive && gp.Mode == nasv1alpha1.ContinuousGateMode
}

// own: the taint is one the set put on the node (it carries the set's UID).
func (gp *GatePlan) own(t *corev1.Taint) bool {
	return gp.owner != "" && t.Value == gp.owner
}

// stale: a taint of the set's that the gate no longer wants, whatever the agent does: of another key
// (the key changed), or left from Continuous.
func (gp *GatePlan) stale(t *corev1.Taint) bool {
	return gp.own(t) && (t.Key != gp.Key || !gp.continuous())
}

// gateCandidate is an eligible node whose agent has been unavailable for the grace period.
type gateCandidate struct {
	v     *nodeView
	since time.Time
}

// returnTaints puts the taint back on the candidates, longest unavailable first, while the nodes
// carrying the set's taint stay within MaxTainted.
func (gp *GatePlan) returnTaints(candidates []gateCandidate) {
	sort.Slice(candidates, func(i, j int) bool {
		if !candidates[i].since.Equal(candidates[j].since) {
			return candidates[i].since.Before(candidates[j].since)
		}
		return candidates[i].v.name < candidates[j].v.name
	})
	for _, c := range candidates {
		if gp.Tainted >= gp.MaxTainted {
			gp.Nodes[c.v.name] = GateNode{Code: GateMaxTainted}
			continue
		}
		taints := c.v.node.Spec.Taints
		if w := gp.pending(c.v.name); w != nil {
			taints = w.Taints
		}
		taint := corev1.Taint{Key: gp.Key, Value: gp.owner, Effect: corev1.TaintEffectNoSchedule}
		gp.write(c.v.node, append(append(make([]corev1.Taint, 0, len(taints)+1), taints...), taint), GateReturn, false)
		gp.Tainted++
		gp.NumberGated++
	}
}

// write records the node's new taints; a second write for the same node in one pass replaces the
// first (it was planned from the first's result).
func (gp *GatePlan) write(node *corev1.Node, taints []corev1.Taint, code GateCode, registered bool) {
	gp.Nodes[node.Name] = GateNode{Code: code}
	if w := gp.pending(node.Name); w != nil {
		w.Taints, w.Code = taints, code
		return
	}
	if gp.writeIndex == nil {
		gp.writeIndex = map[string]int{}
	}
	gp.writeIndex[node.Name] = len(gp.Writes)
	gp.Writes = append(gp.Writes, GateWrite{Node: node, Taints: taints, Code: code, Registered: registered})
}

// pending is the node's write of this pass, or nil.
func (gp *GatePlan) pending(node string) *GateWrite {
	if i, ok := gp.writeIndex[node]; ok {
		return &gp.Writes[i]
	}
	return nil
}

// isGateTaint: the taint has the gate's key and an effect the gate lifts, and is not stale.
func (gp *GatePlan) isGateTaint(t *corev1.Taint) bool {
	if t.Key != gp.Key || gp.stale(t) {
		return false
	}
	if gp.Effect != "" {
		return t.Effect == gp.Effect
	}
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}

func (gp *GatePlan) grace(set *nasv1alpha1.NodeAgentSet) time.Duration {
	if s := set.Spec.NodeReadinessGate.GracePeriodSeconds; s != nil {
		return time.Duration(*s) * time.Second
	}
	return DefaultGateGracePeriod
}

func (gp *GatePlan) maxTainted(set *nasv1alpha1.NodeAgentSet) *intstr.IntOrString {
	if m := set.Spec.NodeReadinessGate.MaxTaintedNodes; m != nil {
		return m
	}
	v := intstr.FromString(DefaultMaxTaintedNodes)
	return &v
}

// agentAvailable: one of the node's live pods is available.
func (w *world) agentAvailable(v *nodeView) bool {
	for _, pod := range v.pods {
		if !isTerminating(pod) && IsPodAvailable(pod, w.in.Set.Spec.MinReadySeconds, w.in.Now) {
			return true
		}
	}
	return false
}

// unavailableSince is when the node's agent became unavailable, as the pods tell: the latest moment
// any live pod turned not Ready (or was created, when it never was Ready). False when the node has no
// live pod (the set is replacing it: its replacement's grace counts from its creation) or a pod is
// Ready and only waits for minReadySeconds.
func (w *world) unavailableSince(v *nodeView) (time.Time, bool) {
	var since time.Time
	live := false
	for _, pod := range v.pods {
		if isTerminating(pod) {
			continue
		}
		live = true
		c := readyCondition(pod)
		switch {
		case c != nil && c.Status == corev1.ConditionTrue:
			return time.Time{}, false
		case c != nil && !c.LastTransitionTime.IsZero():
			since = latest(since, c.LastTransitionTime.Time)
		default:
			since = latest(since, pod.CreationTimestamp.Time)
		}
	}
	return since, live
}

func hasTaint(node *corev1.Node, match func(*corev1.Taint) bool) bool {
	for i := range node.Spec.Taints {
		if match(&node.Spec.Taints[i]) {
			return true
		}
	}
	return false
}

// withoutTaints returns the taints that do not match, and whether any did. The input is not modified.
func withoutTaints(taints []corev1.Taint, match func(*corev1.Taint) bool) ([]corev1.Taint, bool) {
	out := make([]corev1.Taint, 0, len(taints))
	for i := range taints {
		if !match(&taints[i]) {
			out = append(out, taints[i])
		}
	}
	return out, len(out) != len(taints)
}

// ReleaseGate plans the writes that remove every taint the set put on nodes, for a set being deleted.
func ReleaseGate(set *nasv1alpha1.NodeAgentSet, nodes []*corev1.Node) []GateWrite {
	owner := string(set.UID)
	var writes []GateWrite
	if owner == "" {
		return nil
	}
	for _, n := range nodes {
		if kept, removed := withoutTaints(n.Spec.Taints, func(t *corev1.Taint) bool { return t.Value == owner }); removed {
			writes = append(writes, GateWrite{Node: n, Taints: kept, Code: GateRelease})
		}
	}
	sort.Slice(writes, func(i, j int) bool { return writes[i].Node.Name < writes[j].Node.Name })
	return writes
}
