package planner

// Fixtures shared by the planner tests. They mirror the helpers of upstream's daemon_controller_test.go
// (newDaemonSet, newNode, newPod, addNodes, addPods) so scenarios read like their upstream originals.
// Below them, the simulated world of the rollout simulation (TestRolloutSimulation, rollout_test.go).

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

const (
	// curHash is the current revision hash handed to the planner; oldHash labels pods of an older one.
	curHash = "cur-hash"
	oldHash = "old-hash"
)

var (
	// t0 is the snapshot time of scenarios that do not care about time.
	t0 = time.Unix(1_000_000, 0)
	// setLabels are upstream's simpleDaemonSetLabel.
	setLabels = map[string]string{"name": "simple-daemon", "type": "production"}
	// blueLabels are the node labels the selector scenarios match (upstream's simpleNodeLabel).
	blueLabels = map[string]string{"color": "blue"}
)

// newSet is upstream's newDaemonSet("foo"): OnDelete, one container, selector and labels setLabels.
func newSet(mutate ...func(*nasv1alpha1.NodeAgentSet)) *nasv1alpha1.NodeAgentSet {
	set := &nasv1alpha1.NodeAgentSet{
		ObjectMeta: metav1.ObjectMeta{Name: "foo", Namespace: "default", UID: types.UID("set-uid")},
		Spec: nasv1alpha1.NodeAgentSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: setLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: copyMap(setLabels)},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "agent", Image: "foo/bar"}},
				},
			},
			UpdateStrategy: onDelete(),
		},
	}
	for _, m := range mutate {
		m(set)
	}
	return set
}

func onDelete() nasv1alpha1.NodeAgentSetUpdateStrategy {
	return nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.OnDeleteStrategyType}
}

func maxUnavailable(v intstr.IntOrString) nasv1alpha1.NodeAgentSetUpdateStrategy {
	return nasv1alpha1.NodeAgentSetUpdateStrategy{
		Type:          nasv1alpha1.RollingUpdateStrategyType,
		RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: &v},
	}
}

// maxSurge is upstream's newUpdateSurge: maxUnavailable 0 and the given maxSurge.
func maxSurge(v intstr.IntOrString) nasv1alpha1.NodeAgentSetUpdateStrategy {
	zero := intstr.FromInt32(0)
	return nasv1alpha1.NodeAgentSetUpdateStrategy{
		Type:          nasv1alpha1.RollingUpdateStrategyType,
		RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: &zero, MaxSurge: &v},
	}
}

// partitionOf is a rolling update (maxUnavailable 1) with the given partition in nodes.
func partitionOf(n int32) nasv1alpha1.NodeAgentSetUpdateStrategy {
	s := maxUnavailable(intstr.FromInt32(1))
	p := intstr.FromInt32(n)
	s.RollingUpdate.Partition = &p
	return s
}

// pausedStrategy is a paused rolling update (maxUnavailable 1).
func pausedStrategy() nasv1alpha1.NodeAgentSetUpdateStrategy {
	s := maxUnavailable(intstr.FromInt32(1))
	s.RollingUpdate.Paused = true
	return s
}

// strategyCase is one update strategy a scenario runs with.
type strategyCase struct {
	name     string
	strategy nasv1alpha1.NodeAgentSetUpdateStrategy
}

// bothStrategies is upstream's updateStrategies(): every "both strategies" scenario runs with each.
var bothStrategies = []strategyCase{
	{name: "OnDelete", strategy: onDelete()},
	{name: "RollingUpdate", strategy: maxUnavailable(intstr.FromInt32(1))},
}

func withStrategy(s nasv1alpha1.NodeAgentSetUpdateStrategy) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.UpdateStrategy = s }
}

func withNodeSelector(sel map[string]string) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Spec.NodeSelector = sel }
}

func withNodeName(name string) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Spec.NodeName = name }
}

func withTolerations(tols ...corev1.Toleration) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Spec.Tolerations = tols }
}

func withMinReadySeconds(s int32) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.MinReadySeconds = s }
}

func withRequiredAffinity(terms ...corev1.NodeSelectorTerm) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) {
		set.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
		}}
	}
}

// newNode is upstream's newNode: Ready, 100 pods allocatable.
func newNode(name string, labels map[string]string, mutate ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: copyMap(labels)},
		Status: corev1.NodeStatus{
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Allocatable: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("100")},
		},
	}
	for _, m := range mutate {
		m(n)
	}
	return n
}

// newNodes is upstream's addNodes: node-<start> .. node-<start+n-1>.
func newNodes(start, n int, labels map[string]string, mutate ...func(*corev1.Node)) []*corev1.Node {
	out := make([]*corev1.Node, 0, n)
	for i := start; i < start+n; i++ {
		out = append(out, newNode(fmt.Sprintf("node-%d", i), labels, mutate...))
	}
	return out
}

