package planner

// The canary stage of a rolling update (docs/design/canary.md).
//
// Invariants:
//   - The verdict is a function of the previous verdict (status.canary, read from the set), the
//     person's decision (the canary-decision annotation), the pods and Now; the spec is never written.
//   - A verdict is for one revision hash: a verdict for another hash starts a new canary; the same hash
//     goes on from where the verdict left it, so a re-applied spec or a controller restart changes
//     nothing.
//   - Until the canary succeeds, no node outside status.canary.nodes runs the revision under test:
//     those nodes are held (their pod of an older revision stays, a node without a pod gets one of the
//     stable revision), and the canary nodes are updated within the rolling update's budget.
//   - A failed canary with onFailure Rollback, or an aborted one, gives the canary nodes the stable
//     revision back, within the budget.

import (
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// CanaryUnavailableGrace is how long a canary node may be without an available pod during the watch
// (a container restart, a probe failing once) before the canary fails.
const CanaryUnavailableGrace = 30 * time.Second

// DefaultCanaryDuration is the watch of a canary without a duration (objects written before the
// field had a default).
const DefaultCanaryDuration = 10 * time.Minute

// canaryDuration is how long the canary pods are watched.
func canaryDuration(spec *nasv1alpha1.CanaryStrategy) time.Duration {
	if spec.Duration == nil {
		return DefaultCanaryDuration
	}
	return spec.Duration.Duration
}

// Canary decisions, the first field of the canary-decision annotation.
const (
	CanaryDecisionPromote = "promote"
	CanaryDecisionAbort   = "abort"
	CanaryDecisionRetry   = "retry"
)

// CanaryDecision words a person's decision on the canary of revision hash, as the annotation
// carries it.
func CanaryDecision(action, hash string, at time.Time) string {
	return action + ":" + hash + ":" + at.UTC().Format(time.RFC3339Nano)
}

// canaryPass is the canary's verdict for one pass and what it does to the nodes.
type canaryPass struct {
	status *nasv1alpha1.CanaryStatus
	// nodes are the canary nodes.
	nodes map[string]bool
	// requeue is when the verdict changes without an event (the watch ends, a grace or a deadline
	// passes); zero when nothing is pending.
	requeue time.Time
}

// active: the canary holds the rest of the fleet.
func (c *canaryPass) active() bool {
	return c != nil && c.status.Phase != nasv1alpha1.CanarySucceeded
}

// rolledBack: the canary nodes get the stable revision back.
func (c *canaryPass) rolledBack(set *nasv1alpha1.NodeAgentSet) bool {
	switch c.status.Phase {
	case nasv1alpha1.CanaryAborted:
		return true
	case nasv1alpha1.CanaryFailed:
		return set.Spec.UpdateStrategy.RollingUpdate.Canary.OnFailure == nasv1alpha1.CanaryFailureRollback
	}
	return false
}

// canarySpec is the set's canary, nil without one.
func canarySpec(set *nasv1alpha1.NodeAgentSet) *nasv1alpha1.CanaryStrategy {
	us := set.Spec.UpdateStrategy
	if us.Type == nasv1alpha1.OnDeleteStrategyType || us.RollingUpdate == nil {
		return nil
	}
	return us.RollingUpdate.Canary
}

// evaluateCanary gives the canary's verdict for this pass and sets the target revision of every node
// it holds or rolls back. It runs once the partition is known: partitioned nodes are never canaries.
func (w *world) evaluateCanary() *canaryPass {
	spec := canarySpec(w.in.Set)
	if spec == nil || w.in.Hash == "" {
		return nil
	}
	// Status keeps seconds: a time kept at a finer grain would differ from what the next pass reads.
	now := metav1.NewTime(w.in.Now).Rfc3339Copy()
	prev := w.in.Set.Status.Canary
	var st *nasv1alpha1.CanaryStatus
	if prev != nil && prev.Revision == w.in.Hash {
		st = prev.DeepCopy()
	} else {
		st = w.startCanary(spec, now)
	}
	c := &canaryPass{status: st, nodes: map[string]bool{}}
	for _, n := range st.Nodes {
		c.nodes[n] = true
	}
	phase := st.Phase
	if prev == nil || prev.Revision != w.in.Hash {
		phase = ""
	}
	w.decide(st, now)
	detail := w.progress(c, spec, now)
	if st.Phase != phase || !canaryDone(st.Phase) {
		// A verdict keeps the words it was given when it was reached.
		st.Message = CanaryMessage(st, spec, detail)
	}
	if st.Phase != phase && canaryDone(st.Phase) {
		st.CompletedAt = &now
	}
	w.target(c)
	return c
}

// startCanary starts the canary of the current revision: the stable revision is the one most live
// pods of eligible nodes run among the other revisions the history holds; without one, there is
// nothing to compare against and the canary has succeeded.
func (w *world) startCanary(spec *nasv1alpha1.CanaryStrategy, now metav1.Time) *nasv1alpha1.CanaryStatus {
	st := &nasv1alpha1.CanaryStatus{Revision: w.in.Hash, StartedAt: &now}
	counts := map[string]int{}
	for _, v := range w.nodes {
		if v.node == nil || !v.placement.ShouldRun {
			continue
		}
		for i, pod := range v.pods {
			if h := v.facts[i].hash; h != w.in.Hash && !isTerminating(pod) && !isTerminal(pod) && w.in.Revisions[h] != nil {
				counts[h]++
			}
		}
	}
	for h, n := range counts {
		if st.StableRevision == "" || n > counts[st.StableRevision] || (n == counts[st.StableRevision] && h < st.StableRevision) {
			st.StableRevision = h
		}
	}
	if st.StableRevision == "" {
		st.Phase = nasv1alpha1.CanarySucceeded
		return st
	}
	st.Phase = nasv1alpha1.CanaryProgressing
	st.Nodes = w.chooseCanaryNodes(spec)
	return st
}

// chooseCanaryNodes picks the canary nodes: eligible nodes outside the partition that match the
// canary's nodeSelector, those already running the current revision first, then by name; at most
// `nodes` of them (all that already run the revision, though, so that no more nodes run it than the
// canary lists).
func (w *world) chooseCanaryNodes(spec *nasv1alpha1.CanaryStrategy) []string {
	selector := labels.Everything()
	if spec.NodeSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(spec.NodeSelector)
		if err != nil {
			return nil
		}
		selector = s
	}
	type candidate struct {
		name    string
		updated bool
	}
	var candidates []candidate
	desired, alreadyUpdated := 0, 0
	for _, v := range w.nodes {
		if v.node == nil || !v.placement.ShouldRun {
			continue
		}
		desired++
		if w.partitioned[v.name] || !selector.Matches(labels.Set(v.node.Labels)) || unchanged(v) {
			continue
		}
		c := candidate{name: v.name, updated: w.runsHash(v, w.in.Hash)}
		if c.updated {
			alreadyUpdated++
		}
		candidates = append(candidates, c)
	}
	sort.SliceStable(candidates, func(i, j int) bool { return candidates[i].updated && !candidates[j].updated })
	n := len(candidates)
	switch {
	case spec.Nodes != nil:
		n = scaled(spec.Nodes, desired)
	case spec.NodeSelector == nil:
		n = 1
	}
	n = clamp(max(n, alreadyUpdated), len(candidates))
	out := make([]string, 0, n)
	for _, c := range candidates[:n] {
		out = append(out, c.name)
	}
	sort.Strings(out)
	return out
}

