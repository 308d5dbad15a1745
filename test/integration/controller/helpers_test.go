package controller

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

const (
	timeout  = 30 * time.Second
	interval = 100 * time.Millisecond
)

var testCounter atomic.Int32

// scenario is one test's private corner of the cluster: its namespace, and a label that its nodes
// carry and its sets select, so sets of different tests never see each other's nodes.
type scenario struct {
	ns    string
	label string
}

func newScenario() *scenario {
	n := testCounter.Add(1)
	s := &scenario{ns: fmt.Sprintf("nas-test-%d", n), label: fmt.Sprintf("s%d", n)}
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}})).To(Succeed())
	DeferCleanup(s.cleanup)
	return s
}

// cleanup removes the scenario's sets, pods and nodes. envtest has no garbage collector and no
// namespace controller, so this is done by hand.
func (s *scenario) cleanup() {
	Expect(k8s.DeleteAllOf(ctx, &nasv1alpha1.NodeAgentSet{}, client.InNamespace(s.ns))).To(Succeed())
	Expect(k8s.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(s.ns), client.GracePeriodSeconds(0))).To(Succeed())
	Expect(k8s.DeleteAllOf(ctx, &corev1.Node{}, client.MatchingLabels{"scenario": s.label})).To(Succeed())
}

// nodeName makes node names unique across scenarios.
func (s *scenario) nodeName(name string) string { return s.label + "-" + name }

type nodeOpt func(*corev1.Node)

func withLabels(kv ...string) nodeOpt {
	return func(n *corev1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func withTaint(key, value string, effect corev1.TaintEffect) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	}
}

func unschedulable() nodeOpt { return func(n *corev1.Node) { n.Spec.Unschedulable = true } }

// addNode creates a node of the scenario; conditions are set through the status subresource.
func (s *scenario) addNode(name string, opts ...nodeOpt) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   s.nodeName(name),
		Labels: map[string]string{"scenario": s.label, corev1.LabelHostname: s.nodeName(name)},
	}}
	for _, o := range opts {
		o(node)
	}
	Expect(k8s.Create(ctx, node)).To(Succeed())
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
	Expect(k8s.Status().Update(ctx, node)).To(Succeed())
}

// addNodes creates n plain nodes, node-0 to node-<n-1>.
func (s *scenario) addNodes(n int) {
	for i := range n {
		s.addNode(fmt.Sprintf("node-%d", i))
	}
}

func (s *scenario) updateNode(name string, mutate func(*corev1.Node)) {
	Eventually(func() error {
		node := &corev1.Node{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: s.nodeName(name)}, node); err != nil {
			return err
		}
		mutate(node)
		return k8s.Update(ctx, node)
	}, timeout, interval).Should(Succeed())
}

// newSet returns a set that selects the scenario's nodes; mutate adjusts it before creation.
func (s *scenario) newSet(name string, mutate ...func(*nasv1alpha1.NodeAgentSet)) *nasv1alpha1.NodeAgentSet {
	set := &nasv1alpha1.NodeAgentSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: nasv1alpha1.NodeAgentSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{
					NodeSelector:                  map[string]string{"scenario": s.label},
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers:                    []corev1.Container{{Name: "agent", Image: "registry.k8s.io/pause:3.10"}},
				},
			},
		},
	}
	for _, m := range mutate {
		m(set)
	}
	return set
}

func (s *scenario) createSet(name string, mutate ...func(*nasv1alpha1.NodeAgentSet)) *nasv1alpha1.NodeAgentSet {
	set := s.newSet(name, mutate...)
	Expect(k8s.Create(ctx, set)).To(Succeed())
	return set
}

func (s *scenario) getSet(name string) *nasv1alpha1.NodeAgentSet {
	set := &nasv1alpha1.NodeAgentSet{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: name}, set)).To(Succeed())
	return set
}

// updateSet applies mutate to the set named agent (the one every test that updates a set creates),
// retrying on conflicts.
func (s *scenario) updateSet(mutate func(*nasv1alpha1.NodeAgentSet)) {
	Eventually(func() error {
		set := &nasv1alpha1.NodeAgentSet{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: "agent"}, set); err != nil {
			return err
		}
		mutate(set)
		return k8s.Update(ctx, set)
	}, timeout, interval).Should(Succeed())
}

func (s *scenario) pods() []corev1.Pod {
	var pods corev1.PodList
	Expect(k8s.List(ctx, &pods, client.InNamespace(s.ns))).To(Succeed())
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	return pods.Items
}

// livePods are the pods not being deleted, by target node.
func (s *scenario) livePodsByNode() map[string][]corev1.Pod {
	out := map[string][]corev1.Pod{}
	for _, p := range s.pods() {
		if p.DeletionTimestamp != nil {
			continue
		}
		node, _ := planner.TargetNodeName(&p)
		out[node] = append(out[node], p)
	}
	return out
}