func withTaints(taints ...corev1.Taint) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, taints...) }
}

func withNodeCondition(t corev1.NodeConditionType, s corev1.ConditionStatus) func(*corev1.Node) {
	return func(n *corev1.Node) {
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == t {
				n.Status.Conditions[i].Status = s
				return
			}
		}
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: t, Status: s})
	}
}

// newPod is upstream's newPod: a pod of the set bound to nodeName, carrying the current hash, created at
// t0, not Ready.
func newPod(name, nodeName string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	labels := copyMap(setLabels)
	labels[nasv1alpha1.ControllerRevisionHashLabel] = curHash
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "default", UID: types.UID(name + "-uid"),
			Labels: labels, CreationTimestamp: metav1.NewTime(t0),
		},
		Spec:   corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "agent", Image: "foo/bar"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// newPods is upstream's addPods: n pods named <node>-<i> (i zero-padded so name order is creation
// order).
func newPods(nodeName string, n int, mutate ...func(*corev1.Pod)) []*corev1.Pod {
	return namedPods(nodeName, nodeName, n, mutate...)
}

// namedPods is newPods with another name prefix: n pods named <prefix>-<i> on nodeName.
func namedPods(prefix, nodeName string, n int, mutate ...func(*corev1.Pod)) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, newPod(fmt.Sprintf("%s-%02d", prefix, i), nodeName, mutate...))
	}
	return out
}

func withHash(h string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if h == "" {
			delete(p.Labels, nasv1alpha1.ControllerRevisionHashLabel)
			return
		}
		p.Labels[nasv1alpha1.ControllerRevisionHashLabel] = h
	}
}

func created(t time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t) }
}

// readySince marks the pod Ready with the given LastTransitionTime.
func readySince(t time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) { setReady(p, corev1.ConditionTrue, t) }
}

// ready marks the pod Ready long ago (available whatever minReadySeconds).
var ready = readySince(t0.Add(-time.Hour))

func notReady(p *corev1.Pod) { setReady(p, corev1.ConditionFalse, t0.Add(-time.Hour)) }

func setReady(p *corev1.Pod, s corev1.ConditionStatus, at time.Time) {
	c := corev1.PodCondition{Type: corev1.PodReady, Status: s, LastTransitionTime: metav1.NewTime(at)}
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			p.Status.Conditions[i] = c
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, c)
}

func phase(ph corev1.PodPhase) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}

func terminating(p *corev1.Pod) {
	ts := metav1.NewTime(t0.Add(-time.Second))
	grace := int64(30)
	p.DeletionTimestamp = &ts
	p.DeletionGracePeriodSeconds = &grace
}

// unboundTo makes the pod pending: no spec.nodeName, pinned to the node through required node affinity,
// as the pods NewPod builds are before the scheduler binds them.
func unboundTo(nodeName string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.NodeName = ""
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{nodeName}}},
			}}},
		}}
	}
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func concat[T any](parts ...[]T) []T {
	return slices.Concat(parts...)
}

// del is a Deletion reduced to what tests compare: the pod's name, the node and the reason.
type del struct {
	Pod    string
	Node   string
	Reason DeleteReason
}

func (d del) String() string { return fmt.Sprintf("%s@%s(%s)", d.Pod, d.Node, d.Reason) }

func dels(p Plan) []del {
	out := make([]del, 0, len(p.Deletes))
	for _, d := range p.Deletes {
		out = append(out, del{Pod: d.Pod.Name, Node: d.Node, Reason: d.Reason})
	}
	return out
}

// assertPlan compares the creates and deletes of a plan, in order (the plan is deterministic).
func assertPlan(t *testing.T, p Plan, wantCreates []string, wantDeletes []del) {
	t.Helper()
	if !slices.Equal(p.Creates, wantCreates) && (len(p.Creates) != 0 || len(wantCreates) != 0) {
		t.Errorf("creates:\n got  %v\n want %v", p.Creates, wantCreates)
	}
	if got := dels(p); !slices.Equal(got, wantDeletes) && (len(got) != 0 || len(wantDeletes) != 0) {
		t.Errorf("deletes:\n got  %v\n want %v", got, wantDeletes)
	}
}

func nodeNames(idx ...int) []string {
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, fmt.Sprintf("node-%d", i))
	}
	return out
}

