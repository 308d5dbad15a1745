package planner

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// mixedFleet is the mixed-fleet example of docs/node-overrides.md: gpu nodes get another image, an
// env var and fixed resources; arm64 nodes another image; every other node a share of its allocatable.
func mixedFleet(set *nasv1alpha1.NodeAgentSet) {
	set.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "MODE", Value: "node"}}
	set.Spec.NodeOverrides = []nasv1alpha1.NodeOverride{
		{
			Name:         "gpu",
			NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"gpu": "true"}},
			Containers: []nasv1alpha1.ContainerOverride{{
				Name: "agent", Image: "foo/bar:cuda",
				Env: []corev1.EnvVar{{Name: "GPU_METRICS", Value: "on"}},
				Resources: &corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
				},
			}},
		},
		{
			Name: "arm64",
			NodeSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/arch", Operator: metav1.LabelSelectorOpIn, Values: []string{"arm64"},
			}}},
			Containers: []nasv1alpha1.ContainerOverride{{Name: "agent", Image: "foo/bar:arm64"}},
		},
		{
			Name:         "by-size",
			NodeSelector: metav1.LabelSelector{},
			Containers: []nasv1alpha1.ContainerOverride{{
				Name: "agent",
				ResourcesFromAllocatable: &nasv1alpha1.AllocatableShare{
					Requests: map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: "1%", corev1.ResourceCPU: "0.5%"},
					Limits:   map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: "2%"},
					Min:      map[corev1.ResourceName]nasv1alpha1.QuantityString{corev1.ResourceMemory: "128Mi"},
					Max:      map[corev1.ResourceName]nasv1alpha1.QuantityString{corev1.ResourceMemory: "2Gi"},
				},
			}},
		},
	}
}

func sizedAt(cpu, memory string) func(*corev1.Node) {
	return func(n *corev1.Node) {
		n.Status.Allocatable[corev1.ResourceCPU] = resource.MustParse(cpu)
		n.Status.Allocatable[corev1.ResourceMemory] = resource.MustParse(memory)
	}
}

func agentOf(o NodeOverride) corev1.Container {
	return o.Template.Spec.Containers[0]
}

func TestOverrideMatchingInOrder(t *testing.T) {
	set := newSet(mixedFleet)
	cases := []struct {
		name       string
		labels     map[string]string
		want       string
		wantMisses []string
	}{
		{"gpu wins over arm64 and by-size", map[string]string{"gpu": "true", "kubernetes.io/arch": "arm64"}, "gpu", nil},
		{"arm64 after gpu missed", map[string]string{"kubernetes.io/arch": "arm64"}, "arm64",
			[]string{"gpu: label gpu=true is not on the node"}},
		{"by-size catches every other node", map[string]string{"gpu": "false", "kubernetes.io/arch": "amd64"}, "by-size",
			[]string{"gpu: label gpu=true is not on the node", "arm64: label kubernetes.io/arch=arm64 is not on the node"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := RenderForNode(set, newNode("n", tc.labels, sizedAt("4", "16Gi")))
			if o.Name != tc.want {
				t.Fatalf("override = %q, want %q", o.Name, tc.want)
			}
			var misses []string
			for _, m := range o.Misses {
				misses = append(misses, m.Name+": "+m.String())
			}
			if !reflect.DeepEqual(misses, tc.wantMisses) {
				t.Errorf("misses = %q, want %q", misses, tc.wantMisses)
			}
		})
	}

	t.Run("no override matches: the template as is", func(t *testing.T) {
		s := newSet(mixedFleet)
		s.Spec.NodeOverrides = s.Spec.NodeOverrides[:2]
		o := RenderForNode(s, newNode("n", nil))
		if o.Name != "" || !reflect.DeepEqual(*o.Template, s.Spec.Template) || len(o.Misses) != 2 {
			t.Errorf("got %q with %d misses and template %+v, want the template unchanged and 2 misses", o.Name, len(o.Misses), o.Template)
		}
	})
}

