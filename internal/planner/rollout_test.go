package planner

// Rolling updates: the budgets (rule 45), one-pass decisions (rules 46, 47) and the multi-pass sequences
// of upstream's update_test.go (section 3.2), replayed on a tiny fake world.
//
// About the sequences: upstream's unit tests use a fake pod control that observes its own creates and
// deletes synchronously, so the expectations are already satisfied when manage returns and the rolling
// update runs in the same sync, on the world as manage left it. In a real cluster (and in the planner)
// the rolling update runs only in a pass where manage had nothing to do, because manage's writes are
// observed later through the informer (reference rule 9, step 9). Where upstream's unit test shows one
// sync doing both, e.g. (2,2) = manage deletes the old pods whose new pods are available + the rolling
// update surges onto the next nodes, the planner takes two passes, (0,2) then (2,0). Only the surge
// sequences (#2, #3, #9) have such steps; each is marked below. No sequence differs because of our
// deterministic node order.

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// fakeWorld is a cluster reduced to what the planner sees. sync computes a plan and applies it: creates
// become pods of the current revision (unbound, pinned by affinity, like upstream's fake pod control),
// deletes remove pods at once.
type fakeWorld struct {
	t     *testing.T
	set   *nasv1alpha1.NodeAgentSet
	hash  string
	nodes []*corev1.Node
	pods  []*corev1.Pod
	now   time.Time
	seq   int
	step  int
	last  Plan
}

func newFakeWorld(t *testing.T, set *nasv1alpha1.NodeAgentSet, nodes []*corev1.Node) *fakeWorld {
	w := &fakeWorld{t: t, set: set, nodes: nodes, now: t0}
	w.hash = TemplateHash(&set.Spec.Template, nil)
	return w
}

// updateTemplate changes the template; the hash follows, as the controller's revision does.
func (w *fakeWorld) updateTemplate(change func(*corev1.PodTemplateSpec)) {
	change(&w.set.Spec.Template)
	w.hash = TemplateHash(&w.set.Spec.Template, nil)
}

func setImage(image string) func(*corev1.PodTemplateSpec) {
	return func(tmpl *corev1.PodTemplateSpec) { tmpl.Spec.Containers[0].Image = image }
}

func (w *fakeWorld) sync() Plan {
	w.t.Helper()
	w.step++
	p := Compute(Input{Set: w.set, Hash: w.hash, Nodes: w.nodes, Pods: w.pods, Now: w.now, Template: accepted})
	for _, d := range p.Deletes {
		i := slices.IndexFunc(w.pods, func(pod *corev1.Pod) bool { return pod.Name == d.Pod.Name })
		if i < 0 {
			w.t.Fatalf("step %d: plan deletes %s, which does not exist", w.step, d.Pod.Name)
		}
		w.pods = slices.Delete(w.pods, i, i+1)
	}
	for _, node := range p.Creates {
		pod := NewPod(w.set, node, w.hash)
		w.seq++
		pod.Name = fmt.Sprintf("%s%05d", pod.GenerateName, w.seq)
		pod.UID = types.UID(pod.Name)
		pod.CreationTimestamp = metav1.NewTime(w.now)
		pod.Status.Phase = corev1.PodRunning
		w.pods = append(w.pods, pod)
	}
	w.last = p
	return p
}

// expect runs one sync per (creates, deletes) pair and checks the counts.
func (w *fakeWorld) expect(steps ...[2]int) {
	w.t.Helper()
	for _, s := range steps {
		p := w.sync()
		if len(p.Creates) != s[0] || len(p.Deletes) != s[1] {
			w.t.Fatalf("step %d: got (%d,%d) creates %v deletes %v, want (%d,%d)",
				w.step, len(p.Creates), len(p.Deletes), p.Creates, dels(p), s[0], s[1])
		}
	}
}

// setReadiness marks up to count pods matching match Ready (or not) at the world's time, skipping pods
// already in that state; count < 0 means all of them. It returns how many it marked.
func (w *fakeWorld) setReadiness(isReady bool, count int, match func(*corev1.Pod) bool) int {
	status := corev1.ConditionFalse
	if isReady {
		status = corev1.ConditionTrue
	}
	marked := 0
	for _, p := range w.sortedPods() {
		if count >= 0 && marked == count {
			break
		}
		if p.DeletionTimestamp != nil || IsPodReady(p) == isReady || !match(p) {
			continue
		}
		setReady(p, status, w.now)
		marked++
	}
	return marked
}

func (w *fakeWorld) markAllReady() { w.setReadiness(true, -1, func(*corev1.Pod) bool { return true }) }

