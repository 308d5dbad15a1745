package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
	"github.com/nodeagentset/nodeagentset/internal/plugin"
)

// result is what one run of the plugin printed, and its exit code.
type result struct {
	out, err string
	code     int
}

// run runs `kubectl nas ARGS...` in-process against the envtest API server.
func run(args ...string) result {
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut}
	code := plugin.Run(ctx, append([]string{"--kubeconfig", kubeconfig}, args...), streams)
	return result{out: out.String(), err: errOut.String(), code: code}
}

var scenarioCounter atomic.Int32

// scenario is one test's namespace and nodes. Specs run one at a time (the suite's containers are
// Serial), so the nodes of a scenario are all the nodes of the cluster while it runs: `nodes` lists
// every node.
type scenario struct {
	ns    string
	nodes []string
}

func newScenario() *scenario {
	return newScenarioIn(fmt.Sprintf("plugin-%d", scenarioCounter.Add(1)))
}

// newScenarioIn is a scenario in the named namespace.
func newScenarioIn(ns string) *scenario {
	s := &scenario{ns: ns}
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}})).To(Succeed())
	DeferCleanup(s.cleanup)
	return s
}

// run runs `kubectl nas -n NAMESPACE ARGS...`.
func (s *scenario) run(args ...string) result {
	return run(append([]string{"-n", s.ns}, args...)...)
}

// cleanup removes what the scenario made: envtest has no garbage collector and no namespace
// controller, so this is done by hand.
func (s *scenario) cleanup() {
	var pods corev1.PodList
	Expect(k8s.List(ctx, &pods, client.InNamespace(s.ns))).To(Succeed())
	for i := range pods.Items {
		pod := &pods.Items[i]
		if len(pod.Finalizers) > 0 {
			pod.Finalizers = nil
			Expect(client.IgnoreNotFound(k8s.Update(ctx, pod))).To(Succeed())
		}
	}
	Expect(k8s.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(s.ns), client.GracePeriodSeconds(0))).To(Succeed())
	Expect(k8s.DeleteAllOf(ctx, &nasv1alpha1.NodeAgentSet{}, client.InNamespace(s.ns))).To(Succeed())
	Expect(k8s.DeleteAllOf(ctx, &appsv1.ControllerRevision{}, client.InNamespace(s.ns))).To(Succeed())
	Expect(k8s.DeleteAllOf(ctx, &corev1.Event{}, client.InNamespace(s.ns))).To(Succeed())
	for _, name := range s.nodes {
		err := k8s.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
		Expect(client.IgnoreNotFound(err)).To(Succeed())
	}
	Eventually(func(g Gomega) {
		var nodes corev1.NodeList
		g.Expect(k8s.List(ctx, &nodes)).To(Succeed())
		g.Expect(nodes.Items).To(BeEmpty())
	}).Should(Succeed())
}

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

// notReady makes the kubelet report the node NotReady.
func notReady(reason, message string) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: reason, Message: message,
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	}
}

// addNode creates a node, Ready unless an option says otherwise.
func (s *scenario) addNode(name string, opts ...nodeOpt) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{corev1.LabelHostname: name, corev1.LabelOSStable: "linux"},
	}}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	for _, o := range opts {
		o(node)
	}
	status := node.Status
	Expect(k8s.Create(ctx, node)).To(Succeed())
	s.nodes = append(s.nodes, name)
	node.Status = status
	Expect(k8s.Status().Update(ctx, node)).To(Succeed())
}

// newSet is a set named name running image; mutate adjusts it before creation.
func (s *scenario) createSet(name, image string, mutate ...func(*nasv1alpha1.NodeAgentSet)) *nasv1alpha1.NodeAgentSet {
	set := &nasv1alpha1.NodeAgentSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: nasv1alpha1.NodeAgentSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](30),
					Containers:                    []corev1.Container{{Name: "agent", Image: image}},
				},
			},
		},
	}
	for _, m := range mutate {
		m(set)
	}
	Expect(k8s.Create(ctx, set)).To(Succeed())
	return s.getSet(name)
}

func (s *scenario) getSet(name string) *nasv1alpha1.NodeAgentSet {
	set := &nasv1alpha1.NodeAgentSet{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: name}, set)).To(Succeed())
	return set
}

// updateSet changes a set's spec.
func (s *scenario) updateSet(name string, mutate func(*nasv1alpha1.NodeAgentSet)) *nasv1alpha1.NodeAgentSet {
	set := s.getSet(name)
	mutate(set)
	Expect(k8s.Update(ctx, set)).To(Succeed())
	return s.getSet(name)
}

func setImage(image string) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Spec.Containers[0].Image = image }
}

