package nodeagentset

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent"}}
	m.observeStatus(set, &nasv1alpha1.NodeAgentSetStatus{
		DesiredNumberScheduled: 5, CurrentNumberScheduled: 5, NumberReady: 4, NumberAvailable: 3, NumberUnavailable: 2,
		UpdatedNumberScheduled: 2, NumberMisscheduled: 1,
		Canary:     &nasv1alpha1.CanaryStatus{Revision: "h", Phase: nasv1alpha1.CanaryFailed},
		Conditions: []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionFalse, Reason: nasv1alpha1.ReasonProgressDeadlineExceeded}},
	})
	m.podCreated(set)
	m.podCreated(set)
	m.podDeleted(set, planner.DeleteOutdated)
	m.gateLifted(set, 3*time.Second)
	m.gateLifted(set, 100*time.Second)

	want := `
# HELP nodeagentset_canary_failed 1 when the canary of the current template failed (status.canary.phase Failed): the rollout goes no further, else 0.
# TYPE nodeagentset_canary_failed gauge
nodeagentset_canary_failed{namespace="ns",nodeagentset="agent"} 1
# HELP nodeagentset_pods_created_total Agent pods created.
# TYPE nodeagentset_pods_created_total counter
nodeagentset_pods_created_total{namespace="ns",nodeagentset="agent"} 2
# HELP nodeagentset_rollout_progressing 1 while a rollout of the current template is under way (not complete, not paused, within its deadline), else 0.
# TYPE nodeagentset_rollout_progressing gauge
nodeagentset_rollout_progressing{namespace="ns",nodeagentset="agent"} 0
# HELP nodeagentset_rollout_stuck 1 when the rollout made no progress for progressDeadlineSeconds (Progressing=False, ProgressDeadlineExceeded), else 0.
# TYPE nodeagentset_rollout_stuck gauge
nodeagentset_rollout_stuck{namespace="ns",nodeagentset="agent"} 1
# HELP nodeagentset_status_number_available Eligible nodes whose agent pod is available (Ready for minReadySeconds).
# TYPE nodeagentset_status_number_available gauge
nodeagentset_status_number_available{namespace="ns",nodeagentset="agent"} 3
# HELP nodeagentset_status_number_misscheduled Nodes that run an agent pod but are not eligible.
# TYPE nodeagentset_status_number_misscheduled gauge
nodeagentset_status_number_misscheduled{namespace="ns",nodeagentset="agent"} 1
`
	names := []string{"nodeagentset_canary_failed", "nodeagentset_pods_created_total", "nodeagentset_rollout_progressing", "nodeagentset_rollout_stuck",
		"nodeagentset_status_number_available", "nodeagentset_status_number_misscheduled"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.gateLift); n != 1 {
		t.Errorf("gate lift series = %d, want 1", n)
	}
	gate := `
# HELP nodeagentset_readiness_gate_lift_seconds Time from a node's creation to the lift of the readiness gate taint it registered with.
# TYPE nodeagentset_readiness_gate_lift_seconds histogram
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="1"} 0
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="2"} 0
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="4"} 1
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="8"} 1
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="16"} 1
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="32"} 1
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="64"} 1
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="128"} 2
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="256"} 2
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="512"} 2
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="1024"} 2
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="2048"} 2
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="4096"} 2
nodeagentset_readiness_gate_lift_seconds_bucket{namespace="ns",nodeagentset="agent",le="+Inf"} 2
nodeagentset_readiness_gate_lift_seconds_sum{namespace="ns",nodeagentset="agent"} 103
nodeagentset_readiness_gate_lift_seconds_count{namespace="ns",nodeagentset="agent"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(gate), "nodeagentset_readiness_gate_lift_seconds"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.deleted.WithLabelValues("ns", "agent", "Outdated")); got != 1 {
		t.Errorf("deleted{reason=Outdated} = %v, want 1", got)
	}

	m.forget(types.NamespacedName{Namespace: "ns", Name: "agent"})
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Errorf("after forget: %d series (err %v), want 0", n, err)
	}
}

func TestNilMetricsAreANoOp(t *testing.T) {
	var m *Metrics
	set := &nasv1alpha1.NodeAgentSet{}
	m.observeStatus(set, &nasv1alpha1.NodeAgentSetStatus{})
	m.podCreated(set)
	m.podDeleted(set, planner.DeleteFailed)
	m.gateLifted(set, time.Second)
	m.forget(types.NamespacedName{})
}

// nodeagentset_unavailable_nodes has a series per reason of status.unavailableBreakdown; a reason that
// no longer applies loses its series.
func TestUnavailableNodesMetric(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent"}}
	m.observeStatus(set, &nasv1alpha1.NodeAgentSetStatus{UnavailableBreakdown: []nasv1alpha1.UnavailableReason{
		{Reason: "NodeNotReady", Count: 3}, {Reason: "ImagePull", Count: 1},
	}})
	m.observeStatus(set, &nasv1alpha1.NodeAgentSetStatus{UnavailableBreakdown: []nasv1alpha1.UnavailableReason{
		{Reason: "NodeNotReady", Count: 2}, {Reason: "CrashLoop", Count: 1},
	}})
	want := `
# HELP nodeagentset_unavailable_nodes ` + unavailableNodesHelp + `
# TYPE nodeagentset_unavailable_nodes gauge
nodeagentset_unavailable_nodes{namespace="ns",nodeagentset="agent",reason="CrashLoop"} 1
nodeagentset_unavailable_nodes{namespace="ns",nodeagentset="agent",reason="NodeNotReady"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "nodeagentset_unavailable_nodes"); err != nil {
		t.Error(err)
	}
	m.forget(types.NamespacedName{Namespace: "ns", Name: "agent"})
	if n := testutil.CollectAndCount(m.unavailableNodes); n != 0 {
		t.Errorf("after forget: %d series, want 0", n)
	}
}