func TestOverrideMergeRules(t *testing.T) {
	set := newSet(mixedFleet)
	set.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "foo/init"}}
	set.Spec.Template.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	set.Spec.NodeOverrides[0].Containers[0].Env = []corev1.EnvVar{
		{Name: "ZED", Value: "z"}, {Name: "MODE", Value: "gpu"}, {Name: "GPU_METRICS", Value: "on"},
	}
	set.Spec.NodeOverrides[0].Containers = append(set.Spec.NodeOverrides[0].Containers,
		nasv1alpha1.ContainerOverride{Name: "init", Image: "foo/init:cuda"})

	o := RenderForNode(set, newNode("n", map[string]string{"gpu": "true"}))
	agent := agentOf(o)
	if agent.Image != "foo/bar:cuda" {
		t.Errorf("image = %q, want the override's", agent.Image)
	}
	wantEnv := []corev1.EnvVar{
		{Name: "LOG_LEVEL", Value: "info"}, {Name: "MODE", Value: "gpu"}, // Template order, MODE replaced in place.
		{Name: "GPU_METRICS", Value: "on"}, {Name: "ZED", Value: "z"}, // New names appended, sorted.
	}
	if !reflect.DeepEqual(agent.Env, wantEnv) {
		t.Errorf("env = %v, want %v", agent.Env, wantEnv)
	}
	wantRes := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
		// The template's cpu limit is kept: resources merge by resource name.
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
	}
	if !reflect.DeepEqual(agent.Resources, wantRes) {
		t.Errorf("resources = %v, want %v", agent.Resources, wantRes)
	}
	if got := o.Template.Spec.InitContainers[0].Image; got != "foo/init:cuda" {
		t.Errorf("init container image = %q, want the override's", got)
	}
	if set.Spec.Template.Spec.Containers[0].Image != "foo/bar" || len(set.Spec.Template.Spec.Containers[0].Env) != 2 {
		t.Error("rendering changed the set's template")
	}
}

func TestAllocatableShares(t *testing.T) {
	share := &nasv1alpha1.AllocatableShare{
		Requests: map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: "1%", corev1.ResourceCPU: "0.5%"},
		Limits:   map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: "2%"},
		Min:      map[corev1.ResourceName]nasv1alpha1.QuantityString{corev1.ResourceMemory: "128Mi"},
		Max:      map[corev1.ResourceName]nasv1alpha1.QuantityString{corev1.ResourceMemory: "2Gi"},
	}
	cases := []struct {
		name                     string
		alloc                    corev1.ResourceList
		cpuReq, memReq, memLimit string
	}{
		// 0.5% of 4 cores is 20m; 1% of 16Gi is 163.84Mi, rounded down to 163Mi; 2% is 327.68Mi -> 327Mi.
		{"medium node", list("4", "16Gi"), "20m", "163Mi", "327Mi"},
		// 1% of 2Gi is 20.48Mi: clamped up to min 128Mi; the limit (40Mi, clamped to 128Mi) is not below it.
		{"small node clamped to min", list("2", "2Gi"), "10m", "128Mi", "128Mi"},
		// 1% of 512Gi is 5.12Gi: clamped down to max 2Gi, and so is the limit.
		{"large node clamped to max", list("96", "512Gi"), "480m", "2Gi", "2Gi"},
		// 0.5% of 100m is 0.5m: never below one millicore.
		{"tiny cpu rounds to one unit", list("100m", "16Gi"), "1m", "163Mi", "327Mi"},
		// Odd allocatable: 1% of 3999Mi = 39.99Mi -> min; cpu 0.5% of 3.5 = 17.5m -> 17m.
		{"rounded down to the unit", list("3500m", "3999Mi"), "17m", "128Mi", "128Mi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := AllocatableResources(share, tc.alloc)
			want := &corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(tc.cpuReq), corev1.ResourceMemory: resource.MustParse(tc.memReq)},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(tc.memLimit)},
			}
			assertResources(t, got, want)
		})
	}

	t.Run("a resource the node does not report is left out unless min gives it", func(t *testing.T) {
		s := share.DeepCopy()
		s.Requests[corev1.ResourceEphemeralStorage] = "1%"
		got := AllocatableResources(s, corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")})
		want := &corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
		}
		assertResources(t, got, want)
	})

	t.Run("a limit below its request is raised to it", func(t *testing.T) {
		s := &nasv1alpha1.AllocatableShare{
			Requests: map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: "10%"},
			Limits:   map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: "5%"},
		}
		got := AllocatableResources(s, list("1", "10Gi"))
		want := &corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1024Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1024Mi")},
		}
		assertResources(t, got, want)
	})
}

func list(cpu, memory string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
}

