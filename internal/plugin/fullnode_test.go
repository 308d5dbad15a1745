package plugin

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// A full node: `why` names the resources, compares the agent's requests with the node's free
// allocatable and suggests a PriorityClass.
func TestWhyFullNode(t *testing.T) {
	requests := func(cpu, memory string) func(*corev1.PodSpec) {
		return func(s *corev1.PodSpec) {
			s.Containers[0].Resources.Requests = corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
		}
	}
	set := testSet(requests("500m", "64Mi"))
	hash := planner.TemplateHash(&set.Spec.Template, nil)
	full := node("n1", func(n *corev1.Node) {
		n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"),
			corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourcePods: resource.MustParse("110")}
	})
	message := "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
	agent := pod(set, "agent-x", "n1", hash, func(p *corev1.Pod) {
		p.UID = types.UID("agent-x")
		p.Spec.NodeName = ""
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled,
			Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: message}}}
	})
	s := newSnapshot(set, []*appsv1.ControllerRevision{revisionOf(t, set, 1)}, []*corev1.Node{full}, []*corev1.Pod{agent}, now)
	r := s.reportFor("n1")
	if r.reason.Code != planner.ReasonInsufficientResources {
		t.Fatalf("reason %s, want %s", r.reason.Code, planner.ReasonInsufficientResources)
	}
	other := testSet(requests("1600m", "512Mi"))
	hog := pod(other, "hog", "n1", "h", func(p *corev1.Pod) { p.UID = "hog" })
	r.nodePods = []*corev1.Pod{hog, agent}
	got := strings.Join(s.explain(r, nil), "\n")
	for _, want := range []string{
		"Insufficient cpu",
		"cpu: the agent requests 500m; the node has 2 allocatable, 1600m requested by 1 pods: 400m free.",
		"memory: the agent requests 64Mi; the node has 1Gi allocatable, 512Mi requested by 1 pods: 512Mi free.",
		"system-node-critical",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("why =\n%s\nwant it to contain %q", got, want)
		}
	}
	if !strings.Contains(r.reason.String(), "insufficient cpu") {
		t.Errorf("reason %q does not name the resource", r.reason.String())
	}
}
