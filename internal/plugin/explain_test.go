package plugin

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

var now = time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)

func testSet(mutate ...func(*corev1.PodSpec)) *nasv1alpha1.NodeAgentSet {
	set := &nasv1alpha1.NodeAgentSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", UID: types.UID("set-uid")},
		Spec: nasv1alpha1.NodeAgentSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "agent:2"}}},
			},
		},
	}
	for _, m := range mutate {
		m(&set.Spec.Template.Spec)
	}
	return set
}

// revisionOf is the ControllerRevision of the set's template, encoded as the controller encodes it.
func revisionOf(t *testing.T, set *nasv1alpha1.NodeAgentSet, n int64) *appsv1.ControllerRevision {
	t.Helper()
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&set.Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	raw["$patch"] = "replace"
	data, err := json.Marshal(map[string]any{"spec": map[string]any{"template": raw}})
	if err != nil {
		t.Fatal(err)
	}
	hash := planner.TemplateHash(&set.Spec.Template, nil)
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "agent-" + hash, Labels: map[string]string{nasv1alpha1.ControllerRevisionHashLabel: hash}},
		Data:       runtime.RawExtension{Raw: data},
		Revision:   n,
	}
}

func node(name string, mutate ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/os": "linux"}}}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func pod(set *nasv1alpha1.NodeAgentSet, name, nodeName, hash string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := planner.NewPod(set, nodeName, hash)
	p.Name = name
	p.Spec.NodeName = nodeName
	p.CreationTimestamp = metav1.NewTime(now.Add(-time.Hour))
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))}}}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func TestRevisionRoundTrip(t *testing.T) {
	old := testSet(func(s *corev1.PodSpec) {
		s.Containers[0].Image = "agent:1"
		s.Containers[0].Args = []string{"--old"}
	})
	cur := testSet()
	oldRev, curRev := revisionOf(t, old, 1), revisionOf(t, cur, 2)

	applied, err := applyRevision(cur, oldRev)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(applied.Spec.Template.Spec.Containers, old.Spec.Template.Spec.Containers) {
		t.Errorf("applied template %+v, want %+v", applied.Spec.Template.Spec.Containers, old.Spec.Template.Spec.Containers)
	}
	if applied.Name != cur.Name || applied.GroupVersionKind() != setGVK {
		t.Errorf("applied set lost its identity: %s %v", applied.Name, applied.GroupVersionKind())
	}

	// The plugin's encoding of a template is the controller's, byte for byte.
	patch, err := templatePatch(cur)
	if err != nil {
		t.Fatal(err)
	}
	if string(patch) != string(curRev.Data.Raw) {
		t.Errorf("templatePatch = %s\nwant %s", patch, curRev.Data.Raw)
	}
	for _, tt := range []struct {
		cr   *appsv1.ControllerRevision
		want bool
	}{{curRev, true}, {oldRev, false}} {
		if got, err := matchesRevision(cur, tt.cr); err != nil || got != tt.want {
			t.Errorf("matchesRevision(%s) = %v, %v; want %v", tt.cr.Name, got, err, tt.want)
		}
	}
	// Data encoded differently (key order, no creationTimestamp) still matches semantically.
	reordered := curRev.DeepCopy()
	reordered.Data.Raw = []byte(`{"spec":{"template":{"$patch":"replace","spec":{"containers":[{"image":"agent:2","name":"agent","resources":{}}]},` +
		`"metadata":{"labels":{"app":"agent"}}}}}`)
	if got, err := matchesRevision(cur, reordered); err != nil || !got {
		t.Errorf("matchesRevision(reordered) = %v, %v; want true", got, err)
	}

	if h := currentHash(cur, []*appsv1.ControllerRevision{oldRev, curRev}); h != curRev.Labels[nasv1alpha1.ControllerRevisionHashLabel] {
		t.Errorf("currentHash = %q, want the matching revision's", h)
	}
	cur.Status.UpdateRevision = "from-status"
	if h := currentHash(cur, []*appsv1.ControllerRevision{oldRev}); h != "from-status" {
		t.Errorf("currentHash without a matching revision = %q, want status.updateRevision", h)
	}
}