// requeueBeforeDeadline is p.RequeueAfter, or 0 when it is only the wake-up a second after the progress
// deadline: scenarios about other requeues leave that one out (TestProgressDeadline covers it).
func requeueBeforeDeadline(p Plan, now time.Time) time.Duration {
	if d := p.Rollout.Deadline; !d.IsZero() && p.RequeueAfter == d.Add(time.Second).Sub(now) {
		return 0
	}
	return p.RequeueAfter
}

// The fake world of the rollout simulation (TestRolloutSimulation): nodes and pods, a kubelet that makes
// pods Ready after a delay, a clock that advances one tick per step, and the invariants checked at every
// step. Unlike fakeWorld (rollout_test.go), which replays upstream's unit tests one sync at a time, the
// simulation runs whole rollouts on its own and records a trace.

const (
	// simTick is how far the simulated clock advances per step.
	simTick = time.Second
	// simMaxSteps bounds a phase: a world that has not settled by then fails the test.
	simMaxSteps = 5000
)

// simKubelet is how the simulated kubelets treat pods.
type simKubelet struct {
	// readyAfter is how long after its creation a pod becomes Ready.
	readyAfter time.Duration
	// neverReady is an image whose pods never become Ready (a bad template).
	neverReady string
	// terminationDelay is how long a deleted pod stays, terminating; 0: it disappears at once.
	terminationDelay time.Duration
}

// simPod is a pod with what the simulation knows of its future.
type simPod struct {
	pod *corev1.Pod
	// readyAt is when the kubelet marks the pod Ready; zero: never.
	readyAt time.Time
	// goneAt is when a terminating pod disappears; zero: not terminating.
	goneAt time.Time
}

// simBudget is what the scenario's author expects the update strategy to resolve to: the oracle of the
// invariants, written by hand rather than computed the way the planner computes it.
type simBudget struct {
	maxUnavailable int
	maxSurge       int
}

// simWorld is the simulated cluster.
type simWorld struct {
	t       *testing.T
	kubelet simKubelet
	budget  simBudget
	set     *nasv1alpha1.NodeAgentSet
	hash    string
	// revisions names the template hashes for the trace ("v1", "v2", "bad").
	revisions map[string]string
	nodes     []*corev1.Node
	pods      []*simPod
	start     time.Time
	now       time.Time
	// rolloutStartedAt moves to now whenever the spec changes, as the controller's revision stamp does.
	rolloutStartedAt time.Time
	step             int
	seq              int
	// excused are the nodes that lacked an available pod when the phase began (or joined since) and have
	// not had one since: the rollout is not to blame for them.
	excused map[string]bool
	// peakUnavailable and peakSurge are the worst the phase has seen of what the budgets limit.
	peakUnavailable int
	peakSurge       int
	// requeues counts the RequeueAfter values the planner returned.
	requeues map[time.Duration]int
	// lastPlan is the plan of the latest step, progressSince the first step whose plan had its
	// Rollout.LastProgress.
	lastPlan      Plan
	progressSince time.Time
	trace         simTrace
}

func newSimWorld(t *testing.T, sc simScenario) *simWorld {
	start := t0
	set := newSet(withStrategy(sc.strategy), withMinReadySeconds(sc.minReadySeconds))
	set.Spec.ProgressDeadlineSeconds = sc.progressDeadlineSeconds
	w := &simWorld{
		t: t, kubelet: sc.kubelet, budget: sc.budget, set: set, revisions: map[string]string{},
		nodes: newNodes(0, sc.nodes, nil), start: start, now: start, rolloutStartedAt: start.Add(-time.Hour),
		requeues: map[time.Duration]int{},
	}
	w.useImage("agent:v1")
	// Every node runs a pod of v1, created and Ready (or not, if the scenario says so) an hour ago.
	for _, n := range w.nodes {
		sp := w.newPod(n.Name, start.Add(-time.Hour))
		sp.readyAt = time.Time{}
		setReady(sp.pod, corev1.ConditionTrue, start.Add(-time.Hour))
		if sc.oldUnready {
			setReady(sp.pod, corev1.ConditionFalse, start.Add(-time.Hour))
		}
		w.pods = append(w.pods, sp)
	}
	w.trace.note("# " + sc.name + ": " + sc.about)
	w.trace.note(fmt.Sprintf("# kubelet: Ready %s after creation%s; deleted pods %s", sc.kubelet.readyAfter, w.neverReadyText(), w.terminationText()))
	w.trace.note("# step line: time since start, the plan's creates and deletes (node:revision:reason), its status counters and")
	w.trace.note("# its rollout (updatedAvailable/target, stuck nodes, last progress, complete); counters are of the world the")
	w.trace.note("# plan saw, before its writes. A step repeating the line above is folded into a count.")
	return w
}