// unchanged: the revision changes nothing on the node: its pod equals what the node's override
// renders and only carries an older revision hash (renderOverrides relabels it). Watching it would test
// nothing, so it is never a canary node.
func unchanged(v *nodeView) bool {
	for i, pod := range v.pods {
		if relabelled(v, i) && !isTerminating(pod) && !isTerminal(pod) {
			return true
		}
	}
	return false
}

// relabelled: this pass relabels the node's i-th pod with the current revision hash (renderOverrides).
func relabelled(v *nodeView, i int) bool {
	return v.facts[i].hash != v.pods[i].Labels[nasv1alpha1.ControllerRevisionHashLabel]
}

// runsHash: the node runs a live pod of revision hash.
func (w *world) runsHash(v *nodeView, hash string) bool {
	for i, pod := range v.pods {
		if v.facts[i].hash == hash && !isTerminating(pod) && !isTerminal(pod) {
			return true
		}
	}
	return false
}

// decide applies a person's decision from the canary-decision annotation: one for the current
// revision, not acted on yet. Abort and promote end a canary that has not succeeded; retry restarts
// a failed or aborted one.
func (w *world) decide(st *nasv1alpha1.CanaryStatus, now metav1.Time) {
	value := w.in.Set.Annotations[nasv1alpha1.CanaryDecisionAnnotation]
	action, hash, _ := strings.Cut(value, ":")
	hash, _, _ = strings.Cut(hash, ":")
	if value == "" || value == st.Decision || hash != st.Revision {
		return
	}
	st.Decision = value
	switch {
	case st.Phase == nasv1alpha1.CanarySucceeded:
	case action == CanaryDecisionPromote && st.Phase != nasv1alpha1.CanaryAborted:
		st.Phase, st.Reason = nasv1alpha1.CanarySucceeded, ""
	case action == CanaryDecisionAbort:
		st.Phase, st.Reason = nasv1alpha1.CanaryAborted, ""
	case action == CanaryDecisionRetry && (st.Phase == nasv1alpha1.CanaryFailed || st.Phase == nasv1alpha1.CanaryAborted):
		*st = nasv1alpha1.CanaryStatus{Revision: st.Revision, StableRevision: st.StableRevision, Phase: nasv1alpha1.CanaryProgressing,
			StartedAt: &now, Nodes: st.Nodes, Decision: value}
	}
}

