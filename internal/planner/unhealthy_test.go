package planner

import (
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// The dead-node world: 100 nodes run a Ready pod of the old template; some nodes are dead (NotReady
// for an hour, tainted unreachable). A dead node's kubelet does nothing: its pods never become Ready
// and never finish terminating. Healthy kubelets make a pod Ready one step after its creation and
// remove a deleted pod at once. Every step plans, checks and applies the plan.

type deadWorld struct {
	t     *testing.T
	set   *nasv1alpha1.NodeAgentSet
	nodes []*corev1.Node
	pods  []*corev1.Pod
	dead  map[string]bool
	now   time.Time
	seq   int
	// writes counts the deletes and creates per node.
	writes map[string]int
	// peakHealthyUnavailable is the most healthy nodes without an available pod at once.
	peakHealthyUnavailable int
	last                   Plan
}

func unhealthyPolicy(p nasv1alpha1.UnhealthyNodePolicy) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) {
		set.Spec.UpdateStrategy = maxUnavailable(intOrStr(1))
		set.Spec.UpdateStrategy.RollingUpdate.UnhealthyNodePolicy = p
	}
}

// deadNode makes a node NotReady since at, tainted unreachable since at (as the node lifecycle
// controller does).
func deadNode(at time.Time) func(*corev1.Node) {
	return func(n *corev1.Node) {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
			LastTransitionTime: metav1.NewTime(at)}}
		added := metav1.NewTime(at)
		n.Spec.Taints = []corev1.Taint{
			{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule},
			{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added},
		}
	}
}

// tolerateAll is the toleration most node agents carry: every taint.
var tolerateAll = withTolerations(corev1.Toleration{Operator: corev1.TolerationOpExists})

// newDeadWorld builds the world; with tolerant, the template tolerates every taint, so dead nodes stay
// eligible; without, their unreachable:NoSchedule taint makes them ineligible, but they keep their pods.
func newDeadWorld(t *testing.T, policy nasv1alpha1.UnhealthyNodePolicy, tolerant bool, n int, dead ...string) *deadWorld {
	set := newSet(unhealthyPolicy(policy))
	if tolerant {
		tolerateAll(set)
	}
	w := &deadWorld{t: t, set: set, dead: map[string]bool{}, now: t0, writes: map[string]int{}}
	for _, d := range dead {
		w.dead[d] = true
	}
	for i := range n {
		name := fmt.Sprintf("node-%03d", i)
		node := newNode(name, nil)
		pod := newPod("old-"+name, name, withHash(oldHash), created(t0.Add(-2*time.Hour)), ready)
		if w.dead[name] {
			deadNode(t0.Add(-time.Hour))(node)
			notReady(pod)
		}
		w.nodes = append(w.nodes, node)
		w.pods = append(w.pods, pod)
	}
	return w
}

func (w *deadWorld) step() Plan {
	w.t.Helper()
	p := Compute(Input{Set: w.set, Hash: curHash, Nodes: w.nodes, Pods: w.pods, Now: w.now, RolloutStartedAt: t0, Template: accepted})
	checkBreakdown(w.t, p)
	for _, d := range p.Deletes {
		w.writes[d.Node]++
		i := slices.IndexFunc(w.pods, func(pod *corev1.Pod) bool { return pod.Name == d.Pod.Name })
		if w.dead[d.Node] {
			ts := metav1.NewTime(w.now.Add(30 * time.Second))
			grace := int64(30)
			w.pods[i].DeletionTimestamp, w.pods[i].DeletionGracePeriodSeconds = &ts, &grace
			continue
		}
		w.pods = slices.Delete(w.pods, i, i+1)
	}
	for _, node := range p.Creates {
		w.writes[node]++
		w.seq++
		w.pods = append(w.pods, newPod(fmt.Sprintf("new-%s-%d", node, w.seq), node, created(w.now), notReady))
	}
	w.now = w.now.Add(time.Second)
	// The kubelets of healthy nodes make the new pods Ready.
	for _, pod := range w.pods {
		if !w.dead[pod.Spec.NodeName] && !IsPodReady(pod) {
			setReady(pod, corev1.ConditionTrue, w.now)
		}
	}
	unavailable := 0
	for _, n := range w.nodes {
		if !w.dead[n.Name] && !slices.ContainsFunc(w.pods, func(pod *corev1.Pod) bool {
			return pod.Spec.NodeName == n.Name && pod.DeletionTimestamp == nil && IsPodReady(pod)
		}) {
			unavailable++
		}
	}
	w.peakHealthyUnavailable = max(w.peakHealthyUnavailable, unavailable)
	w.last = p
	return p
}