func (w *simWorld) neverReadyText() string {
	if w.kubelet.neverReady == "" {
		return ""
	}
	return ", never for " + w.kubelet.neverReady
}

func (w *simWorld) terminationText() string {
	if w.kubelet.terminationDelay == 0 {
		return "disappear at once"
	}
	return fmt.Sprintf("terminate for %s", w.kubelet.terminationDelay)
}

// useImage makes image the template's; the hash follows.
func (w *simWorld) useImage(image string) {
	setImage(image)(&w.set.Spec.Template)
	w.hash = TemplateHash(&w.set.Spec.Template, nil)
	w.revisions[w.hash] = image[strings.LastIndex(image, ":")+1:]
}

// Changes a phase makes to the world. Those to the spec restart the rollout clock.

func (w *simWorld) setTemplate(image string) {
	w.useImage(image)
	w.rolloutStartedAt = w.now
}

func (w *simWorld) setPartition(n int) {
	p := intstr.FromInt32(int32(n))
	w.set.Spec.UpdateStrategy.RollingUpdate.Partition = &p
	w.rolloutStartedAt = w.now
}

func (w *simWorld) setPaused(paused bool) {
	w.set.Spec.UpdateStrategy.RollingUpdate.Paused = paused
	w.rolloutStartedAt = w.now
}

func (w *simWorld) addNode(name string) {
	w.nodes = append(w.nodes, newNode(name, nil))
}

// partition is the resolved partition; scenarios set it as a number of nodes.
func (w *simWorld) partition() int {
	ru := w.set.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.Partition == nil {
		return 0
	}
	return ru.Partition.IntValue()
}

func (w *simWorld) paused() bool {
	ru := w.set.Spec.UpdateStrategy.RollingUpdate
	return ru != nil && ru.Paused
}

// partitioned are the last partition() nodes by name (all simulated nodes are eligible).
func (w *simWorld) partitioned() map[string]bool {
	names := allNodeNames(w.nodes)
	slices.Sort(names)
	out := map[string]bool{}
	for _, n := range names[max(0, len(names)-w.partition()):] {
		out[n] = true
	}
	return out
}

func (w *simWorld) newPod(node string, at time.Time) *simPod {
	pod := NewPod(w.set, node, w.hash)
	w.seq++
	pod.Name = fmt.Sprintf("%s%05d", pod.GenerateName, w.seq)
	pod.UID = types.UID(pod.Name)
	pod.Spec.NodeName = node
	pod.CreationTimestamp = metav1.NewTime(at)
	pod.Status.Phase = corev1.PodRunning
	sp := &simPod{pod: pod}
	if pod.Spec.Containers[0].Image != w.kubelet.neverReady {
		sp.readyAt = at.Add(w.kubelet.readyAfter)
	}
	return sp
}

// runPhase applies a change, then steps until the world settles (and at least atLeast has passed), or
// exactly steps times.
func (w *simWorld) runPhase(ph simPhase) {
	w.t.Helper()
	w.trace.note(fmt.Sprintf("## %s: %s", w.offset(w.now), ph.title))
	if ph.change != nil {
		ph.change(w)
	}
	w.beginPhase()
	until := w.now.Add(ph.atLeast)
	n := 0
	for {
		p := w.stepOnce()
		n++
		if (ph.steps > 0 && n == ph.steps) || (ph.steps == 0 && w.settled(p) && !w.now.Before(until)) {
			break
		}
		if n == simMaxSteps {
			w.t.Fatalf("phase %q: not settled after %d steps", ph.title, n)
		}
	}
	w.trace.note(fmt.Sprintf("# %s, %d steps: %s", w.offset(w.now.Add(-simTick)), n, w.layout()))
	w.trace.note(fmt.Sprintf("#   peak unavailable beyond the phase's start %d (maxUnavailable %d), peak surge %d (maxSurge %d)",
		w.peakUnavailable, w.budget.maxUnavailable, w.peakSurge, w.budget.maxSurge))
	w.trace.note("#   rollout: " + w.rolloutText(w.lastPlan.Rollout, w.now.Add(-simTick), true))
	if ph.check != nil {
		ph.check(w.t, w)
	}
}

// beginPhase excuses the nodes that lack an available pod now and resets the peaks.
func (w *simWorld) beginPhase() {
	w.excused = map[string]bool{}
	byNode := w.podsByNode()
	for _, n := range w.nodes {
		if !w.hasAvailablePod(byNode[n.Name]) {
			w.excused[n.Name] = true
		}
	}
	w.peakUnavailable, w.peakSurge = 0, 0
}