// sortedPods are the pods by target node, then name: "the first n pods" is deterministic.
func (w *fakeWorld) sortedPods() []*corev1.Pod {
	out := slices.Clone(w.pods)
	slices.SortFunc(out, func(a, b *corev1.Pod) int {
		na, _ := TargetNodeName(a)
		nb, _ := TargetNodeName(b)
		if na != nb {
			return compareStrings(na, nb)
		}
		return compareStrings(a.Name, b.Name)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (w *fakeWorld) readyPodNames() []string {
	var out []string
	for _, p := range w.sortedPods() {
		if IsPodReady(p) {
			out = append(out, p.Name)
		}
	}
	return out
}

// assertConverged: exactly one pod per eligible node, all of the current revision.
func (w *fakeWorld) assertConverged(eligible ...string) {
	w.t.Helper()
	byNode := map[string][]*corev1.Pod{}
	for _, p := range w.pods {
		n, _ := TargetNodeName(p)
		byNode[n] = append(byNode[n], p)
		if !IsPodUpdated(p, w.hash) {
			w.t.Errorf("pod %s on %s is not of the current revision", p.Name, n)
		}
	}
	if len(byNode) != len(eligible) {
		w.t.Errorf("pods on %d nodes, want %d", len(byNode), len(eligible))
	}
	for _, n := range eligible {
		if len(byNode[n]) != 1 {
			w.t.Errorf("node %s has %d pods, want 1", n, len(byNode[n]))
		}
	}
}

func allNodeNames(nodes []*corev1.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

func intOrStr(i int) intstr.IntOrString { return intstr.FromInt32(int32(i)) }

// TestDaemonSetUpdatesPods is 3.2 #1: maxUnavailable 2 on 5 nodes.
func TestDaemonSetUpdatesPods(t *testing.T) {
	nodes := newNodes(0, 5, nil)
	w := newFakeWorld(t, newSet(), nodes)
	w.expect([2]int{5, 0})
	w.markAllReady()

	w.updateTemplate(setImage("foo2/bar2"))
	w.set.Spec.UpdateStrategy = maxUnavailable(intOrStr(2))
	w.expect([2]int{0, 2}, [2]int{2, 0})
	w.markAllReady()
	w.expect([2]int{0, 2}, [2]int{2, 0})
	w.markAllReady()
	w.expect([2]int{0, 1}, [2]int{1, 0})
	w.markAllReady()
	w.expect([2]int{0, 0})
	w.assertConverged(allNodeNames(nodes)...)
}

// TestDaemonSetUpdatesPodsWithMaxSurge is 3.2 #2: maxSurge 2 on 5 nodes.
func TestDaemonSetUpdatesPodsWithMaxSurge(t *testing.T) {
	nodes := newNodes(0, 5, nil)
	w := newFakeWorld(t, newSet(), nodes)
	w.expect([2]int{5, 0})
	w.markAllReady()

	w.updateTemplate(setImage("foo2/bar2"))
	w.set.Spec.UpdateStrategy = maxSurge(intOrStr(2))
	w.expect([2]int{2, 0}, [2]int{0, 0})
	w.markAllReady()
	w.expect([2]int{0, 2}, [2]int{2, 0}, [2]int{0, 0}) // upstream: (2,2), (0,0)
	w.markAllReady()
	w.expect([2]int{0, 2}, [2]int{1, 0}, [2]int{0, 0}) // upstream: (1,2), (0,0)
	w.markAllReady()
	w.expect([2]int{0, 1}, [2]int{0, 0})
	w.assertConverged(allNodeNames(nodes)...)
}

// TestDaemonSetUpdatesPodsNotMatchTaintsWithMaxSurge is 3.2 #3: the new template stops tolerating
// node-0's taint; its old pod goes at once because the 5 available pods exceed the 4 desired.
func TestDaemonSetUpdatesPodsNotMatchTaintsWithMaxSurge(t *testing.T) {
	nodes := newNodes(0, 5, nil)
	nodes[0].Spec.Taints = []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}
	set := newSet(withStrategy(maxSurge(intOrStr(1))),
		withTolerations(corev1.Toleration{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists}))
	w := newFakeWorld(t, set, nodes)
	w.expect([2]int{5, 0})
	w.markAllReady()

	w.updateTemplate(func(tmpl *corev1.PodTemplateSpec) { tmpl.Spec.Tolerations = nil })
	p := w.sync()
	if !slices.Equal(p.Creates, []string{"node-1"}) || !slices.Equal(dels(p), []del{{Pod: "foo-00001", Node: "node-0", Reason: DeleteNodeIneligible}}) {
		t.Fatalf("first pass: creates %v deletes %v, want a surge pod on node-1 and node-0's pod gone", p.Creates, dels(p))
	}
	w.expect([2]int{0, 0})
	w.markAllReady()
	for i := 0; i < 3; i++ {
		w.expect([2]int{0, 1}, [2]int{1, 0}, [2]int{0, 0}) // upstream: (1,1), (0,0)
		w.markAllReady()
	}
	w.expect([2]int{0, 1}, [2]int{0, 0})
	w.assertConverged("node-1", "node-2", "node-3", "node-4")
}

// TestDaemonSetUpdatesWhenNewPodIsNotReady is 3.2 #4: new pods never become Ready, the update stalls.
func TestDaemonSetUpdatesWhenNewPodIsNotReady(t *testing.T) {
	w := newFakeWorld(t, newSet(), newNodes(0, 5, nil))
	w.expect([2]int{5, 0})
	w.markAllReady()

	w.updateTemplate(setImage("foo2/bar2"))
	w.set.Spec.UpdateStrategy = maxUnavailable(intOrStr(3))
	w.expect([2]int{0, 3}, [2]int{3, 0}, [2]int{0, 0}, [2]int{0, 0})
	if got := len(w.readyPodNames()); got != 2 {
		t.Errorf("%d Ready pods, want the 2 old ones", got)
	}
}

// TestDaemonSetUpdatesSomeOldPodsNotReady is 3.2 #5: a second update replaces the two unavailable pods of
// the first and leaves the three available ones alone.
func TestDaemonSetUpdatesSomeOldPodsNotReady(t *testing.T) {
	w := newFakeWorld(t, newSet(), newNodes(0, 5, nil))
	w.expect([2]int{5, 0})
	w.markAllReady()
	originals := w.readyPodNames()

	w.updateTemplate(setImage("foo2/bar2"))
	w.set.Spec.UpdateStrategy = maxUnavailable(intOrStr(2))
	w.expect([2]int{0, 2}, [2]int{2, 0}, [2]int{0, 0})

	w.updateTemplate(setImage("foo2/bar3"))
	w.expect([2]int{0, 2}, [2]int{2, 0}, [2]int{0, 0})
	if got, want := w.readyPodNames(), originals[2:]; !slices.Equal(got, want) {
		t.Errorf("Ready pods %v, want the 3 untouched originals %v", got, want)
	}
}

// TestDaemonSetUpdatesSaveOldHealthyPods is 3.2 #6. Upstream draws maxUnavailable at random in 0..9 for
// the 10 intermediate updates; we use each value once.
func TestDaemonSetUpdatesSaveOldHealthyPods(t *testing.T) {
	w := newFakeWorld(t, newSet(), newNodes(0, 20, nil))
	w.expect([2]int{20, 0})
	w.markAllReady()

	w.updateTemplate(setImage("foo2/bar2"))
	w.set.Spec.UpdateStrategy = maxUnavailable(intOrStr(10))
	w.expect([2]int{0, 10}, [2]int{10, 0}, [2]int{0, 0})
	healthy := w.readyPodNames()
	if len(healthy) != 10 {
		t.Fatalf("%d Ready pods after the first update, want 10", len(healthy))
	}

	for i := 0; i < 10; i++ {
		w.set.Spec.UpdateStrategy = maxUnavailable(intOrStr(i))
		w.updateTemplate(setImage(fmt.Sprintf("foo2/bar3-%d", i)))
		// Only the 10 unavailable pods are replaced, whatever the budget.
		w.expect([2]int{0, 10}, [2]int{10, 0}, [2]int{0, 0})
		if got := w.readyPodNames(); !slices.Equal(got, healthy) {
			t.Fatalf("update %d (maxUnavailable %d) touched healthy pods: Ready %v, want %v", i, i, got, healthy)
		}
	}

	w.set.Spec.UpdateStrategy = maxUnavailable(intOrStr(11))
	w.updateTemplate(setImage("foo2/bar4"))
	w.expect([2]int{0, 11}, [2]int{11, 0}, [2]int{0, 0})
	if got := len(w.readyPodNames()); got != 9 {
		t.Errorf("%d Ready pods, want 9", got)
	}
}

// TestDaemonSetUpdatesAllOldNotReadyPodsAndNewNotReadyPods is 3.2 #7: with 88 unavailable new pods, 2
// unavailable old pods and 10 available old pods, only the 2 unavailable old pods are replaced.
func TestDaemonSetUpdatesAllOldNotReadyPodsAndNewNotReadyPods(t *testing.T) {
	w := newFakeWorld(t, newSet(), newNodes(0, 100, nil))
	w.expect([2]int{100, 0})
	w.markAllReady()
	firstHash := w.hash

	w.updateTemplate(setImage("foo2/bar2"))
	w.set.Spec.UpdateStrategy = maxUnavailable(intOrStr(10))
	for i := 0; i < 10; i++ {
		w.expect([2]int{0, 10}, [2]int{10, 0})
		w.markAllReady()
	}
	w.expect([2]int{0, 0})

	var oldUnavailable, oldAvailable []string
	for i, p := range w.sortedPods() {
		if i >= 10 {
			setReady(p, corev1.ConditionFalse, w.now)
		}
		if i < 12 {
			p.Labels[nasv1alpha1.ControllerRevisionHashLabel] = firstHash
			if i >= 10 {
				oldUnavailable = append(oldUnavailable, p.Name)
			} else {
				oldAvailable = append(oldAvailable, p.Name)
			}
		}
	}
	w.expect([2]int{0, 2})
	if got := podNames(podsOf(w.last.Deletes)); !slices.Equal(got, oldUnavailable) {
		t.Errorf("deleted %v, want the unavailable old pods %v", got, oldUnavailable)
	}
	w.expect([2]int{2, 0}, [2]int{0, 0})
	if got := w.readyPodNames(); !slices.Equal(got, oldAvailable) {
		t.Errorf("Ready pods %v, want the untouched available old pods %v", got, oldAvailable)
	}
}

func podsOf(ds []Deletion) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Pod)
	}
	return out
}

// TestDaemonSetUpdatesAllOldPodsNotReady is 3.2 #8: unavailable old pods are all replaced regardless of
// the budget.
func TestDaemonSetUpdatesAllOldPodsNotReady(t *testing.T) {
	nodes := newNodes(0, 5, nil)
	w := newFakeWorld(t, newSet(), nodes)
	w.expect([2]int{5, 0})

	w.updateTemplate(setImage("foo2/bar2"))
	w.set.Spec.UpdateStrategy = maxUnavailable(intOrStr(3))
	w.expect([2]int{0, 5}, [2]int{5, 0}, [2]int{0, 0})
	w.assertConverged(allNodeNames(nodes)...)
}