// progress moves the canary on from what its pods show: Progressing until every canary node runs an
// available pod of the revision (failing at the progress deadline), then Watching for the duration
// (failing on restarts or a pod unavailable past the grace), then Succeeded or WaitingForPromotion.
// It returns the detail of a failure: the node and why.
func (w *world) progress(c *canaryPass, spec *nasv1alpha1.CanaryStrategy, now metav1.Time) string {
	st := c.status
	pods, missing := w.canaryPods(c)
	if st.Phase == nasv1alpha1.CanaryProgressing && !w.canaryUpdated(c, pods, missing, now) {
		return missing
	}
	if st.Phase != nasv1alpha1.CanaryWatching && st.Phase != nasv1alpha1.CanaryWaitingForPromotion {
		return ""
	}
	return w.watch(c, spec, pods, missing, now)
}

// canaryUpdated: every canary node runs an available pod of the revision alone, and the watch starts
// with the restart count of each; otherwise the canary fails at the progress deadline.
func (w *world) canaryUpdated(c *canaryPass, pods []*corev1.Pod, missing string, now metav1.Time) bool {
	st := c.status
	if missing == "" && len(pods) > 0 {
		st.Phase, st.WatchStartedAt, st.UnavailableSince = nasv1alpha1.CanaryWatching, &now, nil
		st.RestartBaseline = make(map[string]int32, len(pods))
		for _, pod := range pods {
			st.RestartBaseline[pod.Name] = podRestarts(pod)
		}
		return true
	}
	if w.strategy.paused {
		// Paused replaces nothing: the canary nodes wait, as a rollout's deadline does.
		return false
	}
	// From the canary's start, or the spec's last change (a resume, say) when that is later.
	deadline := latest(st.StartedAt.Time, w.in.RolloutStartedAt).Add(w.exportStrategy().ProgressDeadline)
	if !w.in.Now.Before(deadline) {
		st.Phase, st.Reason = nasv1alpha1.CanaryFailed, nasv1alpha1.CanaryProgressDeadlineExceeded
		return false
	}
	c.requeue = deadline.Add(time.Second)
	return false
}