// run steps until the rollout completes or n steps passed.
func (w *deadWorld) run(n int) Plan {
	w.t.Helper()
	for range n {
		if p := w.step(); p.Rollout.Complete && len(p.Creates)+len(p.Deletes) == 0 {
			return p
		}
	}
	return w.last
}

// revive brings the dead nodes back: Ready now, untainted; their kubelets mark the old pods Ready again.
func (w *deadWorld) revive() {
	for _, n := range w.nodes {
		if w.dead[n.Name] {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(w.now)}}
			n.Spec.Taints = nil
		}
	}
	for _, pod := range w.pods {
		if w.dead[pod.Spec.NodeName] {
			setReady(pod, corev1.ConditionTrue, w.now)
		}
	}
	w.dead = map[string]bool{}
}

func (w *deadWorld) updatedNodes() []string {
	var out []string
	for _, pod := range w.pods {
		if IsPodUpdated(pod, curHash) && IsPodReady(pod) && pod.DeletionTimestamp == nil {
			out = append(out, pod.Spec.NodeName)
		}
	}
	slices.Sort(out)
	return out
}

var deadNodes = []string{"node-010", "node-050", "node-090"}

// With Count (upstream): the dead nodes' old pods are not available, so they are replaced at once,
// outside the budget; the deletes never finish on dead kubelets, and the three terminating pods hold
// the whole budget: not one healthy node is updated, for ever.
func TestDeadNodesCountStallsTheRollout(t *testing.T) {
	for _, tolerant := range []bool{true, false} {
		t.Run(fmt.Sprintf("tolerates all taints %t", tolerant), func(t *testing.T) {
			w := newDeadWorld(t, nasv1alpha1.UnhealthyNodeCount, tolerant, 100, deadNodes...)
			p := w.run(700)
			if p.Rollout.Complete || len(w.updatedNodes()) != 0 || len(p.Rollout.Skipped) != 0 || p.Rollout.Phase != RolloutDeadlineExceeded {
				t.Fatalf("rollout %+v, updated %v: want upstream's stall, no node updated", p.Rollout, w.updatedNodes())
			}
			for _, d := range deadNodes {
				if w.writes[d] != 1 {
					t.Errorf("%s: %d writes, want the one delete of its unavailable old pod, as upstream", d, w.writes[d])
				}
			}
			// Eligible dead nodes are in the target and stuck; ineligible ones (an untolerated
			// unreachable:NoSchedule taint) are not, as upstream counts them, yet their terminating pods
			// hold the budget all the same.
			wantTarget, wantStuck := 97, 0
			if tolerant {
				wantTarget, wantStuck = 100, 3
			}
			if int(p.Rollout.Target) != wantTarget || len(p.Rollout.Stuck) != wantStuck {
				t.Errorf("rollout target %d, stuck %v: want %d, %d stuck", p.Rollout.Target, p.Rollout.Stuck, wantTarget, wantStuck)
			}
		})
	}
}

// With Skip: the rollout updates the 97 healthy nodes one at a time and completes, the 3 dead nodes
// untouched and listed as skipped; once they are back, they are updated within the budget.
func TestDeadNodesSkipCompletesTheRollout(t *testing.T) {
	for _, tolerant := range []bool{true, false} {
		t.Run(fmt.Sprintf("tolerates all taints %t", tolerant), func(t *testing.T) { testDeadNodesSkip(t, tolerant) })
	}
}

