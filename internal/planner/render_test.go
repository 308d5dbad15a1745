package planner

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The renderer's sentences live in golden files, and only there: other tests assert codes, or
// compare with what the renderer says. Rewrite them after a deliberate change of wording with
//
//	go test ./internal/planner -run TestRender -update

// checkGolden compares got with testdata/render/<name>.golden, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	assertGolden(t, filepath.Join("render", name), got)
}

// renderReasons is one reason of every code, with its details.
var renderReasons = []NodeReason{
	{Code: ReasonNodeNameMismatch, NodeName: "node-2"},
	{Code: ReasonNodeSelectorMismatch, SelectorKey: "gpu", SelectorValue: "true"},
	{Code: ReasonNodeSelectorMismatch},
	{Code: ReasonNodeAffinityMismatch, AffinityTerms: 2},
	{Code: ReasonTaintNotTolerated, Taint: &corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}},
	{Code: ReasonTaintNotTolerated, Taint: &corev1.Taint{Key: "dedicated", Effect: corev1.TaintEffectNoExecute}},
	{Code: ReasonNoPod},
	{Code: ReasonTemplateRejected, Message: "pods \"x\" is forbidden"},
	{Code: ReasonServiceAccountMissing, Message: "serviceaccount \"agent\" not found"},
	{Code: ReasonFailedBackoff, Message: "Evicted", Until: t0},
	{Code: ReasonPodFailed, Message: "Evicted"},
	{Code: ReasonPodFailed},
	{Code: ReasonPodSucceeded},
	{Code: ReasonPodTerminating},
	{Code: ReasonUnschedulable, SchedulerReason: "Unschedulable", Message: "0/1 nodes are available: insufficient memory."},
	{Code: ReasonNodeNotReady},
	{Code: ReasonImagePull, Container: "agent", WaitingReason: "ImagePullBackOff"},
	{Code: ReasonCrashLoop, Container: "agent", WaitingReason: "CrashLoopBackOff", Restarts: 4},
	{Code: ReasonContainerWaiting, Container: "agent", WaitingReason: "CreateContainerConfigError"},
	{Code: ReasonNotScheduled},
	{Code: ReasonPodStarting},
	{Code: ReasonPodNotReady},
	{Code: ReasonMinReadySeconds, Until: t0},
	{Code: ReasonPartitioned},
	{Code: ReasonPaused},
	{Code: ReasonOnDelete},
	{Code: ReasonWaitingForBudget},
	{Code: ReasonInsufficientResources, Resources: []string{"cpu", "memory"}, SchedulerReason: "Unschedulable",
		Message: "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."},
	{Code: ReasonNodeShutdown, Message: "Terminated"},
	{Code: ReasonSkippedUnhealthy, Taint: &corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}, Since: t0},
	{Code: ReasonSkippedUnhealthy, Since: t0},
}

func TestRenderReasons(t *testing.T) {
	var b strings.Builder
	for _, r := range renderReasons {
		fmt.Fprintf(&b, "%s: %s\n", r.Code, r)
		if d := r.Detail(); d != "" {
			fmt.Fprintf(&b, "%s detail: %s\n", r.Code, d)
		}
	}
	checkGolden(t, "reasons", b.String())
}