// assertResources compares quantities by value and by how they are written (what the pod shows).
func assertResources(t *testing.T, got, want *corev1.ResourceRequirements) {
	t.Helper()
	for _, part := range []struct {
		name      string
		got, want corev1.ResourceList
	}{{"requests", got.Requests, want.Requests}, {"limits", got.Limits, want.Limits}} {
		if len(part.got) != len(part.want) {
			t.Errorf("%s = %v, want %v", part.name, part.got, part.want)
			continue
		}
		for k, w := range part.want {
			g, ok := part.got[k]
			if !ok || g.Cmp(w) != 0 || g.String() != w.String() {
				t.Errorf("%s[%s] = %s, want %s", part.name, k, g.String(), w.String())
			}
		}
	}
}

func TestOverrideHashStability(t *testing.T) {
	node := newNode("n", map[string]string{"gpu": "true"})
	set := newSet(mixedFleet)
	set.Spec.NodeOverrides[0].Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}
	a, b := RenderForNode(set, node), RenderForNode(set.DeepCopy(), node.DeepCopy())
	if a.SpecHash != b.SpecHash || !reflect.DeepEqual(a.Template, b.Template) {
		t.Fatalf("same inputs gave different pods: %s vs %s", a.SpecHash, b.SpecHash)
	}
	if RevisionHash(set) != RevisionHash(set.DeepCopy()) {
		t.Fatal("same set gave different revision hashes")
	}

	reordered := set.DeepCopy()
	reordered.Spec.NodeOverrides[0].Containers[0].Env = []corev1.EnvVar{{Name: "B", Value: "2"}, {Name: "A", Value: "1"}}
	c := RenderForNode(reordered, node)
	if c.SpecHash != a.SpecHash || !reflect.DeepEqual(c.Template, a.Template) {
		t.Errorf("a reordered override env list changed the pod: %s vs %s", c.SpecHash, a.SpecHash)
	}

	other := set.DeepCopy()
	other.Spec.NodeOverrides[0].Containers[0].Image = "foo/bar:cuda-2"
	if RenderForNode(other, node).SpecHash == a.SpecHash {
		t.Error("a changed image kept the spec hash")
	}
	plain := newNode("p", nil, sizedAt("4", "16Gi"))
	if RenderForNode(other, plain).SpecHash != RenderForNode(set, plain).SpecHash {
		t.Error("editing the gpu override changed the spec hash of a by-size node")
	}

	t.Run("without overrides the revision hash is the template hash", func(t *testing.T) {
		s := newSet()
		cc := int32(3)
		s.Status.CollisionCount = &cc
		if got, want := RevisionHash(s), TemplateHash(&s.Spec.Template, &cc); got != want {
			t.Errorf("RevisionHash = %s, want TemplateHash %s", got, want)
		}
		if RevisionHash(set) == TemplateHash(&set.Spec.Template, nil) {
			t.Error("the revision hash ignores the overrides")
		}
	})
}

// overridePod is the pod the controller creates on node for set at revision hash, ready long ago.
func overridePod(t *testing.T, set *nasv1alpha1.NodeAgentSet, node *corev1.Node, hash string) *corev1.Pod {
	t.Helper()
	pod := NewNodePod(set, node.Name, hash, RenderForNode(set, node))
	pod.Name = node.Name + "-agent"
	pod.Spec.NodeName = node.Name
	pod.Status.Phase = corev1.PodRunning
	ready(pod)
	return pod
}

func TestNewNodePodLabels(t *testing.T) {
	set := newSet(mixedFleet)
	node := newNode("n", map[string]string{"kubernetes.io/arch": "arm64"})
	pod := NewNodePod(set, "n", curHash, RenderForNode(set, node))
	if pod.Labels[OverrideLabel] != "arm64" || pod.Labels[PodSpecHashLabel] != RenderForNode(set, node).SpecHash ||
		pod.Labels[nasv1alpha1.ControllerRevisionHashLabel] != curHash || pod.Spec.Containers[0].Image != "foo/bar:arm64" {
		t.Errorf("pod labels %v, image %s", pod.Labels, pod.Spec.Containers[0].Image)
	}
	if plain := NewNodePod(newSet(), "n", curHash, NodeOverride{}); plain.Labels[PodSpecHashLabel] != "" || plain.Labels[OverrideLabel] != "" {
		t.Errorf("a set without overrides got override labels: %v", plain.Labels)
	}
}