func testDeadNodesSkip(t *testing.T, tolerant bool) {
	w := newDeadWorld(t, nasv1alpha1.UnhealthyNodeSkip, tolerant, 100, deadNodes...)
	p := w.run(1000)
	if !p.Rollout.Complete || p.Rollout.Phase != RolloutComplete || len(w.updatedNodes()) != 97 || p.Rollout.Target != 97 {
		t.Fatalf("rollout %+v, %d nodes updated: want complete on the 97 healthy nodes", p.Rollout, len(w.updatedNodes()))
	}
	if w.peakHealthyUnavailable > 1 {
		t.Errorf("%d healthy nodes without an available pod at once, maxUnavailable 1", w.peakHealthyUnavailable)
	}
	skipped := make([]string, 0, len(p.Rollout.Skipped))
	for _, s := range p.Rollout.Skipped {
		skipped = append(skipped, s.Node)
		if s.Reason.Code != ReasonSkippedUnhealthy || s.Reason.Taint == nil || s.Reason.Taint.Key != corev1.TaintNodeUnreachable {
			t.Errorf("skipped %s: reason %+v, want %s with the unreachable taint", s.Node, s.Reason, ReasonSkippedUnhealthy)
		}
	}
	if !slices.Equal(skipped, deadNodes) {
		t.Errorf("skipped %v, want %v", skipped, deadNodes)
	}
	for _, d := range deadNodes {
		if w.writes[d] != 0 {
			t.Errorf("%s: %d writes while dead, want none", d, w.writes[d])
		}
		if got := p.Nodes[d].Reason.Code; tolerant && got != ReasonNodeNotReady {
			t.Errorf("%s: node reason %s, want %s (its old pod is not available)", d, got, ReasonNodeNotReady)
		}
	}

	w.revive()
	w.peakHealthyUnavailable = 0
	p = w.run(100)
	if !p.Rollout.Complete || len(w.updatedNodes()) != 100 || p.Rollout.Target != 100 || len(p.Rollout.Skipped) != 0 {
		t.Fatalf("after the dead nodes came back: rollout %+v, %d nodes updated: want all 100", p.Rollout, len(w.updatedNodes()))
	}
	if w.peakHealthyUnavailable > 1 {
		t.Errorf("%d nodes without an available pod at once after the dead nodes came back, maxUnavailable 1", w.peakHealthyUnavailable)
	}
}

// The surge path skips unhealthy nodes too: no surge pod on a dead node, which would hold maxSurge for
// ever.
func TestDeadNodeSkipWithSurge(t *testing.T) {
	set := newSet(withStrategy(maxSurge(intOrStr(1))))
	set.Spec.UpdateStrategy.RollingUpdate.UnhealthyNodePolicy = nasv1alpha1.UnhealthyNodeSkip
	nodes := []*corev1.Node{newNode("a", nil, deadNode(t0.Add(-time.Hour))), newNode("b", nil)}
	pods := []*corev1.Pod{newPod("a-old", "a", withHash(oldHash), notReady), newPod("b-old", "b", withHash(oldHash), ready)}
	p := Compute(Input{Set: set, Hash: curHash, Nodes: nodes, Pods: pods, Now: t0, Template: accepted})
	assertPlan(t, p, []string{"b"}, nil)
}