// nodesWithPods returns the (short) names of nodes that run exactly one live pod; it fails the poll
// if a node has more than one.
func (s *scenario) nodesWithPods(g Gomega) []string {
	byNode := s.livePodsByNode()
	names := make([]string, 0, len(byNode))
	for node, pods := range byNode {
		g.Expect(pods).To(HaveLen(1), "node %s has %d pods", node, len(pods))
		names = append(names, strings.TrimPrefix(node, s.label+"-"))
	}
	sort.Strings(names)
	return names
}

// kubelet plays the scheduler and the kubelet for the scenario's pods: it binds unbound pods to the
// node of their matchFields affinity, marks bound pods Running and Ready, and finishes the deletion
// of terminating pods. Pods whose node is in notReady are bound but left not Ready.
type kubelet struct {
	s        *scenario
	notReady map[string]bool
}

func (s *scenario) kubelet() *kubelet { return &kubelet{s: s, notReady: map[string]bool{}} }

// step does one round of scheduling and kubelet work.
func (k *kubelet) step() {
	for _, pod := range k.s.pods() {
		switch {
		case pod.DeletionTimestamp != nil:
			if len(pod.Finalizers) == 0 {
				err := k8s.Delete(ctx, &pod, client.GracePeriodSeconds(0))
				Expect(client.IgnoreNotFound(err)).To(Succeed())
			}
		case pod.Spec.NodeName == "":
			node, ok := planner.TargetNodeName(&pod)
			Expect(ok).To(BeTrue(), "pod %s has no node affinity", pod.Name)
			err := clientset.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
				ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
				Target:     corev1.ObjectReference{Kind: "Node", Name: node},
			}, metav1.CreateOptions{})
			Expect(ignoreGoneOrConflict(err)).To(Succeed())
		case pod.Status.Phase == "" || pod.Status.Phase == corev1.PodPending:
			if k.notReady[strings.TrimPrefix(pod.Spec.NodeName, k.s.label+"-")] {
				continue
			}
			k.setPhase(&pod, corev1.PodRunning, corev1.ConditionTrue)
		}
	}
}

func (k *kubelet) setPhase(pod *corev1.Pod, phase corev1.PodPhase, ready corev1.ConditionStatus) {
	pod.Status.Phase = phase
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready, LastTransitionTime: metav1.Now()}}
	Expect(ignoreGoneOrConflict(k8s.Status().Update(ctx, pod))).To(Succeed())
}

func ignoreGoneOrConflict(err error) error {
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// eventually polls f while the kubelet keeps working.
func (k *kubelet) eventually(f func(g Gomega)) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		k.step()
		f(g)
	}, timeout, interval).Should(Succeed())
}

// consistently checks f for a while, with the kubelet working.
func (k *kubelet) consistently(d time.Duration, f func(g Gomega)) {
	GinkgoHelper()
	Consistently(func(g Gomega) {
		k.step()
		f(g)
	}, d, interval).Should(Succeed())
}

// events returns the reasons of the events about the set named agent (the one every test that looks
// at events creates), with their messages.
func (s *scenario) events() map[string][]string {
	var list corev1.EventList
	Expect(k8s.List(ctx, &list, client.InNamespace(s.ns))).To(Succeed())
	out := map[string][]string{}
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "NodeAgentSet" && e.InvolvedObject.Name == "agent" {
			out[e.Reason] = append(out[e.Reason], e.Message)
		}
	}
	return out
}

func condition(set *nasv1alpha1.NodeAgentSet, t string) *metav1.Condition {
	return meta.FindStatusCondition(set.Status.Conditions, t)
}

// counters is the status as a comparable value.
type counters struct {
	Desired, Current, Ready, Available, Unavailable, Updated, Misscheduled int32
}

// countersWithinASecond expects the status counters of the set named agent to be want within a
// second, without the kubelet working: the world is not changing meanwhile.
func (s *scenario) countersWithinASecond(want counters) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(statusCounters(s.getSet("agent"))).To(Equal(want))
	}, time.Second, 20*time.Millisecond).Should(Succeed())
}

func statusCounters(set *nasv1alpha1.NodeAgentSet) counters {
	st := set.Status
	return counters{
		Desired: st.DesiredNumberScheduled, Current: st.CurrentNumberScheduled, Ready: st.NumberReady,
		Available: st.NumberAvailable, Unavailable: st.NumberUnavailable, Updated: st.UpdatedNumberScheduled,
		Misscheduled: st.NumberMisscheduled,
	}
}

// Event reasons the tests look for; the controller's constants, restated so a renamed reason fails here.
const (
	EventSuccessfulCreate = "SuccessfulCreate"
	EventFailedCreate     = "FailedCreate"
	EventFailedDaemonPod  = "FailedDaemonPod"
	EventSucceededDaemon  = "SucceededDaemonPod"
)

func (s *scenario) updateNodeStatus(name string, cond corev1.NodeCondition) {
	Eventually(func() error {
		node := &corev1.Node{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: s.nodeName(name)}, node); err != nil {
			return err
		}
		node.Status.Conditions = []corev1.NodeCondition{cond}
		return k8s.Status().Update(ctx, node)
	}, timeout, interval).Should(Succeed())
}