// TestDaemonSetUpdatesAllOldPodsNotReadyMaxSurge is 3.2 #9, with the clock driven through Input.Now.
func TestDaemonSetUpdatesAllOldPodsNotReadyMaxSurge(t *testing.T) {
	nodes := newNodes(0, 5, nil)
	w := newFakeWorld(t, newSet(), nodes)
	w.expect([2]int{5, 0})

	w.updateTemplate(setImage("foo2/bar2"))
	w.set.Spec.UpdateStrategy = maxSurge(intOrStr(3))

	// All old pods are unavailable: each gets its new pod at once, beyond the surge.
	w.now = time.Unix(100, 0)
	w.expect([2]int{5, 0})
	// Both pods unready on every node: the old ones go.
	w.now = time.Unix(200, 0)
	w.expect([2]int{0, 5})

	w.markAllReady()
	w.set.Spec.MinReadySeconds = 15
	w.updateTemplate(setImage("foo3/bar3"))
	w.now = time.Unix(300, 0)
	w.expect([2]int{3, 0})

	isNew := func(p *corev1.Pod) bool { return IsPodUpdated(p, w.hash) }
	if n := w.setReadiness(true, 2, isNew); n != 2 {
		t.Fatalf("marked %d new pods Ready, want 2", n)
	}
	hasNewPod := map[string]bool{}
	for _, p := range w.pods {
		if isNew(p) {
			n, _ := TargetNodeName(p)
			hasNewPod[n] = true
		}
	}
	if n := w.setReadiness(false, 1, func(p *corev1.Pod) bool {
		n, _ := TargetNodeName(p)
		return !isNew(p) && !hasNewPod[n]
	}); n != 1 {
		t.Fatalf("marked %d old pods unready, want 1", n)
	}

	// The new pods are not available yet (Ready at 300, minReadySeconds 15); the unready old pod gets
	// its replacement at once. The plan asks to come back when the new pods turn available.
	w.now = time.Unix(310, 0)
	w.expect([2]int{1, 0})
	if w.last.RequeueAfter != 5*time.Second {
		t.Errorf("requeueAfter at 310 = %v, want 5s", w.last.RequeueAfter)
	}

	// Available now: their old pods go, and so does the unready one; then the last node surges.
	w.now = time.Unix(320, 0)
	w.expect([2]int{0, 3}, [2]int{1, 0}) // upstream: (1,3)

	if n := w.setReadiness(true, -1, isNew); n != 3 {
		t.Fatalf("marked %d new pods Ready, want 3", n)
	}
	w.now = time.Unix(340, 0)
	w.expect([2]int{0, 2})
	w.now = time.Unix(350, 0)
	w.expect([2]int{0, 0})
	w.assertConverged(allNodeNames(nodes)...)
}

// TestDaemonSetUpdatesNoTemplateChanged is 3.2 #10 (rule 49): switching OnDelete to RollingUpdate
// without touching the template keeps the hash, so nothing is replaced.
func TestDaemonSetUpdatesNoTemplateChanged(t *testing.T) {
	w := newFakeWorld(t, newSet(), newNodes(0, 5, nil))
	w.expect([2]int{5, 0})
	before := w.hash
	w.set.Spec.UpdateStrategy = maxUnavailable(intOrStr(3))
	w.set.Spec.MinReadySeconds = 30
	w.updateTemplate(func(*corev1.PodTemplateSpec) {})
	if w.hash != before {
		t.Fatalf("hash changed from %s to %s without a template change", before, w.hash)
	}
	w.expect([2]int{0, 0})
}

// TestOnDeleteUpdate is rule 44: old pods are never deleted by the planner; a pod the user deletes, a
// failed pod and a new node all get the current revision.
func TestOnDeleteUpdate(t *testing.T) {
	w := newFakeWorld(t, newSet(), newNodes(0, 4, nil))
	w.expect([2]int{4, 0})
	w.markAllReady()
	w.updateTemplate(setImage("foo2/bar2"))
	w.expect([2]int{0, 0}, [2]int{0, 0})

	// Old pods that are not available are not replaced either.
	w.setReadiness(false, 1, func(*corev1.Pod) bool { return true })
	w.expect([2]int{0, 0})

	// The user deletes node-1's pod; node-2's pod fails; node-9 joins.
	for i, p := range w.sortedPods() {
		switch i {
		case 1:
			w.pods = slices.DeleteFunc(w.pods, func(q *corev1.Pod) bool { return q == p })
		case 2:
			p.Status.Phase = corev1.PodFailed
		}
	}
	w.nodes = append(w.nodes, newNode("node-9", nil))
	p := w.sync()
	if !slices.Equal(p.Creates, []string{"node-1", "node-9"}) || len(p.Deletes) != 1 || p.Deletes[0].Reason != DeleteFailed {
		t.Fatalf("creates %v deletes %v, want node-1 and node-9 created and node-2's failed pod deleted", p.Creates, dels(p))
	}
	w.expect([2]int{1, 0}, [2]int{0, 0})
	updated := 0
	for _, pod := range w.pods {
		if IsPodUpdated(pod, w.hash) {
			updated++
		}
	}
	if updated != 3 {
		t.Errorf("%d pods of the current revision, want 3 (node-1, node-2, node-9)", updated)
	}
	if got := Compute(Input{Set: w.set, Hash: w.hash, Nodes: w.nodes, Pods: w.pods, Now: w.now, Template: accepted}).Status.UpdatedNumberScheduled; got != 3 {
		t.Errorf("updatedNumberScheduled = %d, want 3", got)
	}
}

// TestGetUnavailableNumbers is 3.2 #11 plus the resolution rules of rule 45 and deliberate difference 3:
// (maxSurge, maxUnavailable, desired, empty eligible nodes).
func TestGetUnavailableNumbers(t *testing.T) {
	ptrTo := func(v intstr.IntOrString) *intstr.IntOrString { return &v }
	ru := func(unavailable, surge *intstr.IntOrString) nasv1alpha1.NodeAgentSetUpdateStrategy {
		return nasv1alpha1.NodeAgentSetUpdateStrategy{
			Type:          nasv1alpha1.RollingUpdateStrategyType,
			RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: unavailable, MaxSurge: surge},
		}
	}
	zero, one := ptrTo(intstr.FromInt32(0)), ptrTo(intstr.FromInt32(1))
	pct := func(s string) *intstr.IntOrString { return ptrTo(intstr.FromString(s)) }
	readyPod := func(node string) []*corev1.Pod { return newPods(node, 1, ready) }

	tests := []struct {
		name     string
		strategy nasv1alpha1.NodeAgentSetUpdateStrategy
		nodes    []*corev1.Node
		pods     []*corev1.Pod
		want     [4]int
		surge    bool
	}{
		{name: "no nodes, maxUnavailable 0", strategy: ru(zero, nil), want: [4]int{0, 0, 0, 0}},
		{
			name: "two Ready nodes, maxUnavailable 1", strategy: ru(one, nil), nodes: newNodes(0, 2, nil),
			pods: concat(readyPod("node-0"), readyPod("node-1")), want: [4]int{0, 1, 2, 0},
		},
		{
			name: "one node without pods, maxUnavailable 0: defaults to 1", strategy: ru(zero, nil), nodes: newNodes(0, 2, nil),
			pods: readyPod("node-0"), want: [4]int{0, 1, 2, 1},
		},
		{
			name: "maxSurge 0 and maxUnavailable 0: defaults to 1", strategy: ru(zero, zero), nodes: newNodes(0, 2, nil),
			pods: readyPod("node-0"), want: [4]int{0, 1, 2, 1},
		},
		{
			name: "maxUnavailable 50% of 2", strategy: ru(pct("50%"), nil), nodes: newNodes(0, 2, nil),
			pods: concat(readyPod("node-0"), readyPod("node-1")), want: [4]int{0, 1, 2, 0},
		},
		{
			name: "maxSurge 50% of 2", strategy: ru(zero, pct("50%")), nodes: newNodes(0, 2, nil),
			pods: concat(readyPod("node-0"), readyPod("node-1")), want: [4]int{1, 0, 2, 0}, surge: true,
		},
		{
			name: "maxSurge 100% of 2", strategy: ru(zero, pct("100%")), nodes: newNodes(0, 2, nil),
			pods: concat(readyPod("node-0"), readyPod("node-1")), want: [4]int{2, 0, 2, 0}, surge: true,
		},
		{
			name: "maxUnavailable 50% of 3, one pod terminating, one node empty", strategy: ru(pct("50%"), nil), nodes: newNodes(0, 3, nil),
			pods: concat(readyPod("node-0"), newPods("node-1", 1, ready, terminating)), want: [4]int{0, 2, 3, 1},
		},
		{name: "percentages round up: maxUnavailable 1% of 5", strategy: ru(pct("1%"), nil), nodes: newNodes(0, 5, nil), want: [4]int{0, 1, 5, 5}},
		{name: "percentages round up: maxSurge 30% of 5", strategy: ru(zero, pct("30%")), nodes: newNodes(0, 5, nil), want: [4]int{2, 0, 5, 5}, surge: true},
		{
			name: "ineligible nodes are not desired", strategy: ru(pct("50%"), nil),
			nodes: concat(newNodes(0, 3, nil), newNodes(3, 2, nil, withTaints(taint("x", "", corev1.TaintEffectNoSchedule)))),
			want:  [4]int{0, 2, 3, 3},
		},
		{name: "maxUnavailable omitted, no maxSurge: 1", strategy: ru(nil, nil), nodes: newNodes(0, 4, nil), want: [4]int{0, 1, 4, 4}},
		{name: "maxUnavailable omitted, maxSurge 0: 1", strategy: ru(nil, zero), nodes: newNodes(0, 4, nil), want: [4]int{0, 1, 4, 4}},
		{name: "maxUnavailable omitted, maxSurge 0%: 1", strategy: ru(nil, pct("0%")), nodes: newNodes(0, 4, nil), want: [4]int{0, 1, 4, 4}},
		{
			name:     "maxUnavailable omitted, maxSurge 2: 0 (deliberate difference 3)",
			strategy: ru(nil, ptrTo(intstr.FromInt32(2))), nodes: newNodes(0, 4, nil), want: [4]int{2, 0, 4, 4}, surge: true,
		},
		{
			name:     "maxUnavailable omitted, maxSurge 25%: 0 (deliberate difference 3)",
			strategy: ru(nil, pct("25%")), nodes: newNodes(0, 4, nil), want: [4]int{1, 0, 4, 4}, surge: true,
		},
		{name: "malformed maxUnavailable counts as 0, so 1", strategy: ru(pct("abc"), nil), nodes: newNodes(0, 4, nil), want: [4]int{0, 1, 4, 4}},
		{
			name:     "rollingUpdate omitted: maxUnavailable 1",
			strategy: nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.RollingUpdateStrategyType},
			nodes:    newNodes(0, 4, nil), want: [4]int{0, 1, 4, 4},
		},
		{name: "a surge percentage allows surge even when no node is desired", strategy: ru(zero, pct("10%")), want: [4]int{0, 0, 0, 0}, surge: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(scenario{nodes: tt.nodes, pods: tt.pods}.input(tt.strategy))
			empty := 0
			for _, v := range w.nodes {
				if v.node != nil && v.placement.ShouldRun && len(v.pods) == 0 {
					empty++
				}
			}
			got := [4]int{w.strategy.maxSurge, w.strategy.maxUnavailable, countDesired(w.nodes), empty}
			if got != tt.want {
				t.Errorf("(surge, unavailable, desired, empty) = %v, want %v", got, tt.want)
			}
			if !w.strategy.rollingUpdate || w.strategy.surge != tt.surge {
				t.Errorf("strategy %+v, want rollingUpdate with surge=%t", w.strategy, tt.surge)
			}
		})
	}
	t.Run("OnDelete has no budget", func(t *testing.T) {
		w := newWorld(scenario{nodes: newNodes(0, 3, nil)}.input(onDelete()))
		if w.strategy != (strategy{}) {
			t.Errorf("strategy = %+v, want none", w.strategy)
		}
	})
}