// watch counts the restarts of the canary pods since the watch started and how long a canary node
// has been without an available pod, and ends the watch after its duration. It returns the detail of
// a failure.
func (w *world) watch(c *canaryPass, spec *nasv1alpha1.CanaryStrategy, pods []*corev1.Pod, missing string, now metav1.Time) string {
	st := c.status
	st.Restarts = 0
	for _, pod := range pods {
		st.Restarts += max(0, podRestarts(pod)-st.RestartBaseline[pod.Name])
	}
	if st.Restarts > spec.MaxRestarts {
		st.Phase, st.Reason = nasv1alpha1.CanaryFailed, nasv1alpha1.CanaryTooManyRestarts
		return ""
	}
	unavailable := missing != ""
	for _, pod := range pods {
		unavailable = unavailable || !IsPodAvailable(pod, w.in.Set.Spec.MinReadySeconds, w.in.Now)
	}
	switch {
	case !unavailable:
		st.UnavailableSince = nil
	case st.UnavailableSince == nil:
		st.UnavailableSince = &now
	}
	if st.UnavailableSince != nil {
		until := st.UnavailableSince.Add(CanaryUnavailableGrace)
		if !w.in.Now.Before(until) {
			st.Phase, st.Reason = nasv1alpha1.CanaryFailed, nasv1alpha1.CanaryPodUnavailable
			return missing
		}
		c.requeue = until
	}
	if st.Phase != nasv1alpha1.CanaryWatching {
		return ""
	}
	end := st.WatchStartedAt.Add(canaryDuration(spec))
	switch {
	case w.in.Now.Before(end):
		c.requeue = earliest(c.requeue, end)
	case spec.AutoPromote == nil || *spec.AutoPromote:
		st.Phase = nasv1alpha1.CanarySucceeded
	default:
		st.Phase = nasv1alpha1.CanaryWaitingForPromotion
	}
	return ""
}

// canaryDone: the phase changes only on a person's decision or a new revision.
func canaryDone(phase nasv1alpha1.CanaryPhase) bool {
	return phase == nasv1alpha1.CanarySucceeded || phase == nasv1alpha1.CanaryFailed || phase == nasv1alpha1.CanaryAborted
}

// canaryPods returns the live pods of the current revision on the canary nodes that exist and are
// eligible, and names the first such node that has no available pod of the revision alone (with why),
// or "" when there is none.
func (w *world) canaryPods(c *canaryPass) ([]*corev1.Pod, string) {
	var pods []*corev1.Pod
	missing := ""
	minReady := w.in.Set.Spec.MinReadySeconds
	for _, v := range w.nodes {
		if !c.nodes[v.name] || v.node == nil || !v.placement.ShouldRun {
			continue
		}
		var pod *corev1.Pod
		others := false
		for i, p := range v.pods {
			switch {
			case isTerminating(p) || isTerminal(p):
			case v.facts[i].hash == w.in.Hash && pod == nil:
				pod = p
			default:
				others = true
			}
		}
		if pod != nil {
			pods = append(pods, pod)
		}
		if missing == "" && (pod == nil || others || !IsPodAvailable(pod, minReady, w.in.Now)) {
			missing = v.name + ": " + w.nodeReason(v, pod).String()
			if pod != nil && others && IsPodAvailable(pod, minReady, w.in.Now) {
				missing = v.name + ": the pod of the older revision is still there"
			}
		}
	}
	return pods, missing
}

// podRestarts is the sum of the restarts of a pod's containers, sidecars included.
func podRestarts(pod *corev1.Pod) int32 {
	var n int32
	for _, s := range pod.Status.ContainerStatuses {
		n += s.RestartCount
	}
	for _, s := range pod.Status.InitContainerStatuses {
		n += s.RestartCount
	}
	return n
}

// target sets the revision every node runs under the canary's verdict: nodes outside the canary are
// held at the stable revision until it succeeds; canary nodes run the revision under test, or the
// stable one once rolled back. A pod of such a node keeps its revision hash even when it equals what
// the current revision renders for the node: relabelled, it would run the revision under test outside
// the canary (and be replaced as such); it is relabelled once the canary has succeeded.
func (w *world) target(c *canaryPass) {
	if !c.active() {
		return
	}
	rolledBack := c.rolledBack(w.in.Set)
	kept := map[string]bool{}
	for _, v := range w.nodes {
		switch {
		case !c.nodes[v.name]:
			v.held, v.target = true, c.status.StableRevision
		case rolledBack:
			v.target = c.status.StableRevision
		default:
			continue
		}
		for i, pod := range v.pods {
			if relabelled(v, i) {
				v.facts[i].hash, kept[v.name] = pod.Labels[nasv1alpha1.ControllerRevisionHashLabel], true
			}
		}
	}
	if len(kept) > 0 {
		w.relabels = slices.DeleteFunc(w.relabels, func(r Relabel) bool { return kept[r.Node] })
	}
}

