//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

const (
	image1 = "registry.k8s.io/pause:3.10"
	image2 = "registry.k8s.io/pause:3.10.1"

	hashLabel = nasv1alpha1.ControllerRevisionHashLabel
	// colorLabel is the node label the node-selection specs move nodes in and out of scope with.
	colorLabel = "e2e.nodeagentset.io/color"
	// fastPoll is the polling interval of the checks that must hold at every poll of a rollout.
	fastPoll = 250 * time.Millisecond
)

var nsCounter atomic.Int32

// newNamespace creates a namespace for one spec (deleted after it, with everything in it) and waits for
// its default ServiceAccount: the ServiceAccount admission plugin refuses pods until it exists.
func newNamespace(ctx context.Context) string {
	name := fmt.Sprintf("e2e-%d-%s", nsCounter.Add(1), utilrand.String(5))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"e2e.nodeagentset.io/suite": "true"}}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		Expect(client.IgnoreNotFound(k8s.Delete(ctx, ns))).To(Succeed())
	})
	Eventually(func(ctx context.Context) error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: name, Name: "default"}, &corev1.ServiceAccount{})
	}).WithContext(ctx).Should(Succeed())
	return name
}

type setOpt func(*nasv1alpha1.NodeAgentSet)

// newSet returns a NodeAgentSet of one pause container, selecting app=<name>; create it with createSet.
func newSet(ns, name string, opts ...setOpt) *nasv1alpha1.NodeAgentSet {
	podLabels := map[string]string{"app": name}
	set := &nasv1alpha1.NodeAgentSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"e2e.nodeagentset.io/set": name}},
		Spec: nasv1alpha1.NodeAgentSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(podLabels)},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: image1}}},
			},
		},
	}
	for _, o := range opts {
		o(set)
	}
	return set
}

func createSet(ctx context.Context, ns, name string, opts ...setOpt) *nasv1alpha1.NodeAgentSet {
	set := newSet(ns, name, opts...)
	ExpectWithOffset(1, k8s.Create(ctx, set)).To(Succeed())
	return set
}

func withMinReadySeconds(s int32) setOpt {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.MinReadySeconds = s }
}

func withNodeSelector(kv ...string) setOpt {
	return func(set *nasv1alpha1.NodeAgentSet) {
		set.Spec.Template.Spec.NodeSelector = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			set.Spec.Template.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

func withStrategy(s nasv1alpha1.NodeAgentSetUpdateStrategy) setOpt {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.UpdateStrategy = s }
}

func withSetLabel(k, v string) setOpt {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Labels[k] = v }
}

// getSet re-reads a set.
func getSet(ctx context.Context, g Gomega, set *nasv1alpha1.NodeAgentSet) *nasv1alpha1.NodeAgentSet {
	var cur nasv1alpha1.NodeAgentSet
	g.ExpectWithOffset(1, k8s.Get(ctx, client.ObjectKeyFromObject(set), &cur)).To(Succeed())
	return &cur
}

// updateSet applies mutate to the latest version of the set, retrying on conflicts.
func updateSet(ctx context.Context, set *nasv1alpha1.NodeAgentSet, mutate func(*nasv1alpha1.NodeAgentSet)) {
	ExpectWithOffset(1, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur nasv1alpha1.NodeAgentSet
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(set), &cur); err != nil {
			return err
		}
		mutate(&cur)
		return k8s.Update(ctx, &cur)
	})).To(Succeed())
}

// rollToImage2 changes the set's image to image2.
func rollToImage2(ctx context.Context, set *nasv1alpha1.NodeAgentSet) {
	updateSet(ctx, set, func(s *nasv1alpha1.NodeAgentSet) { s.Spec.Template.Spec.Containers[0].Image = image2 })
}

// setPods lists the pods the set controls (terminating ones included).
func setPods(ctx context.Context, g Gomega, set *nasv1alpha1.NodeAgentSet) []corev1.Pod {
	var list corev1.PodList
	g.ExpectWithOffset(1, k8s.List(ctx, &list, client.InNamespace(set.Namespace), client.MatchingLabels(set.Spec.Selector.MatchLabels))).To(Succeed())
	var pods []corev1.Pod
	for _, p := range list.Items {
		if metav1.IsControlledBy(&p, set) {
			pods = append(pods, p)
		}
	}
	return pods
}

