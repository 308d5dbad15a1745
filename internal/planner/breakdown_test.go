package planner

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// checkBreakdown checks Plan.Unavailable against the plan's counters and node states: the counts sum
// to NumberUnavailable, each group's nodes are its first nodes by name with that code, groups come
// most nodes first, and it is what Breakdown makes of the node states (Compute gathers it as it goes).
func checkBreakdown(t *testing.T, p Plan) {
	t.Helper()
	if want := Breakdown(p.Nodes); !reflect.DeepEqual(p.Unavailable, want) {
		t.Errorf("Plan.Unavailable = %+v, Breakdown of the node states %+v", p.Unavailable, want)
	}
	sum := int32(0)
	for i, g := range p.Unavailable {
		sum += g.Count
		var want []string
		for name, s := range p.Nodes {
			if s.Placement.ShouldRun && s.Reason.Code == g.Code {
				want = append(want, name)
			}
		}
		slices.Sort(want)
		if int(g.Count) != len(want) || !slices.Equal(g.Nodes, want[:min(len(want), MaxNodesPerGroup)]) {
			t.Errorf("group %s: count %d nodes %v, want %d %v", g.Code, g.Count, g.Nodes, len(want), want)
		}
		if g.Code.Outdated() {
			t.Errorf("group %s: a code of an available node", g.Code)
		}
		if i > 0 && p.Unavailable[i-1].Count < g.Count {
			t.Errorf("groups not most nodes first: %+v", p.Unavailable)
		}
	}
	if sum != p.Status.NumberUnavailable || sum != p.Status.DesiredNumberScheduled-p.Status.NumberAvailable {
		t.Errorf("breakdown sums to %d, status %+v", sum, p.Status)
	}
}

func TestBreakdown(t *testing.T) {
	eligible := Placement{ShouldRun: true, ShouldContinueRunning: true}
	states := map[string]NodeState{
		"a": {Placement: eligible, Reason: NodeReason{Code: ReasonNodeNotReady}},
		"b": {Placement: eligible, Reason: NodeReason{Code: ReasonNodeNotReady}},
		"c": {Placement: eligible, Reason: NodeReason{Code: ReasonImagePull}},
		"d": {Placement: eligible, Reason: NodeReason{Code: ReasonWaitingForBudget}},
		"e": {Placement: Placement{}, Reason: NodeReason{Code: ReasonTaintNotTolerated}},
	}
	for i := range 7 {
		states[fmt.Sprintf("f%d", i)] = NodeState{Placement: eligible, Reason: NodeReason{Code: ReasonCrashLoop}}
	}
	got := Breakdown(states)
	want := []UnavailableGroup{
		{Code: ReasonCrashLoop, Count: 7, Nodes: []string{"f0", "f1", "f2", "f3", "f4"}},
		{Code: ReasonNodeNotReady, Count: 2, Nodes: []string{"a", "b"}},
		{Code: ReasonImagePull, Count: 1, Nodes: []string{"c"}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Breakdown = %v, want %v", got, want)
	}
	if Breakdown(map[string]NodeState{"d": states["d"]}) != nil {
		t.Error("Breakdown of available nodes is not empty")
	}
}

// TestBreakdownSumsToUnavailable is the property test: over random worlds (nodes ready or not,
// tainted, excluded; pods of either template in every state; every strategy and policy), the
// breakdown sums to NumberUnavailable and names each node under its own code. The seed is fixed, so
// a failure is reproducible; -run with -count to vary nothing.
func TestBreakdownSumsToUnavailable(t *testing.T) {
	rng := rand.New(rand.NewSource(16))
	for i := range 2000 {
		in := randomInput(rng)
		p := Compute(in)
		checkBreakdown(t, p)
		if t.Failed() {
			t.Fatalf("world %d: %d nodes, %d pods, strategy %+v", i, len(in.Nodes), len(in.Pods), in.Set.Spec.UpdateStrategy)
		}
	}
}

func randomInput(rng *rand.Rand) Input {
	strategies := []nasv1alpha1.NodeAgentSetUpdateStrategy{onDelete(), maxUnavailable(intOrStr(1)), maxUnavailable(intOrStr(3)),
		maxSurge(intOrStr(2)), partitionOf(2), pausedStrategy()}
	strategy := strategies[rng.Intn(len(strategies))]
	if strategy.RollingUpdate != nil && rng.Intn(2) == 0 {
		strategy.RollingUpdate.UnhealthyNodePolicy = nasv1alpha1.UnhealthyNodeSkip
	}
	set := newSet(withStrategy(strategy), withNodeSelector(map[string]string{"agent": "yes"}), withMinReadySeconds(int32(rng.Intn(2)*10)))
	now := t0
	in := Input{Set: set, Hash: curHash, Now: now, RolloutStartedAt: now.Add(-time.Hour), Template: accepted,
		FailedPodBackoffUntil: map[string]time.Time{}}
	n := 1 + rng.Intn(12)
	for i := range n {
		name := fmt.Sprintf("node-%02d", i)
		labels := map[string]string{"agent": "yes"}
		if rng.Intn(6) == 0 {
			labels = nil
		}
		node := newNode(name, labels)
		switch rng.Intn(5) {
		case 0:
			deadNode(now.Add(-time.Duration(rng.Intn(120)) * time.Second))(node)
		case 1:
			withTaints(corev1.Taint{Key: corev1.TaintNodeOutOfService, Effect: corev1.TaintEffectNoSchedule})(node)
		}
		in.Nodes = append(in.Nodes, node)
		if rng.Intn(4) == 0 {
			in.FailedPodBackoffUntil[name] = now.Add(time.Minute)
		}
		for j := range rng.Intn(3) {
			in.Pods = append(in.Pods, randomPod(rng, fmt.Sprintf("%s-%d", name, j), name, now))
		}
	}
	if rng.Intn(4) == 0 {
		in.Pods = append(in.Pods, randomPod(rng, "gone-0", "gone", now))
	}
	return in
}

func randomPod(rng *rand.Rand, name, node string, now time.Time) *corev1.Pod {
	hash := curHash
	if rng.Intn(2) == 0 {
		hash = oldHash
	}
	pod := newPod(name, node, withHash(hash), created(now.Add(-time.Duration(rng.Intn(600))*time.Second)))
	switch rng.Intn(10) {
	case 0:
		pod.Status.Phase = corev1.PodFailed
	case 1:
		shutDown(pod)
	case 2:
		pod.Status.Phase = corev1.PodSucceeded
	case 3:
		terminating(pod)
	case 4:
		pod.Status.Phase = corev1.PodPending
		pod.Spec.NodeName = ""
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled,
			Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available: 1 Insufficient cpu."})
		unboundTo(node)(pod)
	case 5:
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}
	case 6:
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}
	}
	switch rng.Intn(3) {
	case 0:
		setReady(pod, corev1.ConditionTrue, now.Add(-time.Duration(rng.Intn(20))*time.Second))
	case 1:
		setReady(pod, corev1.ConditionFalse, now.Add(-time.Hour))
	}
	return pod
}