// TestRollingUpdateDeleteFirst covers rule 46 in one pass (maxSurge 0): the rolling update only deletes,
// unavailable old pods go outside the budget, and everything unavailable uses the budget up.
func TestRollingUpdateDeleteFirst(t *testing.T) {
	old := func(node string, mutate ...func(*corev1.Pod)) *corev1.Pod {
		return newPod(node+"-old", node, append([]func(*corev1.Pod){withHash(oldHash)}, mutate...)...)
	}
	cur := func(node string, mutate ...func(*corev1.Pod)) *corev1.Pod {
		return newPod(node+"-new", node, mutate...)
	}
	outdated := func(nodes ...string) []del {
		out := make([]del, 0, len(nodes))
		for _, n := range nodes {
			out = append(out, del{Pod: n + "-old", Node: n, Reason: DeleteOutdated})
		}
		return out
	}
	tests := []struct {
		name   string
		budget int
		set    []func(*nasv1alpha1.NodeAgentSet)
		nodes  []*corev1.Node
		pods   []*corev1.Pod
		want   []del
	}{
		{
			name: "available old pods: the first maxUnavailable by node name", budget: 2, nodes: newNodes(0, 4, nil),
			pods: []*corev1.Pod{old("node-3", ready), old("node-1", ready), old("node-0", ready), old("node-2", ready)},
			want: outdated("node-0", "node-1"),
		},
		{
			name: "unavailable old pods go outside the budget and use it up", budget: 2, nodes: newNodes(0, 4, nil),
			pods: []*corev1.Pod{old("node-0", ready), old("node-1", notReady), old("node-2", ready), old("node-3")},
			want: outdated("node-1", "node-3"),
		},
		{
			name: "unavailable old pods beyond the budget all go", budget: 1, nodes: newNodes(0, 4, nil),
			pods: []*corev1.Pod{old("node-0"), old("node-1"), old("node-2"), old("node-3", ready)},
			want: outdated("node-0", "node-1", "node-2"),
		},
		{
			name: "new pods not available use the budget up", budget: 2, nodes: newNodes(0, 4, nil),
			pods: []*corev1.Pod{cur("node-0"), cur("node-1", ready), old("node-2", ready), old("node-3", ready)},
			want: outdated("node-2"),
		},
		{
			name: "a node whose only pod is terminating uses the budget up", budget: 1, nodes: newNodes(0, 3, nil),
			pods: []*corev1.Pod{newPod("node-0-gone", "node-0", terminating, withHash(oldHash)), old("node-1", ready), old("node-2", ready)},
		},
		{
			name: "available means Ready for minReadySeconds", budget: 1, set: []func(*nasv1alpha1.NodeAgentSet){withMinReadySeconds(30)},
			nodes: newNodes(0, 3, nil),
			pods:  []*corev1.Pod{old("node-0", readySince(t0.Add(-10*time.Second))), old("node-1", ready), old("node-2", ready)},
			want:  outdated("node-0"),
		},
		{
			name: "old pods on a NoSchedule-tainted node are candidates too", budget: 1,
			nodes: concat(newNodes(0, 1, nil, withTaints(taint("x", "", corev1.TaintEffectNoSchedule))), newNodes(1, 1, nil)),
			pods:  []*corev1.Pod{old("node-0", ready), old("node-1", ready)},
			want:  outdated("node-0"),
		},
		{
			// Upstream deletes it too: the rolling update does not look at the failed-pod backoff.
			name: "an old failed pod in backoff is replaced by the rolling update", budget: 1, nodes: newNodes(0, 2, nil),
			pods: []*corev1.Pod{old("node-0", phase(corev1.PodFailed)), old("node-1", ready)},
			want: outdated("node-0"),
		},
		{
			// node-0's failed old pod is held by its backoff, so manage leaves two old pods there.
			name: "a node with two old pods is left to manage and uses the budget up", budget: 1, nodes: newNodes(0, 2, nil),
			pods: []*corev1.Pod{old("node-0", phase(corev1.PodFailed)), newPod("node-0-old-2", "node-0", withHash(oldHash), ready), old("node-1", ready)},
		},
		{
			name: "nothing old: nothing to do", budget: 1, nodes: newNodes(0, 2, nil),
			pods: []*corev1.Pod{cur("node-0"), cur("node-1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := scenario{nodes: tt.nodes, pods: tt.pods, set: tt.set, backoff: map[string]time.Time{"node-0": t0.Add(time.Hour)}}
			p := Compute(sc.input(maxUnavailable(intOrStr(tt.budget))))
			assertPlan(t, p, nil, tt.want)
			// OnDelete never replaces old pods.
			p = Compute(sc.input(onDelete()))
			assertPlan(t, p, nil, nil)
		})
	}
}

// TestRollingUpdateSurge covers rule 47 in one pass (maxSurge > 0): the rolling update creates new pods
// next to old ones within the surge budget, at once for unavailable old pods, and moves pods off nodes
// that stopped qualifying only while enough pods are available.
func TestRollingUpdateSurge(t *testing.T) {
	old := func(node string, mutate ...func(*corev1.Pod)) *corev1.Pod {
		return newPod(node+"-old", node, append([]func(*corev1.Pod){withHash(oldHash), created(t0.Add(-time.Hour))}, mutate...)...)
	}
	cur := func(node string, mutate ...func(*corev1.Pod)) *corev1.Pod {
		return newPod(node+"-new", node, mutate...)
	}
	tainted := withTaints(taint("x", "", corev1.TaintEffectNoSchedule))
	tests := []struct {
		name     string
		strategy nasv1alpha1.NodeAgentSetUpdateStrategy
		nodes    []*corev1.Node
		pods     []*corev1.Pod
		backoff  map[string]time.Time
		creates  []string
		deletes  []del
	}{
		{
			name: "available old pods: the first maxSurge nodes by name", strategy: maxSurge(intOrStr(2)), nodes: newNodes(0, 4, nil),
			pods:    []*corev1.Pod{old("node-3", ready), old("node-2", ready), old("node-1", ready), old("node-0", ready)},
			creates: nodeNames(0, 1),
		},
		{
			name: "new pods not yet available use the budget up", strategy: maxSurge(intOrStr(2)), nodes: newNodes(0, 4, nil),
			pods:    []*corev1.Pod{old("node-0", ready), cur("node-0"), old("node-1", ready), old("node-2", ready), old("node-3", ready)},
			creates: nodeNames(1),
		},
		{
			name: "unavailable old pods get their new pod at once, beyond the budget", strategy: maxSurge(intOrStr(1)), nodes: newNodes(0, 4, nil),
			pods:    []*corev1.Pod{old("node-0", ready), cur("node-0"), old("node-1"), old("node-2", notReady), old("node-3", ready)},
			creates: nodeNames(1, 2),
		},
		{
			name: "an unavailable old pod on a node that stopped qualifying is deleted", strategy: maxSurge(intOrStr(1)),
			nodes:   concat(newNodes(0, 1, nil, tainted), newNodes(1, 1, nil)),
			pods:    []*corev1.Pod{old("node-0"), cur("node-1", ready)},
			deletes: []del{{"node-0-old", "node-0", DeleteOutdated}},
		},
		{
			name: "an available old pod on a node that stopped qualifying waits while too few pods are available", strategy: maxSurge(intOrStr(1)),
			nodes: concat(newNodes(0, 1, nil, tainted), newNodes(1, 2, nil)),
			pods:  []*corev1.Pod{old("node-0", ready), cur("node-1", ready), cur("node-2")},
		},
		{
			name: "an available old pod on a node that stopped qualifying goes once enough pods are available", strategy: maxSurge(intOrStr(1)),
			nodes:   concat(newNodes(0, 2, nil, tainted), newNodes(2, 2, nil)),
			pods:    []*corev1.Pod{old("node-0", ready), old("node-1", ready), cur("node-2", ready), cur("node-3", ready)},
			deletes: []del{{"node-0-old", "node-0", DeleteNodeIneligible}, {"node-1-old", "node-1", DeleteNodeIneligible}},
		},
		{
			// Regression (issue 14, defect 1): the surge path created a pod next to a failed old pod
			// whose backoff still ran, and a pod the kubelet rejects at admission made a create loop.
			name: "a failed old pod in backoff gets no new pod next to it", strategy: maxSurge(intOrStr(1)), nodes: newNodes(0, 2, nil),
			pods:    []*corev1.Pod{old("node-0", phase(corev1.PodFailed)), cur("node-1", ready)},
			backoff: map[string]time.Time{"node-0": t0.Add(time.Minute)},
		},
		{
			// Upstream tallies a node's new pod only when it has no old pod; a failed old pod held by its
			// backoff therefore hides the available new pod next to it, and node-0's pod must wait.
			name: "availability counts the old pod of a node, not its new one", strategy: maxSurge(intOrStr(1)),
			nodes:   concat(newNodes(0, 1, nil, tainted), newNodes(1, 1, nil)),
			pods:    []*corev1.Pod{old("node-0", ready), old("node-1", phase(corev1.PodFailed)), cur("node-1", ready)},
			backoff: map[string]time.Time{"node-1": t0.Add(time.Minute)},
			deletes: []del{{"node-1-old", "node-1", DeleteSurgeReplaced}},
		},
		{
			// Upstream picks the delete-first update when maxSurge scales to 0 against the eligible
			// nodes, as a percentage does with none; maxUnavailable is then 0 and nothing available goes.
			name: "a surge percentage with no eligible node: old available pods stay", strategy: maxSurge(intstr.FromString("20%")),
			nodes: newNodes(0, 2, nil, tainted),
			pods:  []*corev1.Pod{old("node-0", ready), old("node-1", ready)},
		},
		{
			name: "an absolute surge with no eligible node: old available pods go", strategy: maxSurge(intOrStr(1)),
			nodes:   newNodes(0, 2, nil, tainted),
			pods:    []*corev1.Pod{old("node-0", ready), old("node-1", ready)},
			deletes: []del{{"node-0-old", "node-0", DeleteNodeIneligible}, {"node-1-old", "node-1", DeleteNodeIneligible}},
		},
		{
			name: "nodes with two pods of a kind are left to manage and use the budget up", strategy: maxSurge(intOrStr(1)), nodes: newNodes(0, 2, nil),
			pods: []*corev1.Pod{
				newPod("a", "node-0", ready, terminating), cur("node-0", ready),
				newPod("b", "node-0", notReady, phase(corev1.PodFailed)), old("node-1", ready),
			},
			backoff: map[string]time.Time{"node-0": t0.Add(time.Minute)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := scenario{nodes: tt.nodes, pods: tt.pods, backoff: tt.backoff}
			assertPlan(t, Compute(sc.input(tt.strategy)), tt.creates, tt.deletes)
		})
	}
}

// Regression (issue 14, defect 4): the partition was the last n eligible nodes by name, recomputed
// every pass, so a node that joined and sorted last pushed a held node out, and it was updated without
// anyone lowering the partition. The held nodes are the last n by name among those still running an
// older template: a joining node, which gets the current template, displaces none.
func TestPartitionHoldsItsNodesWhenNodesJoinOrLeave(t *testing.T) {
	old := func(node string) *corev1.Pod {
		return newPod(node+"-old", node, withHash(oldHash), created(t0.Add(-time.Hour)), ready)
	}
	cur := func(node string) *corev1.Pod { return newPod(node+"-new", node, ready) }
	set := newSet(withStrategy(partitionOf(2)))
	pods := []*corev1.Pod{cur("node-1"), cur("node-2"), cur("node-3"), old("node-4"), old("node-5")}
	for _, tc := range []struct {
		name  string
		nodes []*corev1.Node
		// creates are the nodes without a pod.
		creates []string
	}{
		{name: "as the rollout left it", nodes: newNodes(1, 5, nil)},
		{name: "a node joins and sorts last", nodes: newNodes(1, 6, nil), creates: []string{"node-6"}},
		{name: "a node joins and sorts first", nodes: newNodes(0, 6, nil), creates: []string{"node-0"}},
		{name: "an updated node leaves", nodes: concat(newNodes(1, 2, nil), newNodes(4, 2, nil))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var live []*corev1.Pod
			for _, pod := range pods {
				if slices.ContainsFunc(tc.nodes, func(n *corev1.Node) bool { return n.Name == pod.Spec.NodeName }) {
					live = append(live, pod)
				}
			}
			p := Compute(Input{Set: set, Hash: curHash, Nodes: tc.nodes, Pods: live, Now: t0, Template: accepted})
			assertPlan(t, p, tc.creates, nil)
			if p.Rollout.Partition != 2 || p.Rollout.FirstPartitionedNode != "node-4" || p.Rollout.Complete != (len(tc.creates) == 0) {
				t.Errorf("rollout = %+v, want node-4 and node-5 held, complete once every node has its pod", p.Rollout)
			}
			if p.Strategy.FirstPartitionedNode != "node-4" || p.Strategy.Partition != 2 {
				t.Errorf("strategy = %+v, want a partition of 2 from node-4 on", p.Strategy)
			}
			for _, n := range []string{"node-4", "node-5"} {
				if st := p.Nodes[n]; !st.Partitioned || st.Reason.Code != ReasonPartitioned {
					t.Errorf("%s: %+v, want it held by the partition", n, st)
				}
			}
		})
	}
}