// stepOnce is one step: the kubelets act, the planner plans, the plan is checked and applied, the world
// is checked, the clock moves on.
func (w *simWorld) stepOnce() Plan {
	w.t.Helper()
	w.runKubelets()
	p := Compute(Input{Set: w.set, Hash: w.hash, Nodes: w.nodes, Pods: w.livePodList(), Now: w.now, RolloutStartedAt: w.rolloutStartedAt, Template: accepted})
	w.checkPlan(p)
	w.checkRollout(p)
	w.trace.step(w.offset(w.now), w.stepText(p), len(p.Creates)+len(p.Deletes) == 0)
	w.apply(p)
	w.checkWorld()
	if !p.Rollout.LastProgress.Equal(w.lastPlan.Rollout.LastProgress) || w.step == 0 {
		w.progressSince = w.now
	}
	w.lastPlan = p
	w.requeues[p.RequeueAfter]++
	w.step++
	w.now = w.now.Add(simTick)
	return p
}

// settled: the plan did nothing, waits for nothing but the progress deadline, and no kubelet has
// anything left to do.
func (w *simWorld) settled(p Plan) bool {
	if len(p.Creates) > 0 || len(p.Deletes) > 0 || requeueBeforeDeadline(p, w.now) > 0 {
		return false
	}
	for _, sp := range w.pods {
		if !sp.goneAt.IsZero() || !sp.readyAt.IsZero() && !IsPodReady(sp.pod) {
			return false
		}
	}
	return true
}

// runKubelets removes the pods whose termination is over and marks Ready those whose time has come.
func (w *simWorld) runKubelets() {
	w.pods = slices.DeleteFunc(w.pods, func(sp *simPod) bool { return !sp.goneAt.IsZero() && !w.now.Before(sp.goneAt) })
	for _, sp := range w.pods {
		if !sp.readyAt.IsZero() && sp.goneAt.IsZero() && !IsPodReady(sp.pod) && !w.now.Before(sp.readyAt) {
			setReady(sp.pod, corev1.ConditionTrue, sp.readyAt)
		}
	}
}

func (w *simWorld) livePodList() []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(w.pods))
	for _, sp := range w.pods {
		out = append(out, sp.pod)
	}
	return out
}

// apply carries out the plan: deleted pods disappear or start terminating, created pods are bound to
// their node at once.
func (w *simWorld) apply(p Plan) {
	w.t.Helper()
	for _, d := range p.Deletes {
		i := slices.IndexFunc(w.pods, func(sp *simPod) bool { return sp.pod.Name == d.Pod.Name })
		switch {
		case i < 0:
			w.t.Fatalf("step %d: deletes %s, which does not exist", w.step, d.Pod.Name)
		case !w.pods[i].goneAt.IsZero():
			w.t.Errorf("step %d: deletes %s on %s again while it terminates", w.step, d.Pod.Name, d.Node)
		case w.kubelet.terminationDelay == 0:
			w.pods = slices.Delete(w.pods, i, i+1)
		default:
			sp := w.pods[i]
			ts := metav1.NewTime(w.now)
			grace := int64(w.kubelet.terminationDelay / time.Second)
			sp.pod.DeletionTimestamp, sp.pod.DeletionGracePeriodSeconds = &ts, &grace
			sp.goneAt = w.now.Add(w.kubelet.terminationDelay)
		}
	}
	for _, node := range p.Creates {
		w.pods = append(w.pods, w.newPod(node, w.now))
	}
}

// podsByNode groups the pods by node, oldest first (the order status looks at).
func (w *simWorld) podsByNode() map[string][]*corev1.Pod {
	out := map[string][]*corev1.Pod{}
	for _, sp := range w.pods {
		out[sp.pod.Spec.NodeName] = append(out[sp.pod.Spec.NodeName], sp.pod)
	}
	for _, pods := range out {
		SortOldestFirst(pods)
	}
	return out
}

// split returns a node's live (not terminating) pods of the current template and of others.
func (w *simWorld) split(pods []*corev1.Pod) (cur, old []*corev1.Pod) {
	for _, pod := range pods {
		switch {
		case pod.DeletionTimestamp != nil:
		case IsPodUpdated(pod, w.hash):
			cur = append(cur, pod)
		default:
			old = append(old, pod)
		}
	}
	return cur, old
}

func (w *simWorld) available(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil && IsPodAvailable(pod, w.set.Spec.MinReadySeconds, w.now)
}

func (w *simWorld) hasAvailablePod(pods []*corev1.Pod) bool {
	return slices.ContainsFunc(pods, w.available)
}