// Whether a node counts is decided from the world: when it broke against when the rollout touched it.
func TestSkippedNodes(t *testing.T) {
	brokeAt := t0.Add(-10 * time.Minute)
	notReadySince := func(at time.Time) func(*corev1.Node) {
		return func(n *corev1.Node) {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(at)}}
		}
	}
	tests := []struct {
		name     string
		policy   nasv1alpha1.UnhealthyNodePolicy
		node     *corev1.Node
		pods     []*corev1.Pod
		wantSkip bool
	}{
		{name: "Count never skips", policy: nasv1alpha1.UnhealthyNodeCount, node: newNode("n", nil, notReadySince(brokeAt)),
			pods: []*corev1.Pod{newPod("old", "n", withHash(oldHash), notReady)}},
		{name: "not ready for longer than the grace period, old pod", policy: nasv1alpha1.UnhealthyNodeSkip,
			node: newNode("n", nil, notReadySince(brokeAt)), pods: []*corev1.Pod{newPod("old", "n", withHash(oldHash), notReady)}, wantSkip: true},
		{name: "not ready within the grace period counts", policy: nasv1alpha1.UnhealthyNodeSkip,
			node: newNode("n", nil, notReadySince(t0.Add(-UnhealthyGracePeriod+time.Second))),
			pods: []*corev1.Pod{newPod("old", "n", withHash(oldHash), notReady)}},
		{name: "a not-ready taint skips at once", policy: nasv1alpha1.UnhealthyNodeSkip,
			node: newNode("n", nil, withTaints(corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule})),
			pods: []*corev1.Pod{newPod("old", "n", withHash(oldHash), ready)}, wantSkip: true},
		{name: "out-of-service taint", policy: nasv1alpha1.UnhealthyNodeSkip,
			node: newNode("n", nil, withTaints(corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute})),
			pods: []*corev1.Pod{newPod("old", "n", withHash(oldHash), notReady)}, wantSkip: true},
		{name: "new pod created before the node broke: counts (the new version may be at fault)", policy: nasv1alpha1.UnhealthyNodeSkip,
			node: newNode("n", nil, notReadySince(brokeAt)), pods: []*corev1.Pod{newPod("new", "n", created(brokeAt.Add(-time.Minute)), notReady)}},
		{name: "old pod deleted before the node broke: counts", policy: nasv1alpha1.UnhealthyNodeSkip,
			node: newNode("n", nil, notReadySince(t0.Add(-time.Minute))),
			pods: []*corev1.Pod{newPod("old", "n", withHash(oldHash), notReady, deletedAt(t0.Add(-5*time.Minute)))}},
		{name: "old pod deleted after the node broke: skipped", policy: nasv1alpha1.UnhealthyNodeSkip,
			node: newNode("n", nil, notReadySince(brokeAt)),
			pods: []*corev1.Pod{newPod("old", "n", withHash(oldHash), notReady, deletedAt(brokeAt.Add(time.Minute)))}, wantSkip: true},
		{name: "new pod created on the broken node: skipped", policy: nasv1alpha1.UnhealthyNodeSkip,
			node: newNode("n", nil, notReadySince(brokeAt)), pods: []*corev1.Pod{newPod("new", "n", created(brokeAt.Add(time.Minute)), notReady)}, wantSkip: true},
		{name: "new pod available: nothing to skip", policy: nasv1alpha1.UnhealthyNodeSkip,
			node: newNode("n", nil, withTaints(corev1.Taint{Key: corev1.TaintNodeOutOfService, Effect: corev1.TaintEffectNoSchedule})),
			pods: []*corev1.Pod{newPod("new", "n", ready)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Compute(Input{Set: newSet(unhealthyPolicy(tt.policy), tolerateAll), Hash: curHash, Nodes: []*corev1.Node{tt.node}, Pods: tt.pods,
				Now: t0, RolloutStartedAt: t0.Add(-time.Hour), Template: accepted})
			skipped := len(p.Rollout.Skipped) == 1
			if skipped != tt.wantSkip {
				t.Fatalf("skipped %v (target %d, stuck %v), want skipped %t", p.Rollout.Skipped, p.Rollout.Target, p.Rollout.Stuck, tt.wantSkip)
			}
			if skipped && (len(p.Deletes) > 0 || p.Rollout.Target != 0 || !p.Rollout.Complete) {
				t.Errorf("skipped node: deletes %v, target %d, complete %t: want no delete, target 0, complete", dels(p), p.Rollout.Target, p.Rollout.Complete)
			}
		})
	}
}

// deletedAt marks the pod terminating, its deletion asked for at t with a 30 s grace period.
func deletedAt(t time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		ts, grace := metav1.NewTime(t.Add(30*time.Second)), int64(30)
		p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &grace
	}
}

// shutDown marks the pod as the kubelet leaves it after a graceful node shutdown.
func shutDown(p *corev1.Pod) {
	p.Status.Phase = corev1.PodFailed
	p.Status.Reason = "Terminated"
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget,
		Status: corev1.ConditionTrue, Reason: corev1.PodReasonTerminationByKubelet})
}