func TestEditingOneOverrideReplacesOnlyItsNodes(t *testing.T) {
	rolling := withStrategy(maxUnavailable(intstr.FromInt32(1)))
	old := newSet(mixedFleet, rolling)
	nodes := []*corev1.Node{
		newNode("a-gpu", map[string]string{"gpu": "true"}),
		newNode("b-arm", map[string]string{"kubernetes.io/arch": "arm64"}),
		newNode("c-small", nil, sizedAt("2", "2Gi")),
		newNode("d-large", nil, sizedAt("96", "512Gi")),
		newNode("e-gpu", map[string]string{"gpu": "true"}),
	}
	oldHash := RevisionHash(old)
	pods := make([]*corev1.Pod, 0, len(nodes))
	for _, n := range nodes {
		pods = append(pods, overridePod(t, old, n, oldHash))
	}

	edited := old.DeepCopy()
	edited.Spec.NodeOverrides[0].Containers[0].Image = "foo/bar:cuda-2"
	newHash := RevisionHash(edited)
	p := Compute(Input{Set: edited, Hash: newHash, Nodes: nodes, Pods: pods, Now: t0, Template: TemplateVerdict{State: TemplateAccepted}})

	assertPlan(t, p, nil, []del{{"a-gpu-agent", "a-gpu", DeleteOutdated}})
	relabelled := make([]string, 0, len(p.Relabels))
	for _, r := range p.Relabels {
		relabelled = append(relabelled, r.Pod.Name)
	}
	if want := []string{"b-arm-agent", "c-small-agent", "d-large-agent"}; !reflect.DeepEqual(relabelled, want) {
		t.Errorf("relabels = %v, want %v", relabelled, want)
	}
	if p.Status.UpdatedNumberScheduled != 3 {
		t.Errorf("updatedNumberScheduled = %d, want 3 (the nodes the edit does not touch)", p.Status.UpdatedNumberScheduled)
	}
	if p.Nodes["e-gpu"].Reason.Code != ReasonWaitingForBudget {
		t.Errorf("e-gpu reason = %s, want %s", p.Nodes["e-gpu"].Reason.Code, ReasonWaitingForBudget)
	}
	if p.Overrides["c-small"].Name != "by-size" || p.Overrides["a-gpu"].Name != "gpu" {
		t.Errorf("overrides = %v", p.Overrides)
	}
}

func TestNodeChangeOutdatesItsPod(t *testing.T) {
	set := newSet(mixedFleet, withStrategy(maxUnavailable(intstr.FromInt32(1))))
	hash := RevisionHash(set)
	small := newNode("a-small", nil, sizedAt("2", "16Gi"))
	other := newNode("b-other", nil, sizedAt("2", "16Gi"))
	pods := []*corev1.Pod{overridePod(t, set, small, hash), overridePod(t, set, other, hash)}

	cases := map[string]func(*corev1.Node){
		"relabelled to gpu":   func(n *corev1.Node) { n.Labels = map[string]string{"gpu": "true"} },
		"allocatable doubled": sizedAt("2", "32Gi"),
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			changed := small.DeepCopy()
			change(changed)
			p := Compute(Input{Set: set, Hash: hash, Nodes: []*corev1.Node{changed, other}, Pods: pods, Now: t0,
				Template: TemplateVerdict{State: TemplateAccepted}})
			assertPlan(t, p, nil, []del{{"a-small-agent", "a-small", DeleteOutdated}})
			if p.Status.UpdatedNumberScheduled != 1 || len(p.Relabels) != 0 {
				t.Errorf("updated = %d, relabels = %d; want 1 and 0", p.Status.UpdatedNumberScheduled, len(p.Relabels))
			}
		})
	}
	t.Run("unchanged nodes keep their pods", func(t *testing.T) {
		p := Compute(Input{Set: set, Hash: hash, Nodes: []*corev1.Node{small, other}, Pods: pods, Now: t0,
			Template: TemplateVerdict{State: TemplateAccepted}})
		assertPlan(t, p, nil, nil)
		if p.Status.UpdatedNumberScheduled != 2 {
			t.Errorf("updated = %d, want 2", p.Status.UpdatedNumberScheduled)
		}
	})
}