// TestRolloutVerdict covers the rollout phase and its progress deadline: spec.progressDeadlineSeconds
// (else DefaultProgressDeadline) after the last progress, for a rolling update that is neither complete
// nor paused; the plan wakes up a second after it, so that pass finds it passed.
func TestRolloutVerdict(t *testing.T) {
	deadline := func(s int32) func(*nasv1alpha1.NodeAgentSet) {
		return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.ProgressDeadlineSeconds = &s }
	}
	started := t0.Add(-30 * time.Second)
	nodes := newNodes(0, 3, nil)
	rollingUpdate := withStrategy(maxUnavailable(intOrStr(1)))
	rolling := []*corev1.Pod{
		newPod("node-0-new", "node-0", created(t0.Add(-time.Hour)), readySince(t0.Add(-time.Hour))),
		newPod("node-1-new", "node-1", created(started), notReady),
		newPod("node-2-old", "node-2", withHash(oldHash), created(t0.Add(-2*time.Hour)), ready),
	}
	updated := []*corev1.Pod{
		newPod("node-0-new", "node-0", ready), newPod("node-1-new", "node-1", ready), newPod("node-2-new", "node-2", ready),
	}
	tests := []struct {
		name         string
		set          *nasv1alpha1.NodeAgentSet
		pods         []*corev1.Pod
		now          time.Time
		wantPhase    RolloutPhase
		wantDeadline time.Time
		wantRequeue  time.Duration
	}{
		{name: "complete", set: newSet(rollingUpdate, deadline(60)), pods: updated, now: t0, wantPhase: RolloutComplete},
		{name: "rolling, within the deadline", set: newSet(rollingUpdate, deadline(60)), pods: rolling, now: t0,
			wantPhase: RolloutProgressing, wantDeadline: started.Add(time.Minute), wantRequeue: 31 * time.Second},
		{name: "rolling, the default deadline", set: newSet(rollingUpdate), pods: rolling, now: t0,
			wantPhase: RolloutProgressing, wantDeadline: started.Add(DefaultProgressDeadline), wantRequeue: DefaultProgressDeadline - 29*time.Second},
		{name: "rolling, past the deadline", set: newSet(rollingUpdate, deadline(60)), pods: rolling, now: t0.Add(31 * time.Second),
			wantPhase: RolloutDeadlineExceeded, wantDeadline: started.Add(time.Minute)},
		{name: "paused: no deadline", set: newSet(deadline(60), withStrategy(pausedStrategy())), pods: rolling, now: t0.Add(time.Hour),
			wantPhase: RolloutPaused},
		{name: "OnDelete: waits for deletions, no deadline", set: newSet(deadline(60), withStrategy(onDelete())), pods: rolling,
			now: t0.Add(time.Hour), wantPhase: RolloutWaitingForDeletion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Compute(Input{Set: tt.set, Hash: curHash, Nodes: nodes, Pods: tt.pods, Now: tt.now, RolloutStartedAt: started})
			if p.Rollout.Phase != tt.wantPhase || !p.Rollout.Deadline.Equal(tt.wantDeadline) {
				t.Errorf("rollout phase %s, deadline %s; want %s, %s", p.Rollout.Phase, p.Rollout.Deadline, tt.wantPhase, tt.wantDeadline)
			}
			if p.RequeueAfter != tt.wantRequeue {
				t.Errorf("RequeueAfter = %s, want %s", p.RequeueAfter, tt.wantRequeue)
			}
		})
	}
}

