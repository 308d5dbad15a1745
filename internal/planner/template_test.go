package planner

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// accepted is the verdict of a template the API server took: the plans of other tests create pods.
var accepted = TemplateVerdict{State: TemplateAccepted}

func TestGateCreates(t *testing.T) {
	later := t0.Add(time.Minute)
	// Three nodes: node-0 has no pod, node-1 a failed pod, node-2 a running one.
	nodes := newNodes(0, 3, nil)
	pods := []*corev1.Pod{
		newPod("failed", "node-1", phase(corev1.PodFailed)),
		newPod("running", "node-2", ready),
	}
	for _, tc := range []struct {
		name    string
		verdict TemplateVerdict
		pods    []*corev1.Pod
		creates []string
		checkOn string
		deletes []del
		requeue time.Duration
	}{
		{name: "accepted: creates stay", verdict: accepted, pods: pods,
			creates: nodeNames(0), deletes: []del{{"failed", "node-1", DeleteFailed}}},
		{name: "unchecked: no creates, a check on the first create's node; deletes go ahead", pods: pods,
			checkOn: "node-0", deletes: []del{{"failed", "node-1", DeleteFailed}}},
		{name: "rejected before its recheck: no creates, no check, back at the recheck",
			verdict: TemplateVerdict{State: TemplateRejected, Message: "bad", RecheckAt: later}, pods: pods,
			deletes: []del{{"failed", "node-1", DeleteFailed}}, requeue: time.Minute},
		{name: "service account missing, recheck due: a check",
			verdict: TemplateVerdict{State: TemplateServiceAccountMissing, RecheckAt: t0}, pods: pods,
			checkOn: "node-0", deletes: []del{{"failed", "node-1", DeleteFailed}}},
		{name: "check failed before its recheck: deletes go ahead, creates wait",
			verdict: TemplateVerdict{State: TemplateCheckFailed, RecheckAt: later}, pods: pods,
			deletes: []del{{"failed", "node-1", DeleteFailed}}, requeue: time.Minute},
		{name: "nothing to create: nothing to check and nothing to wait for",
			verdict: TemplateVerdict{State: TemplateRejected, RecheckAt: later},
			pods:    append([]*corev1.Pod{newPod("p0", "node-0", ready), newPod("p1", "node-1", ready)}, pods[1])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Compute(Input{Set: newSet(), Hash: curHash, Nodes: nodes, Pods: tc.pods, Now: t0, Template: tc.verdict})
			assertPlan(t, p, tc.creates, tc.deletes)
			if p.CheckTemplateOn != tc.checkOn {
				t.Errorf("CheckTemplateOn = %q, want %q", p.CheckTemplateOn, tc.checkOn)
			}
			if p.RequeueAfter != tc.requeue {
				t.Errorf("RequeueAfter = %v, want %v", p.RequeueAfter, tc.requeue)
			}
			if p.Template != tc.verdict {
				t.Errorf("Template = %+v, want the input's %+v", p.Template, tc.verdict)
			}
		})
	}
}