// addRevision records the set's current template as a ControllerRevision numbered number, the way the
// controller does (name, hash label, data, annotations copied from the set, controller reference),
// with changeCause as its kubernetes.io/change-cause. It returns the revision hash.
func (s *scenario) addRevision(set *nasv1alpha1.NodeAgentSet, number int64, changeCause string) string {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&set.Spec.Template)
	Expect(err).NotTo(HaveOccurred())
	raw["$patch"] = "replace"
	data, err := json.Marshal(map[string]any{"spec": map[string]any{"template": raw}})
	Expect(err).NotTo(HaveOccurred())
	hash := planner.TemplateHash(&set.Spec.Template, set.Status.CollisionCount)
	labels := maps.Clone(set.Spec.Template.Labels)
	labels[nasv1alpha1.ControllerRevisionHashLabel] = hash
	annotations := maps.Clone(set.Annotations)
	if changeCause != "" {
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[plugin.ChangeCauseAnnotation] = changeCause
	}
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            set.Name + "-" + hash,
			Namespace:       set.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, nasv1alpha1.GroupVersion.WithKind("NodeAgentSet"))},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: number,
	}
	Expect(k8s.Create(ctx, cr)).To(Succeed())
	return hash
}

// rollout gives the set a new image and records it as revision number; it returns the new hash.
func (s *scenario) rollout(name, image string, number int64, changeCause string) string {
	return s.addRevision(s.updateSet(name, setImage(image)), number, changeCause)
}

type podOpt func(*corev1.Pod)

// addPod creates an agent pod of the set on a node, of the revision hash, and applies opts to its
// status. Without opts the pod is bound, Running and Ready.
func (s *scenario) addPod(set *nasv1alpha1.NodeAgentSet, node, hash string, opts ...podOpt) *corev1.Pod {
	pod := planner.NewPod(set, node, hash)
	pod.Spec.NodeName = node
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()},
		},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "agent", Ready: true, Image: set.Spec.Template.Spec.Containers[0].Image,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}},
	}
	for _, o := range opts {
		o(pod)
	}
	status := pod.Status
	Expect(k8s.Create(ctx, pod)).To(Succeed())
	pod.Status = status
	Expect(k8s.Status().Update(ctx, pod)).To(Succeed())
	return pod
}

// unschedulable: the scheduler could not place the pod, which stays unbound.
func unschedulable(message string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.NodeName = ""
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: message,
		}}}
	}
}

// waiting: the container waits with reason, the pod is not ready.
func waiting(reason, message string, restarts int32) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: metav1.Now()},
		}
		cs := &p.Status.ContainerStatuses[0]
		cs.Ready = false
		cs.RestartCount = restarts
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
		if reason == "CrashLoopBackOff" {
			cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 2, Reason: "Error", FinishedAt: metav1.NewTime(time.Date(2026, 11, 22, 6, 1, 30, 0, time.UTC)),
			}}
		}
	}
}

// notReadyPod: running, but the readiness probe fails.
func notReadyPod() podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions[1] = corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady",
			LastTransitionTime: metav1.Now()}
		p.Status.ContainerStatuses[0].Ready = false
	}
}

// pending: bound, its containers being created.
func pending() podOpt {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = p.Status.Conditions[:1]
		p.Status.ContainerStatuses[0].Ready = false
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	}
}

// withFinalizer keeps the pod around once deleted, so that it stays terminating.
func withFinalizer() podOpt {
	return func(p *corev1.Pod) { p.Finalizers = append(p.Finalizers, "example.com/drain") }
}

// terminate deletes a pod that has a finalizer: it stays, terminating.
func terminate(pod *corev1.Pod) {
	Expect(k8s.Delete(ctx, pod)).To(Succeed())
	Eventually(func(g Gomega) {
		fresh := &corev1.Pod{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pod), fresh)).To(Succeed())
		g.Expect(fresh.DeletionTimestamp).NotTo(BeNil())
	}).Should(Succeed())
}

// setStatus writes the set's status: observed at its generation unless mutate says otherwise.
func (s *scenario) setStatus(name string, mutate func(*nasv1alpha1.NodeAgentSetStatus)) {
	Eventually(func() error {
		set := s.getSet(name)
		set.Status.ObservedGeneration = set.Generation
		mutate(&set.Status)
		return k8s.Status().Update(ctx, set)
	}).Should(Succeed())
}

// counters sets desired, updated, available (and the rest consistently).
func counters(desired, updated, available int32) func(*nasv1alpha1.NodeAgentSetStatus) {
	return func(st *nasv1alpha1.NodeAgentSetStatus) {
		st.DesiredNumberScheduled = desired
		st.CurrentNumberScheduled = desired
		st.NumberReady = available
		st.UpdatedNumberScheduled = updated
		st.NumberAvailable = available
		st.NumberUnavailable = desired - available
	}
}