// setRevisions lists the ControllerRevisions the set controls.
func setRevisions(ctx context.Context, g Gomega, set *nasv1alpha1.NodeAgentSet) []appsv1.ControllerRevision {
	var list appsv1.ControllerRevisionList
	g.ExpectWithOffset(1, k8s.List(ctx, &list, client.InNamespace(set.Namespace), client.MatchingLabels(set.Spec.Selector.MatchLabels))).To(Succeed())
	var revs []appsv1.ControllerRevision
	for _, r := range list.Items {
		if metav1.IsControlledBy(&r, set) {
			revs = append(revs, r)
		}
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].Revision < revs[j].Revision })
	return revs
}

// targetNode is the node a pod is for: its nodeName once bound, before that the value of the
// matchFields metadata.name term the controller pins it with.
func targetNode(p *corev1.Pod) string {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName
	}
	if p.Spec.Affinity == nil || p.Spec.Affinity.NodeAffinity == nil || p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, t := range p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, r := range t.MatchFields {
			if r.Key == "metadata.name" && r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1 {
				return r.Values[0]
			}
		}
	}
	return ""
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// isAvailable: Ready for minReadySeconds, not terminating.
func isAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue &&
				(minReadySeconds == 0 || !c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).After(now))
		}
	}
	return false
}

// live drops terminating pods.
func live(pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// byNode groups pods by their target node.
func byNode(pods []corev1.Pod) map[string][]corev1.Pod {
	m := map[string][]corev1.Pod{}
	for _, p := range pods {
		n := targetNode(&p)
		m[n] = append(m[n], p)
	}
	return m
}

// unavailableNodes are the nodes without an available live pod.
func unavailableNodes(pods []corev1.Pod, nodes []string, minReadySeconds int32, now time.Time) []string {
	m := byNode(live(pods))
	var out []string
	for _, n := range nodes {
		if !slices.ContainsFunc(m[n], func(p corev1.Pod) bool { return isAvailable(&p, minReadySeconds, now) }) {
			out = append(out, n)
		}
	}
	return out
}

func podNames(pods []corev1.Pod) []string {
	names := make([]string, 0, len(pods))
	for _, p := range pods {
		names = append(names, p.Name+"@"+targetNode(&p))
	}
	sort.Strings(names)
	return names
}

// checkRunningOn asserts the upstream "running on all nodes": exactly one available live pod on each
// of nodes and none on any other node, and the status desired == current == ready == len(nodes)
// for the set's current generation.
func checkRunningOn(ctx context.Context, g Gomega, set *nasv1alpha1.NodeAgentSet, nodes []string) {
	cur := getSet(ctx, g, set)
	pods := live(setPods(ctx, g, set))
	m := byNode(pods)
	g.Expect(slices.Sorted(maps.Keys(m))).To(Equal(sorted(nodes)), "nodes with pods: %v", podNames(pods))
	now := time.Now()
	for _, n := range nodes {
		g.Expect(m[n]).To(HaveLen(1), "pods on %s", n)
		g.Expect(isAvailable(&m[n][0], cur.Spec.MinReadySeconds, now)).To(BeTrue(), "pod %s on %s is not available", m[n][0].Name, n)
	}
	checkStatus(g, cur, len(nodes))
}

// checkStatus: the status of the set's current generation counts desired nodes, all scheduled and
// ready, none misscheduled.
func checkStatus(g Gomega, cur *nasv1alpha1.NodeAgentSet, desired int) {
	st := cur.Status
	g.ExpectWithOffset(1, st.ObservedGeneration).To(BeNumerically(">=", cur.Generation), "observedGeneration")
	g.ExpectWithOffset(1, st.DesiredNumberScheduled).To(BeEquivalentTo(desired), "desiredNumberScheduled")
	g.ExpectWithOffset(1, st.CurrentNumberScheduled).To(BeEquivalentTo(desired), "currentNumberScheduled")
	g.ExpectWithOffset(1, st.NumberReady).To(BeEquivalentTo(desired), "numberReady")
	g.ExpectWithOffset(1, st.NumberMisscheduled).To(BeEquivalentTo(0), "numberMisscheduled")
}

// expectRunningOn waits until checkRunningOn holds.
func expectRunningOn(ctx context.Context, set *nasv1alpha1.NodeAgentSet, nodes []string) {
	EventuallyWithOffset(1, func(g Gomega) { checkRunningOn(ctx, g, set, nodes) }).WithContext(ctx).Should(Succeed())
}

// updateRevision waits for the set's current generation to be observed and returns its update
// revision (the hash its new pods carry).
func updateRevision(ctx context.Context, set *nasv1alpha1.NodeAgentSet) string {
	var rev string
	EventuallyWithOffset(1, func(g Gomega) {
		cur := getSet(ctx, g, set)
		g.Expect(cur.Status.ObservedGeneration).To(BeNumerically(">=", cur.Generation))
		g.Expect(cur.Status.UpdateRevision).NotTo(BeEmpty())
		rev = cur.Status.UpdateRevision
	}).WithContext(ctx).Should(Succeed())
	return rev
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

// workerNodes are the local cluster's worker nodes (the control-plane node is tainted NoSchedule).
func workerNodes(ctx context.Context) []string {
	var list corev1.NodeList
	ExpectWithOffset(1, k8s.List(ctx, &list, client.MatchingLabels{"nodeagentset.io/local-cluster": env.clusterName})).To(Succeed())
	var names []string
	for _, n := range list.Items {
		if _, cp := n.Labels["node-role.kubernetes.io/control-plane"]; !cp {
			names = append(names, n.Name)
		}
	}
	sort.Strings(names)
	ExpectWithOffset(1, names).To(HaveLen(workers))
	return names
}

// updateNode applies mutate to the latest version of a node, retrying on conflicts (the node lifecycle
// controller and kwok write nodes too).
func updateNode(ctx context.Context, name string, mutate func(*corev1.Node)) {
	ExpectWithOffset(1, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var n corev1.Node
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, &n); err != nil {
			return err
		}
		mutate(&n)
		return k8s.Update(ctx, &n)
	})).To(Succeed())
}