// checkPlan checks the plan against the world it was computed from.
func (w *simWorld) checkPlan(p Plan) {
	w.t.Helper()
	byNode := w.podsByNode()
	w.checkCreates(p.Creates, byNode)
	w.checkDeletes(p.Deletes)
	if want := w.expectedRequeue(byNode); requeueBeforeDeadline(p, w.now) != want {
		w.t.Errorf("step %d: RequeueAfter %s, want %s (the earliest a Ready pod the plan looks at becomes available)", w.step, p.RequeueAfter, want)
	}
	deadline := DefaultProgressDeadline
	if d := w.set.Spec.ProgressDeadlineSeconds; d != nil {
		deadline = time.Duration(*d) * time.Second
	}
	if r := p.Rollout; r.Phase == RolloutProgressing && !r.Deadline.Equal(r.LastProgress.Add(deadline)) {
		w.t.Errorf("step %d: rollout deadline %s, want last progress %s + %s", w.step, w.offset(r.Deadline), w.offset(r.LastProgress), deadline)
	}
	checkBreakdown(w.t, p)
	s := p.Status
	if int(s.DesiredNumberScheduled) != len(w.nodes) || s.NumberUnavailable != s.DesiredNumberScheduled-s.NumberAvailable {
		w.t.Errorf("step %d: status %+v with %d eligible nodes", w.step, s, len(w.nodes))
	}
}

// checkCreates: a create goes to a node, once, and never replaces a pod without surge, while paused or
// in the partition.
func (w *simWorld) checkCreates(creates []string, byNode map[string][]*corev1.Pod) {
	w.t.Helper()
	part, paused := w.partitioned(), w.paused()
	seen := map[string]bool{}
	for _, n := range creates {
		cur, old := w.split(byNode[n])
		switch {
		case seen[n]:
			w.t.Errorf("step %d: creates twice on %s", w.step, n)
		case !slices.ContainsFunc(w.nodes, func(node *corev1.Node) bool { return node.Name == n }):
			w.t.Errorf("step %d: creates on %s, which is not a node", w.step, n)
		case w.budget.maxSurge == 0 && len(byNode[n]) > 0:
			w.t.Errorf("step %d: creates on %s, which still has a pod, without surge", w.step, n)
		case len(cur) > 0:
			w.t.Errorf("step %d: creates a second pod of the current template on %s", w.step, n)
		case paused && len(old) > 0:
			w.t.Errorf("step %d: replaces the pod on %s while paused", w.step, n)
		case part[n] && len(old) > 0:
			w.t.Errorf("step %d: replaces the pod on %s, which is in the partition", w.step, n)
		}
		seen[n] = true
	}
}

// checkDeletes: only the update deletes, never a pod of the current template, never in the partition,
// and nothing outdated while paused.
func (w *simWorld) checkDeletes(deletes []Deletion) {
	w.t.Helper()
	part, paused := w.partitioned(), w.paused()
	for _, d := range deletes {
		switch {
		case d.Reason != DeleteOutdated && d.Reason != DeleteSurgeReplaced:
			w.t.Errorf("step %d: deletes %s on %s for %s; the simulation gives no cause but the update", w.step, d.Pod.Name, d.Node, d.Reason)
		case IsPodUpdated(d.Pod, w.hash):
			w.t.Errorf("step %d: deletes %s on %s, a pod of the current template", w.step, d.Pod.Name, d.Node)
		case part[d.Node]:
			w.t.Errorf("step %d: deletes %s on %s, which is in the partition", w.step, d.Pod.Name, d.Node)
		case paused && d.Reason == DeleteOutdated:
			w.t.Errorf("step %d: deletes %s on %s as outdated while paused", w.step, d.Pod.Name, d.Node)
		}
	}
}

// expectedRequeue is when the next Ready pod that status (a node's oldest pod) or the surge (a new pod
// next to a Ready old one) looks at becomes available; 0 when there is none.
func (w *simWorld) expectedRequeue(byNode map[string][]*corev1.Pod) time.Duration {
	minReady := w.set.Spec.MinReadySeconds
	var earliest time.Time
	consider := func(pod *corev1.Pod) {
		if IsPodReady(pod) && !IsPodAvailable(pod, minReady, w.now) {
			if at := availableAt(pod, minReady); earliest.IsZero() || at.Before(earliest) {
				earliest = at
			}
		}
	}
	for _, n := range w.nodes {
		pods := byNode[n.Name]
		if len(pods) == 0 {
			continue
		}
		consider(pods[0])
		if cur, old := w.split(pods); w.budget.maxSurge > 0 && len(cur) == 1 && len(old) == 1 && IsPodReady(old[0]) {
			consider(cur[0])
		}
	}
	if earliest.IsZero() {
		return 0
	}
	return earliest.Sub(w.now)
}