// computeStatus writes the status the controller would: the planner's counters and revisions, and a
// Progressing condition, False with ProgressDeadlineExceeded naming the stuck nodes when stuck is set.
func (s *scenario) computeStatus(name, hash string, stuck bool) {
	set := s.getSet(name)
	var nodes corev1.NodeList
	Expect(k8s.List(ctx, &nodes)).To(Succeed())
	var pods corev1.PodList
	Expect(k8s.List(ctx, &pods, client.InNamespace(s.ns))).To(Succeed())
	in := planner.Input{Set: set, Hash: hash, Now: time.Now()}
	for i := range nodes.Items {
		in.Nodes = append(in.Nodes, &nodes.Items[i])
	}
	for i := range pods.Items {
		in.Pods = append(in.Pods, &pods.Items[i])
	}
	plan := planner.Compute(in)
	s.setStatus(name, func(st *nasv1alpha1.NodeAgentSetStatus) {
		c := plan.Status
		st.DesiredNumberScheduled, st.CurrentNumberScheduled, st.NumberMisscheduled = c.DesiredNumberScheduled, c.CurrentNumberScheduled, c.NumberMisscheduled
		st.NumberReady, st.NumberAvailable, st.NumberUnavailable = c.NumberReady, c.NumberAvailable, c.NumberUnavailable
		st.UpdatedNumberScheduled = c.UpdatedNumberScheduled
		st.UpdateRevision, st.CurrentRevision = hash, plan.CurrentRevision
		if !stuck {
			reason := nasv1alpha1.ReasonRollingOut
			if plan.Rollout.Complete {
				reason = nasv1alpha1.ReasonRolloutComplete
			}
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{
				Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionTrue, Reason: reason,
				Message: fmt.Sprintf("%d of %d eligible nodes run an available pod of revision %s", plan.Rollout.UpdatedAvailable, plan.Rollout.Target, hash),
			})
			return
		}
		parts := make([]string, 0, len(plan.Rollout.Stuck))
		for _, n := range plan.Rollout.Stuck {
			parts = append(parts, fmt.Sprintf("%s (%s)", n.Node, n.Reason))
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionFalse, Reason: nasv1alpha1.ReasonProgressDeadlineExceeded,
			Message: fmt.Sprintf("no progress since %s: %d of %d eligible nodes run an available pod of revision %s; stuck: %s",
				time.Now().Add(-10*time.Minute).UTC().Format(time.RFC3339), plan.Rollout.UpdatedAvailable, plan.Rollout.Target, hash,
				strings.Join(parts, ", ")),
		})
	})
}

// addEvent records a Warning event about an object, as the kubelet or the controller would.
func (s *scenario) addEvent(kind, name string, uid string, reason, message string) {
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: name + ".", Namespace: s.ns},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Name: name, Namespace: s.ns, UID: types.UID(uid)},
		Reason:         reason,
		Message:        message,
		Type:           corev1.EventTypeWarning,
		LastTimestamp:  metav1.Now(),
		FirstTimestamp: metav1.Now(),
		Count:          1,
		Source:         corev1.EventSource{Component: "kubelet"},
	}
	Expect(k8s.Create(ctx, ev)).To(Succeed())
}

// lines splits output into lines, without the trailing empty one.
func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// fields splits each line of a table into its columns (columns are separated by 2+ spaces).
func columns(line string) []string {
	var out []string
	for _, f := range strings.Split(line, "   ") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// said is the planner's sentence for a reason: the tests do not spell out the renderer's wording,
// which its golden files pin.
func said(code planner.ReasonCode) string { return planner.NodeReason{Code: code}.String() }

// saidTaint is the planner's sentence for an untolerated taint.
func saidTaint(key, value string, effect corev1.TaintEffect) string {
	return planner.NodeReason{Code: planner.ReasonTaintNotTolerated, Taint: &corev1.Taint{Key: key, Value: value, Effect: effect}}.String()
}

// saidSelector is the planner's sentence for a nodeSelector entry that does not match.
func saidSelector(key, value string) string {
	return planner.NodeReason{Code: planner.ReasonNodeSelectorMismatch, SelectorKey: key, SelectorValue: value}.String()
}

// saidContainer is the planner's sentence for the waiting container "agent".
func saidContainer(code planner.ReasonCode, waiting string) string {
	return planner.NodeReason{Code: code, Container: "agent", WaitingReason: waiting}.String()
}