func TestRenderConditions(t *testing.T) {
	taint := &corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	eligible := Placement{ShouldRun: true, ShouldContinueRunning: true}
	unavailable := Plan{
		Status: Counters{DesiredNumberScheduled: 8, NumberAvailable: 2},
		Nodes: map[string]NodeState{
			"a": {Placement: eligible, Reason: NodeReason{Code: ReasonNoPod}},
			"b": {Placement: eligible, Reason: NodeReason{Code: ReasonNoPod}},
			"c": {Placement: eligible, Reason: NodeReason{Code: ReasonNodeNotReady}},
			"d": {Placement: eligible, Reason: NodeReason{Code: ReasonCrashLoop, Container: "agent", WaitingReason: "CrashLoopBackOff"}},
			"e": {Placement: eligible, Reason: NodeReason{Code: ReasonPodNotReady}},
			"f": {Placement: eligible, Reason: NodeReason{Code: ReasonPodStarting}},
			"g": {Placement: eligible, Reason: NodeReason{Code: ReasonPartitioned}},
			"x": {Placement: Placement{ShouldContinueRunning: true}, Reason: NodeReason{Code: ReasonTaintNotTolerated, Taint: taint}},
		},
		Strategy: Strategy{HostPortFallback: true},
		Rollout: Rollout{Target: 6, UpdatedAvailable: 2, Partition: 1, FirstPartitionedNode: "g", Phase: RolloutDeadlineExceeded,
			LastProgress: t0.Add(-time.Hour), Stuck: []StuckNode{
				{Node: "a", Reason: NodeReason{Code: ReasonNoPod}}, {Node: "b", Reason: NodeReason{Code: ReasonNoPod}},
				{Node: "c", Reason: NodeReason{Code: ReasonNodeNotReady}}, {Node: "d", Reason: NodeReason{Code: ReasonPodNotReady}},
				{Node: "e", Reason: NodeReason{Code: ReasonPodNotReady}}, {Node: "f", Reason: NodeReason{Code: ReasonPodStarting}},
			}},
		Template: TemplateVerdict{State: TemplateAccepted},
	}
	rejected := Plan{Status: Counters{DesiredNumberScheduled: 3}, Template: TemplateVerdict{State: TemplateRejected, Message: "denied"}}
	healthy := Plan{Status: Counters{DesiredNumberScheduled: 3, NumberAvailable: 3}, Rollout: Rollout{Target: 3, UpdatedAvailable: 3,
		Phase: RolloutComplete, Complete: true}}
	var b strings.Builder
	cond := func(name string, c metav1.Condition) {
		fmt.Fprintf(&b, "%s: %s %s %s: %s\n", name, c.Type, c.Status, c.Reason, c.Message)
	}
	cond("unavailable", AvailableCondition(unavailable))
	cond("rejected", AvailableCondition(rejected))
	cond("healthy", AvailableCondition(healthy))
	for _, phase := range []RolloutPhase{RolloutComplete, RolloutProgressing, RolloutPaused, RolloutWaitingForDeletion, RolloutDeadlineExceeded} {
		p := unavailable
		p.Rollout.Phase = phase
		cond(string(phase), ProgressingCondition(p, "abc"))
	}
	p := unavailable
	p.Rollout.Stuck = nil
	cond("no stuck node", ProgressingCondition(p, "abc"))
	skipped := healthy
	for _, n := range []string{"n1", "n2", "n3", "n4", "n5", "n6", "n7"} {
		skipped.Rollout.Skipped = append(skipped.Rollout.Skipped, StuckNode{Node: n, Reason: NodeReason{Code: ReasonSkippedUnhealthy}})
	}
	cond("skipped", ProgressingCondition(skipped, "abc"))
	for _, v := range []TemplateVerdict{{}, {State: TemplateAccepted}, {State: TemplateRejected, Message: "denied"},
		{State: TemplateServiceAccountMissing, Message: "no account"}, {State: TemplateCheckFailed, Message: "timeout"}} {
		c, ok := TemplateValidCondition(Plan{Template: v})
		if !ok {
			fmt.Fprintf(&b, "template %q: no condition\n", v.State)
			continue
		}
		cond(fmt.Sprintf("template %q", v.State), c)
	}
	fmt.Fprintf(&b, "counts: %s\n", renderCounts(map[string]int{"a": 5, "b": 4, "c": 3, "d": 2, "e": 1}))
	fmt.Fprintf(&b, "host port event: %s\n", HostPortFallbackNote(Strategy{HostPorts: []int32{9100}, MaxUnavailable: 1}))
	checkGolden(t, "conditions", b.String())
}

func TestRenderGate(t *testing.T) {
	var b strings.Builder
	for _, code := range []GateCode{GateWaiting, GateLift, GateReturn, GateGracePeriod, GateReplacing, GateMaxTainted, GateRelease} {
		g := GateNode{Code: code, Until: t0}
		fmt.Fprintf(&b, "%s: %s\n", code, g)
	}
	for _, code := range []GateCode{GateLift, GateReturn, GateRelease} {
		fmt.Fprintf(&b, "event %s: %s\n", code, GateEventNote(GateWrite{Code: code}, "readiness.nodeagentset.io/agent"))
	}
	plans := []Plan{
		{Status: Counters{DesiredNumberScheduled: 5}, Gate: GatePlan{State: GateActive, Mode: "Bootstrap", Key: "readiness.nodeagentset.io/agent", NumberGated: 2}},
		{Status: Counters{DesiredNumberScheduled: 5}, Gate: GatePlan{State: GateActive, Mode: "Continuous", Key: "readiness.nodeagentset.io/agent",
			NumberGated: 2, Tainted: 1, MaxTainted: 1}},
		{Gate: GatePlan{State: GateKeyNotAllowed, Key: "node.kubernetes.io/unschedulable"}},
		{Gate: GatePlan{State: GateKeyConflict, Key: "readiness.nodeagentset.io/agent", ConflictsWith: "agents/older"}},
		{},
	}
	for _, p := range plans {
		c, ok := GateCondition(p)
		fmt.Fprintf(&b, "condition %v: %s %s %s\n", ok, c.Status, c.Reason, c.Message)
	}
	checkGolden(t, "gate", b.String())
}

func TestRenderOverrideMisses(t *testing.T) {
	misses := []OverrideMiss{
		{Name: "gpu", Key: "gpu", Operator: metav1.LabelSelectorOpIn, Values: []string{"true"}},
		{Name: "zones", Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}},
		{Name: "not-zones", Key: "zone", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"a", "b"}},
		{Name: "has-gpu", Key: "gpu", Operator: metav1.LabelSelectorOpExists},
		{Name: "no-gpu", Key: "gpu", Operator: metav1.LabelSelectorOpDoesNotExist},
		{Name: "bad", Invalid: "key: Invalid value: \"-x\""},
		{Name: "unknown"},
	}
	var b strings.Builder
	for _, m := range misses {
		fmt.Fprintf(&b, "%s: %s\n", m.Name, m.String())
	}
	o := NodeOverride{Template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init"}},
		Containers: []corev1.Container{{Name: "agent", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceMemory: resource.MustParse("512Mi"), corev1.ResourceCPU: resource.MustParse("200m"),
		}}}},
	}}}
	fmt.Fprintf(&b, "requests: %s\n", o.RequestsString())
	fmt.Fprintf(&b, "no template: %q\n", NodeOverride{}.RequestsString())
	checkGolden(t, "override_misses", b.String())
}