// checkRollout checks the plan's Rollout against the world it was computed from.
func (w *simWorld) checkRollout(p Plan) {
	w.t.Helper()
	r, part, byNode := p.Rollout, w.partitioned(), w.podsByNode()
	wantTarget := len(w.nodes) - len(part)
	if int(r.Target) != wantTarget || int(r.Partition) != len(part) || r.Paused != w.paused() {
		w.t.Errorf("step %d: rollout target %d partition %d paused %t, want %d %d %t",
			w.step, r.Target, r.Partition, r.Paused, wantTarget, len(part), w.paused())
	}
	updated := 0
	var stuck []string
	for _, n := range allNodeNames(w.nodes) {
		if part[n] {
			continue
		}
		cur, old := w.split(byNode[n])
		switch {
		case len(cur) > 0 && w.available(cur[0]):
			if len(old) == 0 {
				updated++
			}
		case len(cur) > 0, len(old) == 0:
			stuck = append(stuck, n)
		}
	}
	slices.Sort(stuck)
	gotStuck := make([]string, 0, len(r.Stuck))
	for _, s := range r.Stuck {
		gotStuck = append(gotStuck, s.Node)
	}
	if int(r.UpdatedAvailable) != updated || r.Complete != (updated == wantTarget) || !slices.Equal(gotStuck, stuck) {
		w.t.Errorf("step %d: rollout %d/%d complete %t stuck %v, want %d/%d stuck %v",
			w.step, r.UpdatedAvailable, r.Target, r.Complete, gotStuck, updated, wantTarget, stuck)
	}
	if r.LastProgress.After(w.now) {
		w.t.Errorf("step %d: LastProgress %s is in the future", w.step, w.offset(r.LastProgress))
	}
	if w.step > 0 && r.LastProgress.Before(w.lastPlan.Rollout.LastProgress) {
		w.t.Errorf("step %d: LastProgress went back from %s to %s", w.step, w.offset(w.lastPlan.Rollout.LastProgress), w.offset(r.LastProgress))
	}
}

// checkWorld checks the world after the plan was applied: pods per node, revisions, and the budgets.
func (w *simWorld) checkWorld() {
	w.t.Helper()
	byNode := w.podsByNode()
	revisions := map[string]bool{}
	unavailable, surging := 0, 0
	for _, n := range allNodeNames(w.nodes) {
		pods := byNode[n]
		cur, old := w.split(pods)
		for _, pod := range slices.Concat(cur, old) {
			revisions[pod.Labels[nasv1alpha1.ControllerRevisionHashLabel]] = true
		}
		switch {
		case w.budget.maxSurge == 0 && len(pods) > 1:
			w.t.Errorf("step %d: %s has %d pods without surge", w.step, n, len(pods))
		case len(pods) > 2 || len(cur) > 1 || len(old) > 1:
			w.t.Errorf("step %d: %s has %d pods, %d live of the current template, %d live of others", w.step, n, len(pods), len(cur), len(old))
		}
		switch {
		case w.hasAvailablePod(pods):
			delete(w.excused, n)
		case !w.excused[n]:
			unavailable++
		}
		if len(cur) == 1 && len(old) == 1 && w.available(old[0]) && !w.available(cur[0]) {
			surging++
		}
	}
	if len(revisions) > 2 {
		w.t.Errorf("step %d: %d revisions live", w.step, len(revisions))
	}
	if unavailable > w.budget.maxUnavailable {
		w.t.Errorf("step %d: %d nodes lack an available pod beyond those that lacked one at the start, maxUnavailable %d",
			w.step, unavailable, w.budget.maxUnavailable)
	}
	if surging > w.budget.maxSurge {
		w.t.Errorf("step %d: %d nodes run an unavailable new pod next to an available old one, maxSurge %d", w.step, surging, w.budget.maxSurge)
	}
	w.peakUnavailable, w.peakSurge = max(w.peakUnavailable, unavailable), max(w.peakSurge, surging)
}

// offset is t as seconds since the start of the simulation.
func (w *simWorld) offset(t time.Time) string {
	return fmt.Sprintf("%+ds", int(t.Sub(w.start)/time.Second))
}

func (w *simWorld) rev(pod *corev1.Pod) string {
	return w.revisions[pod.Labels[nasv1alpha1.ControllerRevisionHashLabel]]
}