func TestExclusionDetails(t *testing.T) {
	tests := []struct {
		name string
		spec func(*corev1.PodSpec)
		node *corev1.Node
		want []string
	}{
		{name: "eligible", spec: func(*corev1.PodSpec) {}, node: node("n1"), want: nil},
		{name: "nodeName", spec: func(s *corev1.PodSpec) { s.NodeName = "n2" }, node: node("n1"),
			want: []string{"spec.template.spec.nodeName is n2: the agent runs on that node only."}},
		{name: "nodeSelector, every failing entry", spec: func(s *corev1.PodSpec) {
			s.NodeSelector = map[string]string{"kubernetes.io/os": "linux", "zone": "a", "gpu": "true"}
		}, node: node("n1", func(n *corev1.Node) { n.Labels["zone"] = "b" }),
			want: []string{
				"nodeSelector gpu=true does not match: the node has no label gpu.",
				"nodeSelector zone=a does not match: the node has zone=b.",
			}},
		{name: "affinity: In, NotIn, DoesNotExist, Gt, fields", spec: func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{
					{MatchExpressions: []corev1.NodeSelectorRequirement{
						{Key: "kubernetes.io/os", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"linux"}},
						{Key: "tier", Operator: corev1.NodeSelectorOpDoesNotExist},
					}},
					{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "cores", Operator: corev1.NodeSelectorOpGt, Values: []string{"8"}}}},
					{},
					{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"n1"}}}},
				},
			}}}
		}, node: node("n1", func(n *corev1.Node) { n.Labels["tier"] = "db"; n.Labels["cores"] = "4" }),
			want: []string{
				"required node affinity does not match: none of its 4 term(s) matches the node (terms are ORed; every requirement of a term must hold):",
				"  term 1: kubernetes.io/os NotIn [linux] (the node has kubernetes.io/os=linux); tier DoesNotExist (the node has tier=db)",
				"  term 2: cores Gt [8] (the node has cores=4)",
				"  term 3 is empty and matches no node",
				"  term 4: metadata.name NotIn [n1] (the node's metadata.name is n1)",
			}},
		{name: "taints: untolerated NoSchedule and NoExecute, tolerated and PreferNoSchedule skipped", spec: func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "ok", Operator: corev1.TolerationOpExists}}
		}, node: node("n1", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{
				{Key: "ok", Value: "x", Effect: corev1.TaintEffectNoExecute},
				{Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule},
				{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule},
				{Key: "maintenance", Effect: corev1.TaintEffectNoExecute},
				{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoExecute}, // tolerated automatically.
			}
		}), want: []string{
			"taint dedicated=gpu:NoSchedule is not tolerated: no new agent pod is created there; one already running may stay (NoSchedule).",
			"taint maintenance:NoExecute is not tolerated: an agent pod on the node is deleted (NoExecute).",
		}},
		{name: "network-unavailable is tolerated only with hostNetwork", spec: func(s *corev1.PodSpec) { s.HostNetwork = true },
			node: node("n1", func(n *corev1.Node) {
				n.Spec.Taints = []corev1.Taint{{Key: "node.kubernetes.io/network-unavailable", Effect: corev1.TaintEffectNoSchedule}}
			}), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := testSet(tt.spec)
			got := exclusionDetails(&set.Spec.Template.Spec, tt.node)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			// Every exclusion the planner reports is explained.
			if p := planner.NewPlacer(&set.Spec.Template.Spec).Place(tt.node); (p.Exclusion != nil) != (len(got) > 0) {
				t.Errorf("planner exclusion %v, details %v", p.Exclusion, got)
			}
		})
	}
}

func TestTolerationFor(t *testing.T) {
	got := tolerationFor(&corev1.Taint{Key: "k", Value: "v", Effect: corev1.TaintEffectNoSchedule})
	if got != "{key: k, operator: Equal, value: v, effect: NoSchedule}" {
		t.Error(got)
	}
	if got := tolerationFor(&corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoExecute}); got != "{key: k, operator: Exists, effect: NoExecute}" {
		t.Error(got)
	}
}