func TestHostPorts(t *testing.T) {
	cases := map[string]struct {
		spec corev1.PodSpec
		want []int32
	}{
		"no ports": {spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}},
		"container port only": {spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}}},
		"hostPort": {spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 9100}}}}}, want: []int32{9100}},
		"hostNetwork makes container ports host ports": {spec: corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "a",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}}, want: []int32{8080}},
		// Regression (issue 14, defect 3): sidecars were not looked at; the scheduler counts them.
		"a sidecar's hostPort counts": {spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "s", RestartPolicy: ptrTo(corev1.ContainerRestartPolicyAlways),
				Ports: []corev1.ContainerPort{{ContainerPort: 9000, HostPort: 9000}}}},
			Containers: []corev1.Container{{Name: "a"}}}, want: []int32{9000}},
		"a plain init container's hostPort does not": {spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "i", Ports: []corev1.ContainerPort{{ContainerPort: 9000, HostPort: 9000}}}},
			Containers:     []corev1.Container{{Name: "a"}}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := HostPorts(&tc.spec)
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Errorf("HostPorts = %v, want %v", got, tc.want)
			}
		})
	}
}

// A surge rollout of a hostPort template replaces delete-first: it never puts a second pod, which
// could not bind the port, on a node.
func TestSurgeWithHostPortFallsBackToDeleteFirst(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{Spec: nasv1alpha1.NodeAgentSetSpec{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "agent", Image: "v2", Ports: []corev1.ContainerPort{{ContainerPort: 9100, HostPort: 9100}},
		}}}},
		UpdateStrategy: nasv1alpha1.NodeAgentSetUpdateStrategy{
			Type:          nasv1alpha1.RollingUpdateStrategyType,
			RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxSurge: ptrIntOrString(intstr.FromInt32(2))},
		},
	}}
	s := resolveStrategy(set, 5)
	if s.surge || !s.surgeBlockedByHostPort || s.maxUnavailable != 1 || s.maxSurge != 0 {
		t.Fatalf("strategy = %+v, want delete-first with maxUnavailable 1", s)
	}
	withUnavailable := set.DeepCopy()
	withUnavailable.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = ptrIntOrString(intstr.FromString("40%"))
	if s := resolveStrategy(withUnavailable, 5); s.surge || !s.surgeBlockedByHostPort || s.maxUnavailable != 2 {
		t.Fatalf("strategy with maxUnavailable 40%% = %+v, want delete-first with maxUnavailable 2", s)
	}
	withoutPort := set.DeepCopy()
	withoutPort.Spec.Template.Spec.Containers[0].Ports[0].HostPort = 0
	if s := resolveStrategy(withoutPort, 5); !s.surge || s.surgeBlockedByHostPort {
		t.Fatalf("strategy without hostPort = %+v, want surge", s)
	}
}

func ptrIntOrString(v intstr.IntOrString) *intstr.IntOrString { return &v }

func ptrTo[T any](v T) *T { return &v }

// Regression (issue 14, defect 3): with maxSurge 100% and a hostNetwork agent, the fallback used the
// surge as its unavailability budget and deleted every agent in one pass. It deletes one.
func TestSurgeAllWithHostNetworkDeletesOne(t *testing.T) {
	set := newSet(withStrategy(maxSurge(intstr.FromString("100%"))), func(s *nasv1alpha1.NodeAgentSet) {
		s.Spec.Template.Spec.HostNetwork = true
		s.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9100}}
	})
	nodes := newNodes(0, 5, nil)
	pods := make([]*corev1.Pod, 0, len(nodes))
	for _, n := range nodes {
		pods = append(pods, newPod(n.Name+"-old", n.Name, withHash("old"), ready))
	}
	p := Compute(Input{Set: set, Hash: curHash, Nodes: nodes, Pods: pods, Now: t0})
	if !p.Strategy.HostPortFallback || p.Strategy.Surge || p.Strategy.MaxUnavailable != 1 || len(p.Strategy.HostPorts) != 1 {
		t.Errorf("strategy = %+v, want the host port fallback with maxUnavailable 1", p.Strategy)
	}
	assertPlan(t, p, nil, []del{{Pod: "node-0-old", Node: "node-0", Reason: DeleteOutdated}})
}

// The same at the level of a plan: 5 nodes with available old pods, maxSurge 2, hostPort template:
// one old pod goes (maxUnavailable would have allowed 0, so 1), nothing is created next to it.
func TestSurgeWithHostPortPlansDeleteFirst(t *testing.T) {
	set := newSet(withStrategy(maxSurge(intstr.FromInt32(2))), func(s *nasv1alpha1.NodeAgentSet) {
		s.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9100, HostPort: 9100}}
	})
	nodes := newNodes(0, 5, nil)
	pods := make([]*corev1.Pod, 0, len(nodes))
	for _, n := range nodes {
		pods = append(pods, newPod(n.Name+"-old", n.Name, withHash("old"), ready))
	}
	p := Compute(Input{Set: set, Hash: curHash, Nodes: nodes, Pods: pods, Now: t0, Template: accepted})
	if !p.Strategy.HostPortFallback {
		t.Error("Strategy.HostPortFallback = false")
	}
	assertPlan(t, p, nil, []del{
		{Pod: "node-0-old", Node: "node-0", Reason: DeleteOutdated},
	})
}