// colorNode sets (value != "") or removes a node's colorLabel; the label is removed after the spec.
func colorNode(ctx context.Context, node, value string) {
	const key = colorLabel
	updateNode(ctx, node, func(n *corev1.Node) {
		if value == "" {
			delete(n.Labels, key)
		} else {
			n.Labels[key] = value
		}
	})
	DeferCleanup(func(ctx SpecContext) {
		updateNode(ctx, node, func(n *corev1.Node) { delete(n.Labels, key) })
	})
}

// taintNode adds a taint; it is removed after the spec (untaintNode removes it earlier).
func taintNode(ctx context.Context, node string, taint corev1.Taint) {
	updateNode(ctx, node, func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, taint) })
	DeferCleanup(func(ctx SpecContext) { untaintNode(ctx, node, taint.Key) })
}

func untaintNode(ctx context.Context, node, key string) {
	updateNode(ctx, node, func(n *corev1.Node) {
		n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key })
	})
}

// expectGone waits until an object is deleted (NotFound).
func expectGone(ctx context.Context, obj client.Object) {
	EventuallyWithOffset(1, func(ctx context.Context) bool {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		return apierrors.IsNotFound(err)
	}).WithContext(ctx).Should(BeTrue(), "%s %s/%s still exists", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetNamespace(), obj.GetName())
}

func hasCondition(conds []metav1.Condition, condType string) bool {
	return slices.ContainsFunc(conds, func(c metav1.Condition) bool { return c.Type == condType && c.Status == metav1.ConditionTrue })
}

func images(pods []corev1.Pod) []string {
	out := make([]string, 0, len(pods))
	for _, p := range pods {
		out = append(out, p.Spec.Containers[0].Image)
	}
	return out
}

func hashes(pods []corev1.Pod) map[string]int {
	m := map[string]int{}
	for _, p := range pods {
		m[p.Labels[hashLabel]]++
	}
	return m
}

func describePods(pods []corev1.Pod, minReadySeconds int32) string {
	now := time.Now()
	var b strings.Builder
	for _, p := range pods {
		fmt.Fprintf(&b, "  %s node=%s hash=%s image=%s ready=%t available=%t deleting=%t\n", p.Name, targetNode(&p), p.Labels[hashLabel],
			p.Spec.Containers[0].Image, isReady(&p), isAvailable(&p, minReadySeconds, now), p.DeletionTimestamp != nil)
	}
	return b.String()
}