func TestExplainAndReport(t *testing.T) {
	old := testSet(func(s *corev1.PodSpec) { s.Containers[0].Image = "agent:1" })
	set := testSet()
	history := []*appsv1.ControllerRevision{revisionOf(t, old, 1), revisionOf(t, set, 2)}
	oldHash, curHash := history[0].Labels[nasv1alpha1.ControllerRevisionHashLabel], history[1].Labels[nasv1alpha1.ControllerRevisionHashLabel]
	set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{}
	nodes := []*corev1.Node{
		node("a"), node("b"), node("c"),
		node("d", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "x", Effect: corev1.TaintEffectNoSchedule}} }),
	}
	pods := []*corev1.Pod{
		pod(set, "pa", "a", curHash),
		pod(old, "pb", "b", oldHash),
		pod(set, "pb2", "b", curHash, func(p *corev1.Pod) {
			p.CreationTimestamp = metav1.NewTime(now.Add(-time.Minute))
			p.Status.Phase = corev1.PodPending
			p.Status.Conditions = nil
		}),
		pod(old, "pd", "d", oldHash),
		pod(set, "pgone", "gone", curHash),
	}
	s := newSnapshot(set, history, nodes, pods, now)
	reports := s.reports()
	names := make([]string, 0, len(reports))
	for _, r := range reports {
		names = append(names, r.name)
	}
	if want := []string{"a", "b", "c", "d", "gone"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("reports for %v, want %v", names, want)
	}
	wantRows := map[string][]string{
		"a":    {"a", "yes", "pa", "2", "0/1", "yes", "60m", ""},
		"b":    {"b", "yes", "pb (+1)", "1", "0/1", "yes", "60m", "surge pod pb2: " + said(planner.ReasonPodStarting)},
		"c":    {"c", "yes", "<none>", "-", "-", "-", "-", said(planner.ReasonNoPod)},
		"d":    {"d", "no: taint x:NoSchedule", "pd", "1", "0/1", "yes", "60m", "misscheduled: agent pod may stay (NoSchedule taint only)"},
		"gone": {"gone", "no: node not found", "pgone", "2", "0/1", "yes", "60m", "node does not exist: the controller deletes its agent pods"},
	}
	wantWhy := map[string][]string{
		"a": {"Node a runs an available agent pod pa of the current revision (revision 2, hash " + curHash + ")."},
		"b": {
			"Node b runs an available agent pod pb of revision 1, hash " + oldHash + ", not of the current revision (revision 2, hash " + curHash + ").",
			"  The rolling update replaces it within the maxUnavailable/maxSurge budget; 1 of 3 eligible nodes lack an available pod now " +
				"(see 'kubectl nas rollout status agent').",
			"Surge pod pb2 (revision 2, hash " + curHash + ") is starting next to it: " + said(planner.ReasonPodStarting) + ".",
		},
		"c": {
			"Node c should run an agent pod of node agent set ns/agent but has no available one: " + said(planner.ReasonNoPod) + ".",
			"  The controller creates the pod on its next pass. If this lasts, check that the controller runs, " +
				"and look at the set's events below and with 'kubectl describe nas'.",
		},
		"d": {
			"Node d is not eligible for node agent set ns/agent: " +
				planner.NodeReason{Code: planner.ReasonTaintNotTolerated, Taint: &corev1.Taint{Key: "x", Effect: corev1.TaintEffectNoSchedule}}.String() + ".",
			"  taint x:NoSchedule is not tolerated: no new agent pod is created there; one already running may stay (NoSchedule).",
			"To run the agent there, tolerate the taint in spec.template.spec.tolerations, e.g. {key: x, operator: Exists, effect: NoSchedule}.",
			"Agent pod pd is still on the node (misscheduled): it may stay, because only NoSchedule taints exclude the node; no new pod is created there.",
		},
		"gone": {"Node gone does not exist, but agent pod pgone still targets it: the controller deletes the pods of nodes that are gone."},
	}
	for _, r := range reports {
		report := s.nodeReport(r)
		if got := tableRow(report, now); !reflect.DeepEqual(got, wantRows[r.name]) {
			t.Errorf("row %s = %q, want %q", r.name, got, wantRows[r.name])
		}
		if got := s.explain(r, nil); !reflect.DeepEqual(got, wantWhy[r.name]) {
			t.Errorf("why %s =\n%s\nwant\n%s", r.name, strings.Join(got, "\n"), strings.Join(wantWhy[r.name], "\n"))
		}
		if copied := report.DeepCopyObject().(*NodeReport); !reflect.DeepEqual(copied, report) {
			t.Errorf("DeepCopyObject of %s differs", r.name)
		}
	}
	if s.reportFor("nowhere") != nil {
		t.Error("reportFor found a node that neither exists nor has pods")
	}
}

// said is the planner's sentence for a reason: the tests do not spell out the renderer's wording,
// which its golden files pin.
func said(code planner.ReasonCode) string { return planner.NodeReason{Code: code}.String() }