// Rollout simulation: whole rollouts replayed against a fake world (simWorld, fixtures_test.go) that applies each
// plan, ages pods to Ready and moves a clock. Every step is checked against the invariants of
// upstream's rolling update (reference rules 43-49, the surge invariants of section 3.5) and of our
// additions (partition, pause, progress); every run is compared with a golden trace under testdata/.
//
// Rewrite the traces after a deliberate change, then read the diff:
//
//	go test ./internal/planner -run TestRolloutSimulation -update

var updateGolden = flag.Bool("update", false, "rewrite the golden traces of TestRolloutSimulation under testdata/")

// simScenario is one simulated rollout: a world, then phases.
type simScenario struct {
	name  string
	about string
	// nodes is how many nodes (node-0, node-1, ...) run a pod of v1 at the start.
	nodes           int
	strategy        nasv1alpha1.NodeAgentSetUpdateStrategy
	minReadySeconds int32
	// progressDeadlineSeconds is handed to the set; the planner ignores it, the stall scenario checks
	// that the deadline would fire.
	progressDeadlineSeconds *int32
	budget                  simBudget
	kubelet                 simKubelet
	// oldUnready: the v1 pods are not Ready at the start.
	oldUnready bool
	phases     []simPhase
}

// simPhase is a change to the world, then steps until the world settles.
type simPhase struct {
	title  string
	change func(w *simWorld)
	// steps, when set, runs exactly that many steps instead of running until the world settles.
	steps int
	// atLeast keeps a settled world running until that much time has passed.
	atLeast time.Duration
	// check runs at the end of the phase.
	check func(t *testing.T, w *simWorld)
}

func TestRolloutSimulation(t *testing.T) {
	for _, sc := range simScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			w := newSimWorld(t, sc)
			for _, ph := range sc.phases {
				w.runPhase(ph)
				if t.Failed() {
					t.FailNow()
				}
			}
			assertGolden(t, sc.name, w.trace.String())
		})
	}
}

func simScenarios() []simScenario {
	return []simScenario{
		{
			name: "max-unavailable-2", about: "5 nodes, maxUnavailable 2 (3.2 #1)",
			nodes: 5, strategy: maxUnavailable(intOrStr(2)), budget: simBudget{maxUnavailable: 2},
			kubelet: simKubelet{readyAfter: 3 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(2, 0))},
		},
		{
			name: "max-surge-2", about: "5 nodes, maxSurge 2, maxUnavailable 0 (3.2 #2)",
			nodes: 5, strategy: maxSurge(intOrStr(2)), budget: simBudget{maxSurge: 2},
			kubelet: simKubelet{readyAfter: 3 * time.Second, terminationDelay: 2 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(0, 2))},
		},
		{
			name: "all-old-unready", about: "5 nodes, maxUnavailable 1, no v1 pod Ready: all are replaced at once, outside the budget (3.2 #9)",
			nodes: 5, strategy: maxUnavailable(intOrStr(1)), budget: simBudget{maxUnavailable: 1}, oldUnready: true,
			kubelet: simKubelet{readyAfter: 3 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(0, 0))},
		},
		{
			name: "all-old-unready-max-surge", about: "5 nodes, maxSurge 1, no v1 pod Ready: all get a v2 pod at once, outside the budget (3.2 #10)",
			nodes: 5, strategy: maxSurge(intOrStr(1)), budget: simBudget{maxSurge: 1}, oldUnready: true,
			kubelet: simKubelet{readyAfter: 3 * time.Second, terminationDelay: 2 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(0, 0))},
		},
		stallScenario(),
		{
			name: "new-pods-never-ready-max-surge", about: "5 nodes, maxSurge 1, v2 never Ready: one surge pod waits forever, no node loses its agent",
			nodes: 5, strategy: maxSurge(intOrStr(1)), budget: simBudget{maxSurge: 1}, progressDeadlineSeconds: ptr.To[int32](600),
			kubelet: simKubelet{readyAfter: 3 * time.Second, neverReady: "agent:bad"},
			phases: []simPhase{{
				title: "template v1 -> bad", change: func(w *simWorld) { w.setTemplate("agent:bad") }, atLeast: 620 * time.Second,
				check: func(t *testing.T, w *simWorld) {
					checkLayout(t, w, "node-0=v1+bad node-1=v1 node-2=v1 node-3=v1 node-4=v1")
					checkStalled(t, w, "node-0")
					if s := w.lastPlan.Status; s.NumberAvailable != 5 || w.peakSurge != 1 {
						t.Errorf("status %+v, peak surge %d: want all 5 nodes available and 1 surge pod", s, w.peakSurge)
					}
				},
			}},
		},
		partitionScenario(),
		pauseScenario(),
		{
			name: "min-ready-seconds-10", about: "3 nodes, maxUnavailable 1, minReadySeconds 10: a node counts only once its pod is available",
			nodes: 3, strategy: maxUnavailable(intOrStr(1)), minReadySeconds: 10, budget: simBudget{maxUnavailable: 1},
			kubelet: simKubelet{readyAfter: 2 * time.Second},
			phases: []simPhase{updateToV2(func(t *testing.T, w *simWorld) {
				checkRolledOut(1, 0)(t, w)
				// Each new pod, on the step it turns Ready, makes the planner wake up exactly when it becomes
				// available (checked at every step); here: that happened once per node.
				if w.requeues[10*time.Second] != 3 {
					t.Errorf("RequeueAfter was 10s on %d steps, want 3 (one per new pod turning Ready): %v", w.requeues[10*time.Second], w.requeues)
				}
			})},
		},
		{
			name: "max-unavailable-10-percent-of-20", about: "20 nodes, maxUnavailable 10% = 2 nodes",
			nodes: 20, strategy: maxUnavailable(intstr.FromString("10%")), budget: simBudget{maxUnavailable: 2},
			kubelet: simKubelet{readyAfter: 3 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(2, 0))},
		},
		{
			name: "max-unavailable-10-percent-of-11", about: "11 nodes, maxUnavailable 10% = 1.1 nodes, rounded up to 2 (rule 45)",
			nodes: 11, strategy: maxUnavailable(intstr.FromString("10%")), budget: simBudget{maxUnavailable: 2},
			kubelet: simKubelet{readyAfter: 3 * time.Second, terminationDelay: 2 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(2, 0))},
		},
		{
			name:  "max-surge-20-percent-min-ready-10",
			about: "7 nodes, maxSurge 20% = 1.4 nodes, rounded up to 2, minReadySeconds 10, slow termination (the surge e2e test of 3.5)",
			nodes: 7, strategy: maxSurge(intstr.FromString("20%")), minReadySeconds: 10, budget: simBudget{maxSurge: 2},
			kubelet: simKubelet{readyAfter: 3 * time.Second, terminationDelay: 15 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(0, 2))},
		},
	}
}

// stallScenario: the new template never becomes Ready. The rollout stops after maxUnavailable nodes,
// Rollout.Stuck names them, LastProgress stops moving and the progress deadline passes; rolling back
// replaces only the stuck pods.
func stallScenario() simScenario {
	var untouched []string
	return simScenario{
		name: "new-pods-never-ready", about: "5 nodes, maxUnavailable 2, v2 never Ready; then a rollback to v1 (3.2 #4, the rollback e2e test of 3.5)",
		nodes: 5, strategy: maxUnavailable(intOrStr(2)), budget: simBudget{maxUnavailable: 2}, progressDeadlineSeconds: ptr.To[int32](600),
		kubelet: simKubelet{readyAfter: 3 * time.Second, neverReady: "agent:bad"},
		phases: []simPhase{
			{
				title: "template v1 -> bad", atLeast: 700 * time.Second,
				change: func(w *simWorld) {
					untouched = []string{w.podOn("node-2"), w.podOn("node-3"), w.podOn("node-4")}
					w.setTemplate("agent:bad")
				},
				check: func(t *testing.T, w *simWorld) {
					checkLayout(t, w, "node-0=bad node-1=bad node-2=v1 node-3=v1 node-4=v1")
					checkStalled(t, w, "node-0", "node-1")
				},
			},
			{
				title:  "rollback: template bad -> v1",
				change: func(w *simWorld) { w.setTemplate("agent:v1") },
				check: func(t *testing.T, w *simWorld) {
					checkRolledOut(0, 0)(t, w)
					got := []string{w.podOn("node-2"), w.podOn("node-3"), w.podOn("node-4")}
					if !slices.Equal(got, untouched) {
						t.Errorf("pods on node-2..4 are %v, want the same v1 pods as before the rollout %v (no restart)", got, untouched)
					}
				},
			},
		},
	}
}