func (w *simWorld) stepText(p Plan) string {
	parts := make([]string, 0, 4)
	if len(p.Creates) > 0 {
		parts = append(parts, "create=["+strings.Join(p.Creates, " ")+"]")
	}
	if len(p.Deletes) > 0 {
		ds := make([]string, 0, len(p.Deletes))
		for _, d := range p.Deletes {
			ds = append(ds, fmt.Sprintf("%s:%s:%s", d.Node, w.rev(d.Pod), d.Reason))
		}
		parts = append(parts, "delete=["+strings.Join(ds, " ")+"]")
	}
	s := p.Status
	parts = append(parts, fmt.Sprintf("| desired=%d current=%d ready=%d available=%d updated=%d unavailable=%d |",
		s.DesiredNumberScheduled, s.CurrentNumberScheduled, s.NumberReady, s.NumberAvailable, s.UpdatedNumberScheduled, s.NumberUnavailable),
		w.rolloutText(p.Rollout, w.now, false))
	if after := requeueBeforeDeadline(p, w.now); after > 0 {
		parts = append(parts, fmt.Sprintf("requeue=%s", after))
	}
	return strings.Join(parts, " ")
}

// rolloutText renders a Rollout as of at; long names the stuck nodes with their reasons. With a
// progressDeadlineSeconds, it also says when the controller would report ProgressDeadlineExceeded: a
// rolling update neither complete nor paused, without progress for that long.
func (w *simWorld) rolloutText(r Rollout, at time.Time, long bool) string {
	out := fmt.Sprintf("rollout=%d/%d", r.UpdatedAvailable, r.Target)
	if r.Partition > 0 {
		out += fmt.Sprintf(" partition=%d(from %s)", r.Partition, r.FirstPartitionedNode)
	}
	if r.Paused {
		out += " paused"
	}
	switch {
	case long && len(r.Stuck) > 0:
		stuck := make([]string, 0, len(r.Stuck))
		for _, s := range r.Stuck {
			stuck = append(stuck, fmt.Sprintf("%s (%s)", s.Node, s.Reason.Code))
		}
		out += " stuck=[" + strings.Join(stuck, ", ") + "]"
	case len(r.Stuck) > 0:
		out += fmt.Sprintf(" stuck=%d", len(r.Stuck))
	}
	out += " progress=" + w.offset(r.LastProgress)
	if r.Complete {
		out += " complete"
	}
	if d := w.set.Spec.ProgressDeadlineSeconds; d != nil && !r.Complete && !r.Paused &&
		!at.Before(r.LastProgress.Add(time.Duration(*d)*time.Second)) {
		out += " deadline-exceeded"
	}
	return out
}

// layout lists every node's pods: revision, and a trailing * for a terminating pod.
func (w *simWorld) layout() string {
	byNode := w.podsByNode()
	names := allNodeNames(w.nodes)
	slices.Sort(names)
	out := make([]string, 0, len(names))
	for _, n := range names {
		revs := make([]string, 0, len(byNode[n]))
		for _, pod := range byNode[n] {
			r := w.rev(pod)
			if pod.DeletionTimestamp != nil {
				r += "*"
			}
			revs = append(revs, r)
		}
		out = append(out, n+"="+strings.Join(revs, "+"))
	}
	return strings.Join(out, " ")
}

// podOn returns the name of the node's only pod ("" when it has none or several).
func (w *simWorld) podOn(node string) string {
	if pods := w.podsByNode()[node]; len(pods) == 1 {
		return pods[0].Name
	}
	return ""
}

// simTrace is the trace of a simulation: notes, and one line per step, with steps that repeat the line
// before them (and do nothing) folded into a count.
type simTrace struct {
	lines   []string
	prev    string
	folded  int
	foldEnd string
}

func (tr *simTrace) step(at, text string, idle bool) {
	if idle && text == tr.prev {
		tr.folded++
		tr.foldEnd = at
		return
	}
	tr.flush()
	tr.lines = append(tr.lines, fmt.Sprintf("%6s %s", at, text))
	tr.prev = text
}

func (tr *simTrace) note(s string) {
	tr.flush()
	tr.lines = append(tr.lines, s)
	tr.prev = ""
}

func (tr *simTrace) flush() {
	if tr.folded > 0 {
		tr.lines = append(tr.lines, fmt.Sprintf("%6s ... and %d more like it", tr.foldEnd, tr.folded))
	}
	tr.folded = 0
}

func (tr *simTrace) String() string {
	tr.flush()
	return strings.Join(tr.lines, "\n") + "\n"
}

// assertGolden compares got with testdata/<name>.golden, or rewrites the file with -update; a
// difference is reported line by line.
func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/planner -update to write it)", err)
	}
	want := string(raw)
	if got == want {
		return
	}
	gotLines, wantLines := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(gotLines), len(wantLines)); i++ {
		g, wl := line(gotLines, i), line(wantLines, i)
		if g != wl {
			t.Fatalf("%s differs from the simulation at line %d:\n got  %s\n want %s\n(if the change is deliberate, rerun with -update and review the diff)",
				path, i+1, g, wl)
		}
	}
}