// A node goes through a graceful shutdown and back: no delete or create while it is down, whatever the
// strategy, whether the template tolerates the node's not-ready taint or not; once it is Ready, one
// delete of the failed pod and one create.
func TestGracefulShutdown(t *testing.T) {
	strategies := []nasv1alpha1.NodeAgentSetUpdateStrategy{onDelete(), maxUnavailable(intOrStr(1)), maxSurge(intOrStr(1))}
	for _, strategy := range strategies {
		for _, tolerant := range []bool{true, false} {
			name := fmt.Sprintf("%s surge %t tolerant %t", strategy.Type, strategy.RollingUpdate != nil && strategy.RollingUpdate.MaxSurge != nil, tolerant)
			t.Run(name, func(t *testing.T) {
				set := newSet(withStrategy(strategy))
				if tolerant {
					tolerateAll(set)
				}
				node := newNode("n", nil, deadNode(t0.Add(-time.Minute)))
				pods := []*corev1.Pod{newPod("agent", "n", withHash(oldHash), shutDown)}
				creates, deletes := 0, 0
				now := t0
				for range 60 {
					p := Compute(Input{Set: set, Hash: curHash, Nodes: []*corev1.Node{node}, Pods: pods, Now: now, Template: accepted})
					creates, deletes = creates+len(p.Creates), deletes+len(p.Deletes)
					if got := p.Nodes["n"].Reason.Code; tolerant && got != ReasonNodeShutdown {
						t.Fatalf("reason %s, want %s", got, ReasonNodeShutdown)
					}
					checkBreakdown(t, p)
					now = now.Add(time.Second)
				}
				if creates+deletes != 0 {
					t.Fatalf("%d creates and %d deletes while the node is down, want none", creates, deletes)
				}
				node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now)}}
				node.Spec.Taints = nil
				for range 5 {
					p := Compute(Input{Set: set, Hash: curHash, Nodes: []*corev1.Node{node}, Pods: pods, Now: now, Template: accepted})
					creates, deletes = creates+len(p.Creates), deletes+len(p.Deletes)
					for _, d := range p.Deletes {
						if d.Reason != DeleteFailed {
							t.Errorf("deletes %s for %s, want %s", d.Pod.Name, d.Reason, DeleteFailed)
						}
						pods = slices.DeleteFunc(pods, func(pod *corev1.Pod) bool { return pod.Name == d.Pod.Name })
					}
					for range p.Creates {
						pods = append(pods, newPod("agent-new", "n", created(now), readySince(now)))
					}
					now = now.Add(time.Second)
				}
				if creates != 1 || deletes != 1 || len(pods) != 1 || pods[0].Name != "agent-new" {
					t.Errorf("back up: %d creates, %d deletes, pods %d: want one of each and the new pod", creates, deletes, len(pods))
				}
			})
		}
	}
}

// Only a pod the kubelet terminated for a shutdown, on a node that is not Ready, is kept: other
// failed pods keep upstream's delete and backoff (rule 22).
func TestShutdownPodKeptOnlyWhileNodeDown(t *testing.T) {
	set := newSet()
	tests := []struct {
		name string
		node *corev1.Node
		pod  *corev1.Pod
		want []del
	}{
		{name: "shutdown pod, node down", node: newNode("n", nil, deadNode(t0)), pod: newPod("p", "n", shutDown)},
		{name: "shutdown pod, node Ready", node: newNode("n", nil), pod: newPod("p", "n", shutDown),
			want: []del{{Pod: "p", Node: "n", Reason: DeleteFailed}}},
		{name: "shutdown pod, node Ready but out of service", pod: newPod("p", "n", shutDown),
			node: newNode("n", nil, withTaints(corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoSchedule}))},
		{name: "other failed pod, node down", node: newNode("n", nil, deadNode(t0)), pod: newPod("p", "n", phase(corev1.PodFailed)),
			want: []del{{Pod: "p", Node: "n", Reason: DeleteFailed}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Compute(Input{Set: set, Hash: curHash, Nodes: []*corev1.Node{tt.node}, Pods: []*corev1.Pod{tt.pod}, Now: t0, Template: accepted})
			assertPlan(t, p, nil, tt.want)
		})
	}
}

// A node that is not Ready yet within the grace period wakes the controller when the grace ends.
func TestRequeueAtTheEndOfTheGracePeriod(t *testing.T) {
	node := newNode("n", nil, func(n *corev1.Node) {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse,
			LastTransitionTime: metav1.NewTime(t0.Add(-10 * time.Second))}}
	})
	pods := []*corev1.Pod{newPod("p", "n", ready)}
	for policy, want := range map[nasv1alpha1.UnhealthyNodePolicy]time.Duration{
		nasv1alpha1.UnhealthyNodeSkip:  UnhealthyGracePeriod - 10*time.Second,
		nasv1alpha1.UnhealthyNodeCount: 0,
	} {
		p := Compute(Input{Set: newSet(unhealthyPolicy(policy)), Hash: curHash, Nodes: []*corev1.Node{node}, Pods: pods, Now: t0, Template: accepted})
		if got := requeueBeforeDeadline(p, t0); got != want {
			t.Errorf("%s: RequeueAfter %s, want %s", policy, got, want)
		}
	}
}