// checkStalled checks a rollout that stopped: the nodes waiting for their new pod are stuck, and
// Rollout.LastProgress has not moved since that pod was created, for longer than the progress deadline.
func checkStalled(t *testing.T, w *simWorld, nodes ...string) {
	t.Helper()
	r := w.lastPlan.Rollout
	stuck := make([]string, 0, len(r.Stuck))
	for _, s := range r.Stuck {
		stuck = append(stuck, s.Node+": "+string(s.Reason.Code))
	}
	want := make([]string, 0, len(nodes))
	created := time.Time{}
	for _, n := range nodes {
		want = append(want, n+": "+string(ReasonPodNotReady))
		for _, pod := range w.podsByNode()[n] {
			if IsPodUpdated(pod, w.hash) && pod.CreationTimestamp.After(created) {
				created = pod.CreationTimestamp.Time
			}
		}
	}
	if !slices.Equal(stuck, want) {
		t.Errorf("stuck %v, want %v", stuck, want)
	}
	deadline := time.Duration(*w.set.Spec.ProgressDeadlineSeconds) * time.Second
	last := w.now.Add(-simTick)
	if r.Complete || r.Paused || last.Sub(r.LastProgress) <= deadline {
		t.Errorf("at %s: rollout complete %t paused %t, last progress %s: the progress deadline (%s) would not fire",
			w.offset(last), r.Complete, r.Paused, w.offset(r.LastProgress), deadline)
	}
	if !r.LastProgress.Equal(created) || last.Sub(w.progressSince) < deadline {
		t.Errorf("LastProgress %s, unchanged since %s; want %s (the last new pod's creation), unchanged for longer than %s",
			w.offset(r.LastProgress), w.offset(w.progressSince), w.offset(created), deadline)
	}
}

// partitionScenario: partition 2 of 5 updates node-0..2 and leaves node-3 and node-4 alone; lowering it
// to 0 completes the rollout.
func partitionScenario() simScenario {
	var kept []string
	strategy := maxUnavailable(intOrStr(1))
	strategy.RollingUpdate.Partition = ptr.To(intOrStr(2))
	return simScenario{
		name: "partition-2-of-5", about: "5 nodes, maxUnavailable 1, partition 2; then partition 0",
		nodes: 5, strategy: strategy, budget: simBudget{maxUnavailable: 1},
		kubelet: simKubelet{readyAfter: 3 * time.Second},
		phases: []simPhase{
			{
				title: "template v1 -> v2",
				change: func(w *simWorld) {
					kept = []string{w.podOn("node-3"), w.podOn("node-4")}
					w.setTemplate("agent:v2")
				},
				check: func(t *testing.T, w *simWorld) {
					checkLayout(t, w, "node-0=v2 node-1=v2 node-2=v2 node-3=v1 node-4=v1")
					if got := []string{w.podOn("node-3"), w.podOn("node-4")}; !slices.Equal(got, kept) {
						t.Errorf("pods on node-3, node-4 are %v, want the untouched %v", got, kept)
					}
					r := w.lastPlan.Rollout
					if r.Target != 3 || r.Partition != 2 || r.FirstPartitionedNode != "node-3" || r.UpdatedAvailable != 3 || !r.Complete {
						t.Errorf("rollout %+v, want 3/3 complete with partition 2 from node-3", r)
					}
					if s := w.lastPlan.Status; s.UpdatedNumberScheduled != 3 || s.NumberAvailable != 5 {
						t.Errorf("status %+v, want 3 updated, 5 available", s)
					}
					if w.peakUnavailable != 1 {
						t.Errorf("peak unavailable %d, want 1", w.peakUnavailable)
					}
				},
			},
			{
				title:  "partition 2 -> 0",
				change: func(w *simWorld) { w.setPartition(0) },
				check:  checkRolledOut(1, 0),
			},
		},
	}
}

// pauseScenario: pausing mid-rollout lets the replacement under way finish and replaces nothing more; a
// node that joins meanwhile gets a pod of the new template; resuming completes the rollout.
func pauseScenario() simScenario {
	var held []string
	heldNodes := []string{"node-1", "node-2", "node-3", "node-4"}
	podsOn := func(w *simWorld) []string {
		out := make([]string, 0, len(heldNodes))
		for _, n := range heldNodes {
			out = append(out, w.podOn(n))
		}
		return out
	}
	checkHeld := func(t *testing.T, w *simWorld) {
		if got := podsOn(w); !slices.Equal(got, held) {
			t.Errorf("pods on %v are %v, want the v1 pods %v kept while paused", heldNodes, got, held)
		}
	}
	return simScenario{
		name: "pause", about: "5 nodes, maxUnavailable 1: paused after the first replacement began, node-5 joins, resumed",
		nodes: 5, strategy: maxUnavailable(intOrStr(1)), budget: simBudget{maxUnavailable: 1},
		kubelet: simKubelet{readyAfter: 3 * time.Second},
		phases: []simPhase{
			{
				title: "template v1 -> v2, two steps", steps: 2,
				change: func(w *simWorld) {
					held = podsOn(w)
					w.setTemplate("agent:v2")
				},
				check: func(t *testing.T, w *simWorld) {
					checkLayout(t, w, "node-0=v2 node-1=v1 node-2=v1 node-3=v1 node-4=v1")
				},
			},
			{
				title: "pause", atLeast: 30 * time.Second,
				change: func(w *simWorld) { w.setPaused(true) },
				check: func(t *testing.T, w *simWorld) {
					checkLayout(t, w, "node-0=v2 node-1=v1 node-2=v1 node-3=v1 node-4=v1")
					checkHeld(t, w)
					if r := w.lastPlan.Rollout; !r.Paused || r.UpdatedAvailable != 1 || r.Complete {
						t.Errorf("rollout %+v, want paused at 1/5", r)
					}
				},
			},
			{
				title: "node-5 joins", atLeast: 10 * time.Second,
				change: func(w *simWorld) { w.addNode("node-5") },
				check: func(t *testing.T, w *simWorld) {
					checkLayout(t, w, "node-0=v2 node-1=v1 node-2=v1 node-3=v1 node-4=v1 node-5=v2")
					checkHeld(t, w)
				},
			},
			{
				title:  "resume",
				change: func(w *simWorld) { w.setPaused(false) },
				check:  checkRolledOut(1, 0),
			},
		},
	}
}

// updateToV2 is the phase that changes the template's image to agent:v2 and runs the rollout.
func updateToV2(check func(t *testing.T, w *simWorld)) simPhase {
	return simPhase{
		title:  "template v1 -> v2",
		change: func(w *simWorld) { w.setTemplate("agent:v2") },
		check:  check,
	}
}

// checkRolledOut checks the end of a complete rollout: one available pod of the current template on
// every node, and the budgets used as far as expected (a budget never reached proves nothing).
func checkRolledOut(peakUnavailable, peakSurge int) func(t *testing.T, w *simWorld) {
	return func(t *testing.T, w *simWorld) {
		t.Helper()
		names := allNodeNames(w.nodes)
		slices.Sort(names)
		want := make([]string, 0, len(names))
		for _, n := range names {
			want = append(want, n+"="+w.revisions[w.hash])
		}
		checkLayout(t, w, strings.Join(want, " "))
		r, s := w.lastPlan.Rollout, w.lastPlan.Status
		if !r.Complete || len(r.Stuck) > 0 || int(r.UpdatedAvailable) != len(w.nodes) {
			t.Errorf("rollout %+v, want complete on all %d nodes", r, len(w.nodes))
		}
		if n := int32(len(w.nodes)); s.NumberAvailable != n || s.UpdatedNumberScheduled != n || w.lastPlan.CurrentRevision != w.hash {
			t.Errorf("status %+v, current revision %s: want all %d nodes updated and available on %s", s, w.lastPlan.CurrentRevision, n, w.hash)
		}
		if w.peakUnavailable != peakUnavailable || w.peakSurge != peakSurge {
			t.Errorf("peak unavailable %d, peak surge %d; want %d, %d", w.peakUnavailable, w.peakSurge, peakUnavailable, peakSurge)
		}
	}
}

func checkLayout(t *testing.T, w *simWorld, want string) {
	t.Helper()
	if got := w.layout(); got != want {
		t.Errorf("pods at %s:\n got  %s\n want %s", w.offset(w.now), got, want)
	}
}

func line(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "<end of trace>"
}
