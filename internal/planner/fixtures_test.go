package planner

// Fixtures shared by the planner tests. They mirror the helpers of upstream's daemon_controller_test.go
// (newDaemonSet, newNode, newPod, addNodes, addPods) so scenarios read like their upstream originals.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

const (
	// curHash is the current revision hash handed to the planner; oldHash labels pods of an older one.
	curHash = "cur-hash"
	oldHash = "old-hash"
)

var (
	// t0 is the snapshot time of scenarios that do not care about time.
	t0 = time.Unix(1_000_000, 0)
	// setLabels are upstream's simpleDaemonSetLabel.
	setLabels = map[string]string{"name": "simple-daemon", "type": "production"}
	// blueLabels are the node labels the selector scenarios match (upstream's simpleNodeLabel).
	blueLabels = map[string]string{"color": "blue"}
)

// newSet is upstream's newDaemonSet("foo"): OnDelete, one container, selector and labels setLabels.
func newSet(mutate ...func(*nasv1alpha1.NodeAgentSet)) *nasv1alpha1.NodeAgentSet {
	set := &nasv1alpha1.NodeAgentSet{
		ObjectMeta: metav1.ObjectMeta{Name: "foo", Namespace: "default", UID: types.UID("set-uid")},
		Spec: nasv1alpha1.NodeAgentSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: setLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: copyMap(setLabels)},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "agent", Image: "foo/bar"}},
				},
			},
			UpdateStrategy: onDelete(),
		},
	}
	for _, m := range mutate {
		m(set)
	}
	return set
}

func onDelete() nasv1alpha1.NodeAgentSetUpdateStrategy {
	return nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.OnDeleteStrategyType}
}

func maxUnavailable(v intstr.IntOrString) nasv1alpha1.NodeAgentSetUpdateStrategy {
	return nasv1alpha1.NodeAgentSetUpdateStrategy{
		Type:          nasv1alpha1.RollingUpdateStrategyType,
		RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: &v},
	}
}

// maxSurge is upstream's newUpdateSurge: maxUnavailable 0 and the given maxSurge.
func maxSurge(v intstr.IntOrString) nasv1alpha1.NodeAgentSetUpdateStrategy {
	zero := intstr.FromInt32(0)
	return nasv1alpha1.NodeAgentSetUpdateStrategy{
		Type:          nasv1alpha1.RollingUpdateStrategyType,
		RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: &zero, MaxSurge: &v},
	}
}

// partitionOf is a rolling update (maxUnavailable 1) with the given partition in nodes.
func partitionOf(n int32) nasv1alpha1.NodeAgentSetUpdateStrategy {
	s := maxUnavailable(intstr.FromInt32(1))
	p := intstr.FromInt32(n)
	s.RollingUpdate.Partition = &p
	return s
}

// pausedStrategy is a paused rolling update (maxUnavailable 1).
func pausedStrategy() nasv1alpha1.NodeAgentSetUpdateStrategy {
	s := maxUnavailable(intstr.FromInt32(1))
	s.RollingUpdate.Paused = true
	return s
}

// strategyCase is one update strategy a scenario runs with.
type strategyCase struct {
	name     string
	strategy nasv1alpha1.NodeAgentSetUpdateStrategy
}

// bothStrategies is upstream's updateStrategies(): every "both strategies" scenario runs with each.
var bothStrategies = []strategyCase{
	{name: "OnDelete", strategy: onDelete()},
	{name: "RollingUpdate", strategy: maxUnavailable(intstr.FromInt32(1))},
}

func withStrategy(s nasv1alpha1.NodeAgentSetUpdateStrategy) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.UpdateStrategy = s }
}

func withNodeSelector(sel map[string]string) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Spec.NodeSelector = sel }
}

func withNodeName(name string) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Spec.NodeName = name }
}

func withTolerations(tols ...corev1.Toleration) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Spec.Tolerations = tols }
}

func withMinReadySeconds(s int32) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.MinReadySeconds = s }
}

func withRequiredAffinity(terms ...corev1.NodeSelectorTerm) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) {
		set.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
		}}
	}
}

// newNode is upstream's newNode: Ready, 100 pods allocatable.
func newNode(name string, labels map[string]string, mutate ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: copyMap(labels)},
		Status: corev1.NodeStatus{
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Allocatable: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("100")},
		},
	}
	for _, m := range mutate {
		m(n)
	}
	return n
}

// newNodes is upstream's addNodes: node-<start> .. node-<start+n-1>.
func newNodes(start, n int, labels map[string]string, mutate ...func(*corev1.Node)) []*corev1.Node {
	out := make([]*corev1.Node, 0, n)
	for i := start; i < start+n; i++ {
		out = append(out, newNode(fmt.Sprintf("node-%d", i), labels, mutate...))
	}
	return out
}