func TestRemovingAllOverridesKeepsEqualPods(t *testing.T) {
	withOverrides := newSet(mixedFleet, withStrategy(maxUnavailable(intstr.FromInt32(1))))
	plainNode := newNode("a-plain", nil)
	gpuNode := newNode("b-gpu", map[string]string{"gpu": "true"})
	withOverrides.Spec.NodeOverrides = withOverrides.Spec.NodeOverrides[:1]
	h := RevisionHash(withOverrides)
	pods := []*corev1.Pod{overridePod(t, withOverrides, plainNode, h), overridePod(t, withOverrides, gpuNode, h)}

	plain := withOverrides.DeepCopy()
	plain.Spec.NodeOverrides = nil
	p := Compute(Input{Set: plain, Hash: RevisionHash(plain), Nodes: []*corev1.Node{plainNode, gpuNode}, Pods: pods, Now: t0,
		Template: TemplateVerdict{State: TemplateAccepted}})
	// The plain node's pod is the template as is: kept and relabelled; the gpu node's is replaced.
	assertPlan(t, p, nil, []del{{"b-gpu-agent", "b-gpu", DeleteOutdated}})
	if len(p.Relabels) != 1 || p.Relabels[0].Node != "a-plain" || len(p.Overrides) != 0 {
		t.Errorf("relabels = %v, overrides = %v; want a-plain relabelled and no overrides", p.Relabels, p.Overrides)
	}
}

func TestTemplateCheckCoversEachOverride(t *testing.T) {
	set := newSet(mixedFleet, withStrategy(maxUnavailable(intstr.FromInt32(1))))
	nodes := []*corev1.Node{
		newNode("a-plain", nil), newNode("b-gpu", map[string]string{"gpu": "true"}),
		newNode("c-gpu", map[string]string{"gpu": "true"}), newNode("d-plain", nil),
	}
	p := Compute(Input{Set: set, Hash: RevisionHash(set), Nodes: nodes, Now: t0})
	if p.CheckTemplateOn != "a-plain" || !reflect.DeepEqual(p.CheckOverridesOn, []string{"b-gpu"}) {
		t.Errorf("check on %q and %v, want a-plain and [b-gpu]", p.CheckTemplateOn, p.CheckOverridesOn)
	}
	plain := newSet(withStrategy(maxUnavailable(intstr.FromInt32(1))))
	if p := Compute(Input{Set: plain, Hash: RevisionHash(plain), Nodes: nodes, Now: t0}); p.CheckOverridesOn != nil || p.Overrides != nil {
		t.Errorf("a set without overrides got override checks %v / overrides %v", p.CheckOverridesOn, p.Overrides)
	}
}

func TestOverrideChanged(t *testing.T) {
	set := newSet(mixedFleet)
	base := newNode("n", map[string]string{"zone": "a"}, sizedAt("4", "16Gi"))
	cases := []struct {
		name   string
		change func(*corev1.Node)
		want   bool
	}{
		{"another override matches", func(n *corev1.Node) { n.Labels["gpu"] = "true" }, true},
		{"a share resolves to more memory", sizedAt("4", "32Gi"), true},
		{"a label no override looks at", func(n *corev1.Node) { n.Labels["team"] = "a" }, false},
		{"allocatable pods only", func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourcePods] = resource.MustParse("50") }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			changed := base.DeepCopy()
			tc.change(changed)
			if got := OverrideChanged(set, base, changed); got != tc.want {
				t.Errorf("OverrideChanged = %v, want %v", got, tc.want)
			}
		})
	}
	if OverrideChanged(newSet(), base, newNode("n", map[string]string{"gpu": "true"})) {
		t.Error("a set without overrides reported a change")
	}
}

// A plan never relabels a pod it deletes: the fuzzer found a canary's held node whose relabelled pod
// (now of the revision under test) the surge update deleted in the same pass, a wasted label write
// (testdata/fuzz/FuzzPlanPasses/9bc349f895c51786 replays that world).
func TestRelabelsKeptDropsDeletedPods(t *testing.T) {
	a, b := newPod("a", "node-0"), newPod("b", "node-1")
	relabels := []Relabel{{Pod: a, Node: "node-0"}, {Pod: b, Node: "node-1"}}
	got := relabelsKept(relabels, []Deletion{{Pod: a, Node: "node-0", Reason: DeleteNodeIneligible}})
	if len(got) != 1 || got[0].Pod != b {
		t.Errorf("relabels kept %v, want only b's", got)
	}
	if got := relabelsKept(relabels, nil); len(got) != 2 {
		t.Errorf("without deletes, relabels kept %v, want both", got)
	}
}
