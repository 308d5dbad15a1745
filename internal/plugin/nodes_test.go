package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeagentset/nodeagentset/internal/planner"
)

func TestNodesTable(t *testing.T) {
	now := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	created := metav1.NewTime(now.Add(-90 * time.Minute))
	items := []NodeReport{
		{Metadata: ReportMeta{Name: "gpu-1"}, NodeExists: true,
			Exclusion: &ReportExclusion{Detail: "taint dedicated=gpu:NoSchedule", Message: "taint dedicated=gpu:NoSchedule not tolerated"}},
		{Metadata: ReportMeta{Name: "worker-1"}, NodeExists: true, Eligible: true, Healthy: true,
			Pod: &ReportPod{Name: "agent-abcde", Revision: 3, ReadyContainers: "1/1", Available: true, CreationTimestamp: created}},
		{Metadata: ReportMeta{Name: "worker-2"}, NodeExists: true, Eligible: true, Reason: strings.Repeat("r", 100),
			Pod:       &ReportPod{Name: "agent-fghij", RevisionHash: "5c8d9f7b4", ReadyContainers: "0/1", CreationTimestamp: created},
			OtherPods: []ReportPod{{Name: "agent-klmno"}}},
		{Metadata: ReportMeta{Name: "gone"}, Reason: "node does not exist: the controller deletes its agent pods",
			Pod: &ReportPod{Name: "agent-pqrst", Revision: 2, ReadyContainers: "1/1", CreationTimestamp: created}},
	}
	var buf bytes.Buffer
	if err := printNodesTable(&buf, items, now); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"NODE       ELIGIBLE                             POD                REVISION    READY   AVAILABLE   AGE   REASON\n" +
		"gpu-1      no: taint dedicated=gpu:NoSchedule   <none>             -           -       -           -     \n" +
		"worker-1   yes                                  agent-abcde        3           1/1     yes         90m   \n" +
		"worker-2   yes                                  agent-fghij (+1)   5c8d9f7b4   0/1     no          90m   " + strings.Repeat("r", 77) + "...\n" +
		"gone       no: node not found                   agent-pqrst        2           1/1     no          90m   " +
		"node does not exist: the controller deletes its agent pods\n"
	if got := buf.String(); got != want {
		t.Errorf("table =\n%s\nwant\n%s", got, want)
	}
}

func TestNodesTableGateColumn(t *testing.T) {
	now := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	items := []NodeReport{
		{Metadata: ReportMeta{Name: "worker-1"}, NodeExists: true, Eligible: true, Gate: "gated: waiting for the agent", Reason: "no agent pod yet"},
		{Metadata: ReportMeta{Name: "worker-2"}, NodeExists: true, Eligible: true, Healthy: true, Gate: "open"},
	}
	var buf bytes.Buffer
	if err := printNodesTable(&buf, items, now); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"NODE       ELIGIBLE   POD      REVISION   READY   AVAILABLE   AGE   GATE                           REASON\n" +
		"worker-1   yes        <none>   -          -       -           -     gated: waiting for the agent   no agent pod yet\n" +
		"worker-2   yes        <none>   -          -       -           -     open                           \n"
	if got := buf.String(); got != want {
		t.Errorf("table =\n%s\nwant\n%s", got, want)
	}
}

func TestNodesTableWithOverrides(t *testing.T) {
	now := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	created := metav1.NewTime(now.Add(-90 * time.Minute))
	items := []NodeReport{
		{Metadata: ReportMeta{Name: "arm-1"}, NodeExists: true, Eligible: true, Healthy: true,
			Override: &ReportOverride{Name: "arm64"},
			Pod:      &ReportPod{Name: "agent-abcde", Revision: 3, ReadyContainers: "1/1", Available: true, CreationTimestamp: created}},
		{Metadata: ReportMeta{Name: "gpu-1"}, NodeExists: true, Eligible: true, Healthy: true,
			Override: &ReportOverride{Name: "gpu", Requests: "agent: cpu=200m,memory=512Mi"},
			Pod:      &ReportPod{Name: "agent-fghij", Revision: 3, ReadyContainers: "1/1", Available: true, CreationTimestamp: created}},
		{Metadata: ReportMeta{Name: "plain"}, NodeExists: true, Eligible: true, Healthy: true,
			Override: &ReportOverride{Requests: "agent: memory=128Mi"},
			Pod:      &ReportPod{Name: "agent-klmno", Revision: 3, ReadyContainers: "1/1", Available: true, CreationTimestamp: created}},
		{Metadata: ReportMeta{Name: "tainted"}, NodeExists: true,
			Exclusion: &ReportExclusion{Detail: "taint a=b:NoSchedule"}},
	}
	var buf bytes.Buffer
	if err := printNodesTable(&buf, items, now); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"NODE      ELIGIBLE                   OVERRIDE   REQUESTS                       POD           REVISION   READY   AVAILABLE   AGE   REASON\n" +
		"arm-1     yes                        arm64      <none>                         agent-abcde   3          1/1     yes         90m   \n" +
		"gpu-1     yes                        gpu        agent: cpu=200m,memory=512Mi   agent-fghij   3          1/1     yes         90m   \n" +
		"plain     yes                        <none>     agent: memory=128Mi            agent-klmno   3          1/1     yes         90m   \n" +
		"tainted   no: taint a=b:NoSchedule   -          -                              <none>        -          -       -           -     \n"
	if got := buf.String(); got != want {
		t.Errorf("table =\n%s\nwant\n%s", got, want)
	}
}

func TestProblemSummary(t *testing.T) {
	groups := []planner.UnavailableGroup{{Code: planner.ReasonNodeNotReady, Count: 3}, {Code: planner.ReasonImagePull, Count: 1}}
	if got, want := problemSummary(groups), "Unavailable: 3 NodeNotReady, 1 ImagePull"; got != want {
		t.Errorf("problemSummary = %q, want %q", got, want)
	}
	if got := problemSummary(nil); got != "Every eligible node runs an available agent pod." {
		t.Errorf("problemSummary(nil) = %q", got)
	}
}

// A set with both a readiness gate and node overrides shows both column groups: OVERRIDE and REQUESTS
// after ELIGIBLE, GATE before REASON.
func TestNodesTableGateAndOverrides(t *testing.T) {
	now := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	items := []NodeReport{
		{Metadata: ReportMeta{Name: "gpu-1"}, NodeExists: true, Eligible: true, Gate: "gated: waiting for the agent",
			Override: &ReportOverride{Name: "gpu", Requests: "agent: cpu=200m"}, Reason: "no agent pod yet"},
	}
	var buf bytes.Buffer
	if err := printNodesTable(&buf, items, now); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"NODE    ELIGIBLE   OVERRIDE   REQUESTS          POD      REVISION   READY   AVAILABLE   AGE   GATE                           REASON\n" +
		"gpu-1   yes        gpu        agent: cpu=200m   <none>   -          -       -           -     gated: waiting for the agent   no agent pod yet\n"
	if got := buf.String(); got != want {
		t.Errorf("table =\n%s\nwant\n%s", got, want)
	}
}