func withTaints(taints ...corev1.Taint) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, taints...) }
}

func withNodeCondition(t corev1.NodeConditionType, s corev1.ConditionStatus) func(*corev1.Node) {
	return func(n *corev1.Node) {
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == t {
				n.Status.Conditions[i].Status = s
				return
			}
		}
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: t, Status: s})
	}
}

// newPod is upstream's newPod: a pod of the set bound to nodeName, carrying the current hash, created at
// t0, not Ready.
func newPod(name, nodeName string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	labels := copyMap(setLabels)
	labels[nasv1alpha1.ControllerRevisionHashLabel] = curHash
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "default", UID: types.UID(name + "-uid"),
			Labels: labels, CreationTimestamp: metav1.NewTime(t0),
		},
		Spec:   corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "agent", Image: "foo/bar"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// newPods is upstream's addPods: n pods named <node>-<i> (i zero-padded so name order is creation
// order).
func newPods(nodeName string, n int, mutate ...func(*corev1.Pod)) []*corev1.Pod {
	return namedPods(nodeName, nodeName, n, mutate...)
}

// namedPods is newPods with another name prefix: n pods named <prefix>-<i> on nodeName.
func namedPods(prefix, nodeName string, n int, mutate ...func(*corev1.Pod)) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, newPod(fmt.Sprintf("%s-%02d", prefix, i), nodeName, mutate...))
	}
	return out
}

func withHash(h string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if h == "" {
			delete(p.Labels, nasv1alpha1.ControllerRevisionHashLabel)
			return
		}
		p.Labels[nasv1alpha1.ControllerRevisionHashLabel] = h
	}
}

func created(t time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t) }
}

// readySince marks the pod Ready with the given LastTransitionTime.
func readySince(t time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) { setReady(p, corev1.ConditionTrue, t) }
}

// ready marks the pod Ready long ago (available whatever minReadySeconds).
var ready = readySince(t0.Add(-time.Hour))

func notReady(p *corev1.Pod) { setReady(p, corev1.ConditionFalse, t0.Add(-time.Hour)) }

func setReady(p *corev1.Pod, s corev1.ConditionStatus, at time.Time) {
	c := corev1.PodCondition{Type: corev1.PodReady, Status: s, LastTransitionTime: metav1.NewTime(at)}
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			p.Status.Conditions[i] = c
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, c)
}

func phase(ph corev1.PodPhase) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}

func terminating(p *corev1.Pod) {
	ts := metav1.NewTime(t0.Add(-time.Second))
	grace := int64(30)
	p.DeletionTimestamp = &ts
	p.DeletionGracePeriodSeconds = &grace
}

// unboundTo makes the pod pending: no spec.nodeName, pinned to the node through required node affinity,
// as the pods NewPod builds are before the scheduler binds them.
func unboundTo(nodeName string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.NodeName = ""
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{nodeName}}},
			}}},
		}}
	}
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func concat[T any](parts ...[]T) []T {
	return slices.Concat(parts...)
}

// del is a Deletion reduced to what tests compare: the pod's name, the node and the reason.
type del struct {
	Pod    string
	Node   string
	Reason DeleteReason
}

func (d del) String() string { return fmt.Sprintf("%s@%s(%s)", d.Pod, d.Node, d.Reason) }

func dels(p Plan) []del {
	out := make([]del, 0, len(p.Deletes))
	for _, d := range p.Deletes {
		out = append(out, del{Pod: d.Pod.Name, Node: d.Node, Reason: d.Reason})
	}
	return out
}

// assertPlan compares the creates and deletes of a plan, in order (the plan is deterministic).
func assertPlan(t *testing.T, p Plan, wantCreates []string, wantDeletes []del) {
	t.Helper()
	if !slices.Equal(p.Creates, wantCreates) && (len(p.Creates) != 0 || len(wantCreates) != 0) {
		t.Errorf("creates:\n got  %v\n want %v", p.Creates, wantCreates)
	}
	if got := dels(p); !slices.Equal(got, wantDeletes) && (len(got) != 0 || len(wantDeletes) != 0) {
		t.Errorf("deletes:\n got  %v\n want %v", got, wantDeletes)
	}
}

func nodeNames(idx ...int) []string {
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, fmt.Sprintf("node-%d", i))
	}
	return out
}

// requeueBeforeDeadline is p.RequeueAfter, or 0 when it is only the wake-up a second after the progress
// deadline: scenarios about other requeues leave that one out (TestProgressDeadline covers it).
func requeueBeforeDeadline(p Plan, now time.Time) time.Duration {
	if d := p.Rollout.Deadline; !d.IsZero() && p.RequeueAfter == d.Add(time.Second).Sub(now) {
		return 0
	}
	return p.RequeueAfter
}