// canaryPlan puts the canary's verdict into the plan: the next status.canary, the revision of every
// create that is not the current one, and, while the canary holds the fleet, the rollout's phase.
func (w *world) canaryPlan(p *Plan, req *requeue) {
	c := w.canary
	if c == nil {
		return
	}
	p.Canary = c.status
	if !c.requeue.IsZero() {
		req.at(c.requeue)
	}
	if !c.active() {
		w.rolloutAfterCanary(p)
		return
	}
	byName := make(map[string]*nodeView, len(w.nodes))
	for _, v := range w.nodes {
		byName[v.name] = v
	}
	renderers := map[string]*overrider{}
	for _, name := range p.Creates {
		v := byName[name]
		if v == nil || v.target == "" || v.target == w.in.Hash {
			continue
		}
		if p.CreateRevisions == nil {
			p.CreateRevisions, p.RevisionTemplates = map[string]string{}, map[string]*corev1.PodTemplateSpec{}
		}
		p.CreateRevisions[name] = v.target
		p.RevisionTemplates[v.target] = w.in.Revisions[v.target]
		if o := w.revisionRenderer(renderers, v.target); o != nil && v.node != nil {
			if p.CreateOverrides == nil {
				p.CreateOverrides = map[string]NodeOverride{}
			}
			p.CreateOverrides[name] = o.forNode(v.node)
		}
	}
	p.Rollout.Complete, p.Rollout.Deadline = false, time.Time{}
	switch c.status.Phase {
	case nasv1alpha1.CanaryFailed:
		p.Rollout.Phase = RolloutCanaryFailed
	case nasv1alpha1.CanaryAborted:
		p.Rollout.Phase = RolloutCanaryAborted
	default:
		p.Rollout.Phase = RolloutCanary
	}
}

// revisionRenderer renders the nodes' pods of an older revision that had nodeOverrides, from its
// template and overrides; nil when it had none (its template is the pod) or its template is unknown.
// Renderers are kept in renderers, one per revision and pass.
func (w *world) revisionRenderer(renderers map[string]*overrider, hash string) *overrider {
	if o, ok := renderers[hash]; ok {
		return o
	}
	var o *overrider
	if tmpl, ovs := w.in.Revisions[hash], w.in.RevisionOverrides[hash]; tmpl != nil && len(ovs) > 0 {
		rev := &nasv1alpha1.NodeAgentSet{ObjectMeta: w.in.Set.ObjectMeta, Spec: w.in.Set.Spec}
		rev.Spec.Template, rev.Spec.NodeOverrides = *tmpl, ovs
		o = newOverrider(rev)
	}
	renderers[hash] = o
	return o
}

// rolloutAfterCanary dates the rollout's progress from the canary's success at the earliest: the
// fleet waited for the canary, which may well have taken longer than the progress deadline.
func (w *world) rolloutAfterCanary(p *Plan) {
	r := &p.Rollout
	at := w.canary.status.CompletedAt
	if at == nil || r.Complete || !at.After(r.LastProgress) ||
		(r.Phase != RolloutProgressing && r.Phase != RolloutDeadlineExceeded) {
		return
	}
	r.LastProgress, r.Deadline, r.Phase = at.Time, at.Add(p.Strategy.ProgressDeadline), RolloutProgressing
	if !w.in.Now.Before(r.Deadline) {
		r.Phase = RolloutDeadlineExceeded
	}
}

// earliest returns the earliest of the times; zero times count for nothing.
func earliest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if !t.IsZero() && (out.IsZero() || t.Before(out)) {
			out = t
		}
	}
	return out
}
