//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// upstreamTolerations are the tolerations upstream's DaemonSet controller adds to every daemon pod
// (AddOrUpdateDaemonPodTolerations), without tolerationSeconds.
var upstreamTolerations = []corev1.Toleration{
	{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: "node.kubernetes.io/disk-pressure", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: "node.kubernetes.io/memory-pressure", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: "node.kubernetes.io/pid-pressure", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: "node.kubernetes.io/unschedulable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

var networkUnavailableToleration = corev1.Toleration{
	Key: "node.kubernetes.io/network-unavailable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule,
}

// firstSeen records, from a watch started before the pods exist, each pod as its first event showed
// it, and that event's type.
type firstSeen struct {
	mu   sync.Mutex
	pods map[types.UID]seenPod
}

type seenPod struct {
	pod   corev1.Pod
	event watch.EventType
}

func watchPodCreations(ctx context.Context, ns string) *firstSeen {
	w, err := k8s.Watch(ctx, &corev1.PodList{}, client.InNamespace(ns))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(w.Stop)
	fs := &firstSeen{pods: map[types.UID]seenPod{}}
	go func() {
		defer GinkgoRecover()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			fs.mu.Lock()
			if _, seen := fs.pods[p.UID]; !seen {
				fs.pods[p.UID] = seenPod{pod: *p.DeepCopy(), event: ev.Type}
			}
			fs.mu.Unlock()
		}
	}()
	return fs
}

func (fs *firstSeen) get(uid types.UID) (seenPod, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	p, ok := fs.pods[uid]
	return p, ok
}

// fieldsOwnNodeName: a managedFields entry of the main resource that sets spec.nodeName.
func fieldsOwnNodeName(g Gomega, mf metav1.ManagedFieldsEntry) bool {
	if mf.FieldsV1 == nil || mf.Subresource != "" {
		return false
	}
	var fields map[string]any
	g.Expect(json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields)).To(Succeed())
	spec, _ := fields["f:spec"].(map[string]any)
	_, ok := spec["f:nodeName"]
	return ok
}

var _ = Describe("Agent pods", func() {
	var ns string
	var nodes []string

	BeforeEach(func(ctx SpecContext) {
		ns = newNamespace(ctx)
		nodes = workerNodes(ctx)
	})

	It("are created unbound, pinned by one matchFields term, and bound by the scheduler", func(ctx SpecContext) {
		created := watchPodCreations(ctx, ns)
		set := createSet(ctx, ns, "bound", func(s *nasv1alpha1.NodeAgentSet) {
			// A user's node affinity is replaced in the pod, upstream's way.
			s.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/os", Operator: corev1.NodeSelectorOpIn, Values: []string{"linux"}}},
				}}},
			}}
		})
		expectRunningOn(ctx, set, nodes)

		for _, p := range live(setPods(ctx, Default, set)) {
			By("pod " + p.Name + " on " + p.Spec.NodeName)
			var first seenPod
			Eventually(func() bool {
				var ok bool
				first, ok = created.get(p.UID)
				return ok
			}).WithContext(ctx).Should(BeTrue(), "the watch saw no event of %s", p.Name)
			// The watch started on an empty namespace: a pod's first event is its creation.
			Expect(first.event).To(Equal(watch.Added))
			Expect(first.pod.Spec.NodeName).To(BeEmpty(), "the controller set nodeName itself")
			for _, mf := range p.ManagedFields {
				Expect(fieldsOwnNodeName(Default, mf)).To(BeFalse(), "%s (%s) owns spec.nodeName", mf.Manager, mf.Operation)
			}

			Expect(p.Spec.NodeName).NotTo(BeEmpty())
			Expect(p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms).To(Equal([]corev1.NodeSelectorTerm{{
				MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{p.Spec.NodeName}}},
			}}))
			Expect(p.Status.Conditions).To(ContainElement(And(
				HaveField("Type", corev1.PodScheduled), HaveField("Status", corev1.ConditionTrue))))

			Expect(p.Spec.Tolerations).To(ContainElements(upstreamTolerations))
			Expect(p.Spec.Tolerations).NotTo(ContainElement(networkUnavailableToleration))

			Expect(p.OwnerReferences).To(ConsistOf(metav1.OwnerReference{
				APIVersion: nasv1alpha1.GroupVersion.String(), Kind: "NodeAgentSet", Name: set.Name, UID: set.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}))
		}
	})

	It("of a hostNetwork template also tolerate network-unavailable, and replace matching user tolerations", func(ctx SpecContext) {
		set := createSet(ctx, ns, "hostnet", func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.Template.Spec.HostNetwork = true
			s.Spec.Template.Spec.Tolerations = []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](30)},
				{Key: "e2e.nodeagentset.io/mine", Operator: corev1.TolerationOpExists},
			}
		})
		expectRunningOn(ctx, set, nodes)
		for _, p := range live(setPods(ctx, Default, set)) {
			Expect(p.Spec.Tolerations).To(ConsistOf(append(append([]corev1.Toleration{
				{Key: "e2e.nodeagentset.io/mine", Operator: corev1.TolerationOpExists}},
				upstreamTolerations...), networkUnavailableToleration)), "pod %s", p.Name)
			Expect(p.Status.PodIP).To(Equal("127.0.0.1"), "a hostNetwork pod has its node's address")
		}
	})

	It("run on the control-plane node when the template tolerates its taint", func(ctx SpecContext) {
		set := createSet(ctx, ns, "everywhere", func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.Template.Spec.Tolerations = []corev1.Toleration{
				{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
			}
		})
		expectRunningOn(ctx, set, append([]string{"control-plane-1"}, nodes...))
	})
})
