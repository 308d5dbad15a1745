package planner

import (
	"reflect"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodProblem(t *testing.T) {
	readyNode := newNode("n", nil)
	notReadyNode := newNode("n", nil, withNodeCondition(corev1.NodeReady, corev1.ConditionFalse))
	waiting := func(reason string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent", RestartCount: 4,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}}
		}
	}
	unschedulable := func(p *corev1.Pod) {
		p.Spec.NodeName = ""
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: "0/1 nodes are available: insufficient memory.",
		}}
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		node *corev1.Node
		want NodeReason
	}{
		{name: "no pod", node: readyNode, want: NodeReason{Code: ReasonNoPod}},
		{name: "terminating", pod: newPod("p", "n", terminating, phase(corev1.PodFailed)), node: readyNode,
			want: NodeReason{Code: ReasonPodTerminating}},
		{
			name: "failed with reason",
			pod:  newPod("p", "n", phase(corev1.PodFailed), func(p *corev1.Pod) { p.Status.Reason = "Evicted" }),
			node: readyNode, want: NodeReason{Code: ReasonPodFailed, Message: "Evicted"},
		},
		{name: "failed without reason", pod: newPod("p", "n", phase(corev1.PodFailed)), node: readyNode, want: NodeReason{Code: ReasonPodFailed}},
		{name: "succeeded", pod: newPod("p", "n", phase(corev1.PodSucceeded)), node: readyNode, want: NodeReason{Code: ReasonPodSucceeded}},
		{
			name: "unschedulable", pod: newPod("p", "", unschedulable), node: readyNode,
			want: NodeReason{Code: ReasonUnschedulable, SchedulerReason: "Unschedulable", Message: "0/1 nodes are available: insufficient memory."},
		},
		{name: "node not ready", pod: newPod("p", "n"), node: notReadyNode, want: NodeReason{Code: ReasonNodeNotReady}},
		{name: "crash loop", pod: newPod("p", "n", waiting("CrashLoopBackOff")), node: readyNode,
			want: NodeReason{Code: ReasonCrashLoop, Container: "agent", WaitingReason: "CrashLoopBackOff", Restarts: 4}},
		{name: "image pull", pod: newPod("p", "n", waiting("ImagePullBackOff")), node: readyNode,
			want: NodeReason{Code: ReasonImagePull, Container: "agent", WaitingReason: "ImagePullBackOff", Restarts: 4}},
		{name: "other waiting reason", pod: newPod("p", "n", waiting("CreateContainerConfigError")), node: readyNode,
			want: NodeReason{Code: ReasonContainerWaiting, Container: "agent", WaitingReason: "CreateContainerConfigError", Restarts: 4}},
		{
			name: "creating is not a problem yet",
			pod:  newPod("p", "n", waiting("ContainerCreating"), phase(corev1.PodPending)), node: readyNode, want: NodeReason{Code: ReasonPodStarting},
		},
		{name: "not scheduled yet", pod: newPod("p", "", phase(corev1.PodPending)), node: readyNode, want: NodeReason{Code: ReasonNotScheduled}},
		{name: "running, not ready", pod: newPod("p", "n", notReady), node: readyNode, want: NodeReason{Code: ReasonPodNotReady}},
		{name: "ready, not yet available", pod: newPod("p", "n", ready), node: readyNode, want: NodeReason{Code: ReasonMinReadySeconds}},
		{name: "unknown node is not blamed", pod: newPod("p", "n", notReady), want: NodeReason{Code: ReasonPodNotReady}},
		{
			name: "a node without conditions counts as ready",
			pod:  newPod("p", "n", notReady), node: newNode("n", nil, func(n *corev1.Node) { n.Status.Conditions = nil }),
			want: NodeReason{Code: ReasonPodNotReady},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodProblem(tt.pod, tt.node); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PodProblem() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The plan refines PodProblem with what only it knows: the template verdict for a node without a
// pod, a failed pod's backoff, when a Ready pod becomes available; and it names why an available
// pod of an older template is still there.
func TestPlanNodeReasons(t *testing.T) {
	nodes := newNodes(0, 6, nil)
	pods := []*corev1.Pod{
		newPod("p1", "node-1", phase(corev1.PodFailed)),
		newPod("p2", "node-2", readySince(t0.Add(-5*time.Second))),
		newPod("p3", "node-3", withHash("old"), ready),
		newPod("p4", "node-4", withHash("old"), ready),
		newPod("p5", "node-5", withHash("old"), ready),
	}
	backoff := map[string]time.Time{"node-1": t0.Add(time.Minute)}
	set := newSet(withMinReadySeconds(10), withStrategy(partitionOf(1)))
	in := Input{Set: set, Hash: curHash, Nodes: nodes, Pods: pods, Now: t0, FailedPodBackoffUntil: backoff,
		Template: TemplateVerdict{State: TemplateRejected, Message: "no"}}
	p := Compute(in)
	want := map[string]NodeReason{
		"node-0": {Code: ReasonTemplateRejected, Message: "no"},
		"node-1": {Code: ReasonFailedBackoff, Until: t0.Add(time.Minute)},
		"node-2": {Code: ReasonMinReadySeconds, Until: t0.Add(5 * time.Second)},
		"node-3": {Code: ReasonWaitingForBudget},
		"node-4": {Code: ReasonWaitingForBudget},
		"node-5": {Code: ReasonPartitioned},
	}
	for name, w := range want {
		if got := p.Nodes[name].Reason; !reflect.DeepEqual(got, w) {
			t.Errorf("%s: reason %+v, want %+v", name, got, w)
		}
	}
	if !p.Nodes["node-5"].Partitioned || p.Nodes["node-4"].Partitioned {
		t.Errorf("partitioned flags: node-4 %t, node-5 %t", p.Nodes["node-4"].Partitioned, p.Nodes["node-5"].Partitioned)
	}
	in.Template = TemplateVerdict{State: TemplateServiceAccountMissing}
	if got := Compute(in).Nodes["node-0"].Reason.Code; got != ReasonServiceAccountMissing {
		t.Errorf("node without pod, ServiceAccount missing: %s", got)
	}
	in.Template = TemplateVerdict{State: TemplateAccepted}
	if got := Compute(in).Nodes["node-0"].Reason.Code; got != ReasonNoPod {
		t.Errorf("node without pod, template accepted: %s", got)
	}
	for _, tc := range []struct {
		name string
		set  func(*TemplateVerdict, *Input)
		want ReasonCode
	}{
		{name: "paused", want: ReasonPaused, set: func(_ *TemplateVerdict, in *Input) {
			in.Set = newSet(withStrategy(pausedStrategy()))
		}},
		{name: "OnDelete", want: ReasonOnDelete, set: func(_ *TemplateVerdict, in *Input) { in.Set = newSet(withStrategy(onDelete())) }},
	} {
		in := in
		tc.set(&in.Template, &in)
		if got := Compute(in).Nodes["node-3"].Reason.Code; got != tc.want {
			t.Errorf("%s: outdated node reason %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestInsufficientResources(t *testing.T) {
	tests := []struct {
		message string
		want    []string
	}{
		{"0/1 nodes are available: 1 Insufficient cpu.", []string{"cpu"}},
		{"0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector. " +
			"preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod.", []string{"cpu", "memory"}},
		{"0/1 nodes are available: 1 Insufficient example.com/gpu.", []string{"example.com/gpu"}},
		{"0/1 nodes are available: 1 Too many pods.", []string{"pods"}},
		{"0/1 nodes are available: 1 node(s) had untolerated taint {a: b}.", nil},
	}
	for _, tt := range tests {
		if got := insufficientResources(tt.message); !slices.Equal(got, tt.want) {
			t.Errorf("insufficientResources(%q) = %v, want %v", tt.message, got, tt.want)
		}
	}
	pod := newPod("p", "", func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: corev1.PodReasonUnschedulable, Message: tests[1].message, LastTransitionTime: metav1.NewTime(t0)}}
	})
	if r := PodProblem(pod, nil); r.Code != ReasonInsufficientResources || !slices.Equal(r.Resources, []string{"cpu", "memory"}) {
		t.Errorf("PodProblem = %+v, want %s with cpu, memory", r, ReasonInsufficientResources)
	}
}