// A node without a pod, when the set's PodTemplateValid condition says the API server rejects the
// template, is explained with the planner's TemplateRejected reason and the condition's words.
func TestExplainRejectedTemplate(t *testing.T) {
	set := testSet()
	set.Status.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionPodTemplateValid, Status: metav1.ConditionFalse,
		Reason: nasv1alpha1.ReasonPodTemplateRejected, Message: "denied"}}
	history := []*appsv1.ControllerRevision{revisionOf(t, set, 1)}
	s := newSnapshot(set, history, []*corev1.Node{node("a")}, nil, now)
	r := s.reportFor("a")
	if r.reason.Code != planner.ReasonTemplateRejected {
		t.Fatalf("reason %s, want %s", r.reason.Code, planner.ReasonTemplateRejected)
	}
	want := []string{
		"Node a should run an agent pod of node agent set ns/agent but has no available one: " + said(planner.ReasonTemplateRejected) + ".",
		"  The set's PodTemplateValid condition says: denied",
	}
	if got := s.explain(r, nil); !reflect.DeepEqual(got, want) {
		t.Errorf("why =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := s.nodeReport(r); got.ReasonCode != planner.ReasonTemplateRejected || got.Reason != said(planner.ReasonTemplateRejected) {
		t.Errorf("report reason %s %q", got.ReasonCode, got.Reason)
	}
}

// The gate column and why's gate line come from the planner's gate plan; a key the controller refused
// (its NodeReadinessGate condition) shows as refused on every node.
func TestGateReport(t *testing.T) {
	const key = "readiness.nodeagentset.io/agent"
	set := testSet()
	set.Spec.NodeReadinessGate = &nasv1alpha1.NodeReadinessGate{TaintKey: key, Mode: nasv1alpha1.BootstrapGateMode}
	history := []*appsv1.ControllerRevision{revisionOf(t, set, 1)}
	curHash := history[0].Labels[nasv1alpha1.ControllerRevisionHashLabel]
	gated := func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: key, Effect: corev1.TaintEffectNoExecute}} }
	nodes := []*corev1.Node{node("a", gated), node("b")}
	pods := []*corev1.Pod{pod(set, "pa", "a", curHash, func(p *corev1.Pod) { p.Status.Conditions = nil })}

	s := newSnapshot(set, history, nodes, pods, now)
	a := s.nodeReport(s.reportFor("a"))
	if a.GateCode != planner.GateWaiting || a.Gate != (planner.GateNode{Code: planner.GateWaiting}).String() {
		t.Errorf("node a gate %s %q", a.GateCode, a.Gate)
	}
	if b := s.nodeReport(s.reportFor("b")); b.Gate != "open" {
		t.Errorf("node b gate %q", b.Gate)
	}
	if got := s.explain(s.reportFor("a"), nil); !strings.Contains(strings.Join(got, "\n"), "Readiness gate "+key+" (Bootstrap): "+a.Gate) {
		t.Errorf("why says no gate:\n%s", strings.Join(got, "\n"))
	}

	// A node excluded for another reason does not list the gate taint as untolerated.
	set.Spec.Template.Spec.NodeSelector = map[string]string{"pool": "x"}
	s = newSnapshot(set, history, nodes, pods, now)
	got := strings.Join(s.explain(s.reportFor("a"), nil), "\n")
	if strings.Contains(got, "not tolerated") || !strings.Contains(got, "gate "+key+" (Bootstrap): -") {
		t.Errorf("why says the gate taint of an excluded node is not tolerated, or that its gate is open:\n%s", got)
	}
	set.Spec.Template.Spec.NodeSelector = nil

	set.Status.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionNodeReadinessGate, Status: metav1.ConditionFalse,
		Reason: nasv1alpha1.ReasonGateKeyNotAllowed}}
	s = newSnapshot(set, history, nodes, pods, now)
	if a := s.nodeReport(s.reportFor("a")); a.Gate != "refused: KeyNotAllowed" {
		t.Errorf("refused gate shows %q", a.Gate)
	}
}

// A node the rollout skips says why its old pod stays.
func TestWhySkippedNode(t *testing.T) {
	set := testSet(func(s *corev1.PodSpec) { s.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}} })
	set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{UnhealthyNodePolicy: nasv1alpha1.UnhealthyNodeSkip}
	down := node("n1", func(n *corev1.Node) {
		n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}}
	})
	old := pod(set, "agent-old", "n1", "old-hash")
	s := newSnapshot(set, []*appsv1.ControllerRevision{revisionOf(t, set, 2)}, []*corev1.Node{down}, []*corev1.Pod{old}, now)
	got := strings.Join(s.explain(s.reportFor("n1"), nil), "\n")
	if !strings.Contains(got, "unhealthyNodePolicy is Skip") || !strings.Contains(got, "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute") {
		t.Errorf("why =\n%s\nwant the skipped node explained", got)
	}
}
