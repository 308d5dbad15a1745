package controller

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// Images of the rollout tests. The test kubelet never pulls anything: an image is only a way to
// change the template, except brokenImage, whose pods it leaves Pending in ImagePullBackOff.
const (
	imageV1     = "registry.k8s.io/pause:3.10"
	imageV2     = "registry.k8s.io/pause:3.9"
	imageV3     = "registry.k8s.io/pause:3.8"
	imageV4     = "registry.k8s.io/pause:3.7"
	brokenImage = "registry.k8s.io/pause:does-not-exist"
)

// rolloutKubelet is the suite's kubelet, except that pods of brokenImage are bound but stay Pending,
// their container waiting in ImagePullBackOff, as a kubelet that cannot pull the image shows them. It
// can also watch nodes, recording at every poll how many of them lack an available pod (worst).
type rolloutKubelet struct {
	base    *kubelet
	s       *scenario
	watched []string
	worst   int
}

func (s *scenario) rolloutKubelet() *rolloutKubelet {
	return &rolloutKubelet{base: s.kubelet(), s: s}
}

func isBroken(pod *corev1.Pod) bool {
	return len(pod.Spec.Containers) > 0 && pod.Spec.Containers[0].Image == brokenImage
}

func (k *rolloutKubelet) step() {
	// The base kubelet leaves the Pending pods of notReady nodes alone: list the nodes of broken pods.
	k.base.notReady = map[string]bool{}
	for _, pod := range k.s.pods() {
		if node, ok := planner.TargetNodeName(&pod); ok && pod.DeletionTimestamp == nil && isBroken(&pod) {
			k.base.notReady[strings.TrimPrefix(node, k.s.label+"-")] = true
		}
	}
	k.base.step()
	for _, pod := range k.s.pods() {
		if pod.DeletionTimestamp != nil || pod.Spec.NodeName == "" || !isBroken(&pod) || len(pod.Status.ContainerStatuses) > 0 {
			continue
		}
		pod.Status.Phase = corev1.PodPending
		pod.Status.Conditions = []corev1.PodCondition{{
			Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: metav1.Now(),
		}}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name:  pod.Spec.Containers[0].Name,
			Image: brokenImage,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "ImagePullBackOff", Message: "Back-off pulling image " + brokenImage,
			}},
		}}
		Expect(ignoreGoneOrConflict(k8s.Status().Update(ctx, &pod))).To(Succeed())
	}
	if len(k.watched) > 0 {
		k.worst = max(k.worst, k.s.nodesWithoutAvailablePod(k.watched))
	}
}

func (k *rolloutKubelet) eventually(f func(g Gomega)) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		k.step()
		f(g)
	}, timeout, interval).Should(Succeed())
}

func (k *rolloutKubelet) consistently(d time.Duration, f func(g Gomega)) {
	GinkgoHelper()
	Consistently(func(g Gomega) {
		k.step()
		f(g)
	}, d, interval).Should(Succeed())
}

// nodesWithoutAvailablePod counts the nodes (short names) that have no live, available pod right now.
func (s *scenario) nodesWithoutAvailablePod(nodes []string) int {
	byNode := s.livePodsByNode()
	missing := 0
	for _, n := range nodes {
		available := false
		for i := range byNode[s.nodeName(n)] {
			available = available || planner.IsPodAvailable(&byNode[s.nodeName(n)][i], 0, time.Now())
		}
		if !available {
			missing++
		}
	}
	return missing
}

// agentPods maps each node (short name) to its only live pod; it fails the poll if a node has more.
func (s *scenario) agentPods(g Gomega) map[string]corev1.Pod {
	out := map[string]corev1.Pod{}
	for node, pods := range s.livePodsByNode() {
		g.Expect(pods).To(HaveLen(1), "node %s has %d live pods", node, len(pods))
		out[strings.TrimPrefix(node, s.label+"-")] = pods[0]
	}
	return out
}

// podView is what the rollout tests compare about a node's pod: who it is and what it runs.
type podView struct {
	Name  string
	UID   types.UID
	Hash  string
	Image string
	Ready bool
}

func viewPods(pods map[string]corev1.Pod) map[string]podView {
	out := make(map[string]podView, len(pods))
	for node, p := range pods {
		out[node] = podView{
			Name: p.Name, UID: p.UID, Hash: p.Labels[nasv1alpha1.ControllerRevisionHashLabel],
			Image: p.Spec.Containers[0].Image, Ready: planner.IsPodReady(&p),
		}
	}
	return out
}

// runningEverywhere asserts that exactly the given nodes run one Ready pod each, of hash and image.
func runningEverywhere(g Gomega, pods map[string]podView, nodes []string, hash, image string) {
	g.Expect(pods).To(HaveLen(len(nodes)))
	for _, n := range nodes {
		g.Expect(pods).To(HaveKeyWithValue(n, And(
			HaveField("Hash", hash), HaveField("Image", image), HaveField("Ready", BeTrue()),
		)), "node %s", n)
	}
}

// shortNodeNames are node-0 to node-<n-1>, as addNodes names them.
func shortNodeNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%d", i)
	}
	return out
}

// revisionView is what the tests compare about a ControllerRevision.
type revisionView struct {
	Name     string
	Hash     string
	Revision int64
}

// controllerRevisions lists the scenario's ControllerRevisions, lowest revision first.
func (s *scenario) controllerRevisions() []appsv1.ControllerRevision {
	var list appsv1.ControllerRevisionList
	Expect(k8s.List(ctx, &list, client.InNamespace(s.ns))).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool {
		if list.Items[i].Revision != list.Items[j].Revision {
			return list.Items[i].Revision < list.Items[j].Revision
		}
		return list.Items[i].Name < list.Items[j].Name
	})
	return list.Items
}

func (s *scenario) revisionViews() []revisionView {
	crs := s.controllerRevisions()
	out := make([]revisionView, 0, len(crs))
	for _, cr := range crs {
		out = append(out, revisionView{Name: cr.Name, Hash: cr.Labels[nasv1alpha1.ControllerRevisionHashLabel], Revision: cr.Revision})
	}
	return out
}

// revisionTemplate decodes the template a revision restores.
func revisionTemplate(cr *appsv1.ControllerRevision) corev1.PodTemplateSpec {
	GinkgoHelper()
	var data struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	Expect(json.Unmarshal(cr.Data.Raw, &data)).To(Succeed())
	return data.Spec.Template
}

func setImage(image string) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Spec.Containers[0].Image = image }
}

// changeTemplate updates the set named agent and returns the hash of its new template once the
// controller has reconciled the change.
func (s *scenario) changeTemplate(k *rolloutKubelet, mutate func(*nasv1alpha1.NodeAgentSet)) string {
	GinkgoHelper()
	before := s.getSet("agent").Status.UpdateRevision
	s.updateSet(mutate)
	var hash string
	k.eventually(func(g Gomega) {
		set := s.getSet("agent")
		g.Expect(set.Status.ObservedGeneration).To(Equal(set.Generation))
		g.Expect(set.Status.UpdateRevision).NotTo(Equal(before))
		hash = set.Status.UpdateRevision
	})
	return hash
}

// rolledOut waits until nodes run Ready pods of image under the set's current revision, with
// status reporting a finished rollout; it returns the pods.
func (s *scenario) rolledOut(k *rolloutKubelet, nodes []string, image string) map[string]podView {
	GinkgoHelper()
	var pods map[string]podView
	k.eventually(func(g Gomega) {
		set := s.getSet("agent")
		pods = viewPods(s.agentPods(g))
		runningEverywhere(g, pods, nodes, set.Status.UpdateRevision, image)
		g.Expect(set.Status.CurrentRevision).To(Equal(set.Status.UpdateRevision))
		g.Expect(statusCounters(set)).To(Equal(counters{
			Desired: int32(len(nodes)), Current: int32(len(nodes)), Ready: int32(len(nodes)),
			Available: int32(len(nodes)), Updated: int32(len(nodes)),
		}))
		progressing := condition(set, nasv1alpha1.ConditionProgressing)
		g.Expect(progressing).NotTo(BeNil())
		g.Expect(progressing.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(progressing.Reason).To(Equal(nasv1alpha1.ReasonRolloutComplete))
	})
	return pods
}

func controllerRefTo(set *nasv1alpha1.NodeAgentSet) metav1.OwnerReference {
	return *metav1.NewControllerRef(set, nasv1alpha1.GroupVersion.WithKind("NodeAgentSet"))
}

func progressingOf(g Gomega, set *nasv1alpha1.NodeAgentSet) metav1.Condition {
	c := condition(set, nasv1alpha1.ConditionProgressing)
	g.Expect(c).NotTo(BeNil(), "no Progressing condition")
	return *c
}

var _ = Describe("Rollouts and revision history", func() {
	It("records revision 1 with the template as a replace patch, then revision 2 on an image change, rolling one node at a time", func() {
		s := newScenario()
		k := s.rolloutKubelet()
		nodes := shortNodeNames(3)
		s.addNodes(3)
		s.createSet("agent")
		v1 := s.rolledOut(k, nodes, imageV1)

		set := s.getSet("agent")
		crs := s.controllerRevisions()
		Expect(crs).To(HaveLen(1))
		first := crs[0]
		hash1 := set.Status.UpdateRevision
		Expect(hash1).NotTo(BeEmpty())
		Expect(first.Name).To(Equal("agent-" + hash1))
		Expect(first.Revision).To(BeEquivalentTo(1))
		Expect(first.Labels).To(Equal(map[string]string{"app": "agent", nasv1alpha1.ControllerRevisionHashLabel: hash1}))
		Expect(first.OwnerReferences).To(ConsistOf(metav1.OwnerReference{
			APIVersion: nasv1alpha1.GroupVersion.String(), Kind: "NodeAgentSet", Name: "agent", UID: set.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}))
		for node, p := range v1 {
			Expect(p.Hash).To(Equal(hash1), "pod on %s", node)
		}
		// The data is a strategic merge patch that replaces the whole template with the set's.
		var raw map[string]map[string]map[string]any
		Expect(json.Unmarshal(first.Data.Raw, &raw)).To(Succeed())
		Expect(raw).To(HaveLen(1))
		Expect(raw["spec"]).To(HaveLen(1))
		Expect(raw["spec"]["template"]).To(HaveKeyWithValue("$patch", "replace"))
		Expect(revisionTemplate(&first)).To(BeComparableTo(set.Spec.Template))

		k.watched = nodes
		hash2 := s.changeTemplate(k, setImage(imageV2))
		Expect(hash2).NotTo(Equal(hash1))
		v2 := s.rolledOut(k, nodes, imageV2)
		// Every pod was replaced, never more than one node at a time without an available pod; each
		// replacement was seen not yet Ready, so the check did look.
		Expect(k.worst).To(Equal(1))
		for node, p := range v2 {
			Expect(p.UID).NotTo(Equal(v1[node].UID), "pod on %s", node)
		}
		Expect(s.revisionViews()).To(Equal([]revisionView{
			{Name: "agent-" + hash1, Hash: hash1, Revision: 1},
			{Name: "agent-" + hash2, Hash: hash2, Revision: 2},
		}))
		got := s.getSet("agent")
		Expect(got.Status.UpdateRevision).To(Equal(hash2))
		Expect(got.Status.CurrentRevision).To(Equal(hash2))
		Expect(got.Status.UpdatedNumberScheduled).To(Equal(got.Status.DesiredNumberScheduled))
	})

	It("rolls back without restarting old pods, reusing and renumbering the old revision", func() {
		s := newScenario()
		k := s.rolloutKubelet()
		nodes := shortNodeNames(3)
		s.addNodes(3)
		s.createSet("agent")
		s.rolledOut(k, nodes, imageV1)
		original := s.controllerRevisions()
		Expect(original).To(HaveLen(1))
		hash1 := original[0].Labels[nasv1alpha1.ControllerRevisionHashLabel]

		k.watched = nodes
		hashBroken := s.changeTemplate(k, setImage(brokenImage))
		// One node gets a new pod that never becomes Ready; the budget of 1 stops the rollout there.
		var midRollout map[string]podView
		k.eventually(func(g Gomega) {
			midRollout = viewPods(s.agentPods(g))
			g.Expect(midRollout).To(HaveLen(3))
			var stuck, old []string
			for node, p := range midRollout {
				switch p.Hash {
				case hashBroken:
					stuck = append(stuck, node)
				case hash1:
					old = append(old, node)
				}
			}
			g.Expect(stuck).To(HaveLen(1))
			g.Expect(old).To(HaveLen(2))
		})
		oldPods := map[string]podView{}
		for node, p := range midRollout {
			if p.Hash == hash1 {
				oldPods[node] = p
			}
		}

		// Roll back by restoring the template the first revision holds, as kubectl rollout undo does.
		restored := revisionTemplate(&original[0])
		s.updateSet(func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template = restored })
		pods := s.rolledOut(k, nodes, imageV1)
		Expect(s.getSet("agent").Status.UpdateRevision).To(Equal(hash1))
		for node, p := range oldPods {
			Expect(pods).To(HaveKeyWithValue(node, p), "the old pod on %s was restarted", node)
		}
		// The first revision is reused under its name and hash, renumbered 3; no revision 4 appears.
		want := []revisionView{
			{Name: "agent-" + hashBroken, Hash: hashBroken, Revision: 2},
			{Name: original[0].Name, Hash: hash1, Revision: 3},
		}
		Eventually(s.revisionViews, timeout, interval).Should(Equal(want))
		k.consistently(2*time.Second, func(g Gomega) {
			g.Expect(s.revisionViews()).To(Equal(want))
			g.Expect(viewPods(s.agentPods(g))).To(Equal(pods))
		})
		Expect(s.controllerRevisions()[1].UID).To(Equal(original[0].UID))
		Expect(k.worst).To(Equal(1))
	})

	It("raises collisionCount when the new revision's name is taken by other data, and rolls out under the next hash", func() {
		s := newScenario()
		k := s.rolloutKubelet()
		nodes := shortNodeNames(1)
		s.addNodes(1)
		s.createSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: ptr.To(intstr.FromInt32(1))}
		})
		s.rolledOut(k, nodes, imageV1)
		set := s.getSet("agent")
		collisions := ptr.Deref(set.Status.CollisionCount, 0)
		current := s.controllerRevisions()
		Expect(current).To(HaveLen(1))

		// The template the update will store, as the API server returns it, and the name its revision
		// would get.
		next := set.DeepCopy()
		next.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
		Expect(k8s.Update(ctx, next, client.DryRunAll)).To(Succeed())
		taken := planner.TemplateHash(&next.Spec.Template, set.Status.CollisionCount)
		squatter := &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{
				Name: "agent-" + taken, Namespace: s.ns,
				Labels:          map[string]string{"app": "agent", nasv1alpha1.ControllerRevisionHashLabel: taken},
				OwnerReferences: []metav1.OwnerReference{controllerRefTo(set)},
			},
			Data: runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"$patch":"replace","metadata":{"labels":{"app":"agent"}},` +
				`"spec":{"containers":[{"image":"registry.k8s.io/squatter:1","name":"agent"}]}}}}`)},
			Revision: current[0].Revision + 1,
		}
		Expect(k8s.Create(ctx, squatter)).To(Succeed())

		s.updateSet(func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
		})
		rehashed := planner.TemplateHash(&next.Spec.Template, ptr.To(collisions+1))
		k.eventually(func(g Gomega) {
			got := s.getSet("agent")
			g.Expect(got.Status.CollisionCount).To(Equal(ptr.To(collisions + 1)))
			g.Expect(got.Status.UpdateRevision).To(Equal(rehashed))
			pods := s.agentPods(g)
			g.Expect(pods).To(HaveKey("node-0"))
			pod := pods["node-0"]
			g.Expect(pod.Labels).To(HaveKeyWithValue(nasv1alpha1.ControllerRevisionHashLabel, rehashed))
			g.Expect(pod.Spec.TerminationGracePeriodSeconds).To(Equal(ptr.To[int64](1)))
			g.Expect(planner.IsPodReady(&pod)).To(BeTrue())
		})
		// The squatter is left as it was; the new template got a revision of its own under the new hash.
		got := &appsv1.ControllerRevision{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(squatter), got)).To(Succeed())
		Expect(got.UID).To(Equal(squatter.UID))
		Expect(got.Data.Raw).To(MatchJSON(squatter.Data.Raw))
		created := &appsv1.ControllerRevision{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: "agent-" + rehashed}, created)).To(Succeed())
		Expect(revisionTemplate(created)).To(BeComparableTo(s.getSet("agent").Spec.Template))
	})

	It("keeps one current revision when two hold the same template, relabelling pods instead of replacing them", func() {
		s := newScenario()
		k := s.rolloutKubelet()
		s.addNodes(2)
		set := s.createSet("agent")
		before := s.rolledOut(k, shortNodeNames(2), imageV1)
		crs := s.controllerRevisions()
		Expect(crs).To(HaveLen(1))
		original := crs[0]

		const dupHash = "duplicate1"
		dup := &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{
				Name: "agent-" + dupHash, Namespace: s.ns,
				Labels:          map[string]string{"app": "agent", nasv1alpha1.ControllerRevisionHashLabel: dupHash},
				OwnerReferences: []metav1.OwnerReference{controllerRefTo(set)},
			},
			Data:     *original.Data.DeepCopy(),
			Revision: original.Revision + 1,
		}
		Expect(k8s.Create(ctx, dup)).To(Succeed())
		s.addNode("node-2")

		after := s.rolledOut(k, shortNodeNames(3), imageV1)
		Expect(s.getSet("agent").Status.UpdateRevision).To(Equal(dupHash))
		for node, p := range before {
			// Same pod, new label.
			Expect(after[node].UID).To(Equal(p.UID), "the pod on %s was replaced", node)
		}
		Expect(s.revisionViews()).To(Equal([]revisionView{{Name: dup.Name, Hash: dupHash, Revision: 2}}))
		err := k8s.Get(ctx, client.ObjectKeyFromObject(&original), &appsv1.ControllerRevision{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the original revision still exists: %v", err)
	})

	It("with OnDelete records the new revision but replaces a pod only when it is deleted; new nodes get the new revision", func() {
		s := newScenario()
		k := s.rolloutKubelet()
		s.addNodes(3)
		s.createSet("agent", withStrategy(nasv1alpha1.OnDeleteStrategyType))
		before := s.rolledOut(k, shortNodeNames(3), imageV1)
		hash1 := s.getSet("agent").Status.UpdateRevision

		hash2 := s.changeTemplate(k, setImage(imageV2))
		k.consistently(3*time.Second, func(g Gomega) {
			g.Expect(viewPods(s.agentPods(g))).To(Equal(before))
		})
		Expect(s.revisionViews()).To(Equal([]revisionView{
			{Name: "agent-" + hash1, Hash: hash1, Revision: 1},
			{Name: "agent-" + hash2, Hash: hash2, Revision: 2},
		}))
		set := s.getSet("agent")
		Expect(set.Status.UpdatedNumberScheduled).To(BeZero())
		Expect(set.Status.CurrentRevision).To(Equal(hash1))
		progressing := progressingOf(Default, set)
		Expect(progressing.Status).To(Equal(metav1.ConditionTrue))
		Expect(progressing.Reason).To(Equal(nasv1alpha1.ReasonWaitingForDeletion))
		Expect(progressing.Message).To(Equal(fmt.Sprintf(
			"0 of 3 eligible nodes run an available pod of revision %s; strategy OnDelete: old pods are replaced when deleted", hash2)))

		victim := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: before["node-1"].Name}}
		Expect(k8s.Delete(ctx, victim, client.GracePeriodSeconds(0))).To(Succeed())
		s.addNode("node-3")
		k.eventually(func(g Gomega) {
			pods := viewPods(s.agentPods(g))
			g.Expect(pods).To(HaveLen(4))
			g.Expect(pods).To(HaveKeyWithValue("node-0", before["node-0"]))
			g.Expect(pods).To(HaveKeyWithValue("node-2", before["node-2"]))
			for _, n := range []string{"node-1", "node-3"} {
				g.Expect(pods).To(HaveKeyWithValue(n, And(HaveField("Hash", hash2), HaveField("Image", imageV2), HaveField("Ready", BeTrue()))))
			}
			g.Expect(s.getSet("agent").Status.UpdatedNumberScheduled).To(BeEquivalentTo(2))
		})
	})

	Describe("revisionHistoryLimit", func() {
		It("keeps the current revision and at most revisionHistoryLimit old ones after completed rollouts", func() {
			s := newScenario()
			k := s.rolloutKubelet()
			nodes := shortNodeNames(2)
			s.addNodes(2)
			s.createSet("agent", func(set *nasv1alpha1.NodeAgentSet) { set.Spec.RevisionHistoryLimit = ptr.To[int32](1) })
			s.rolledOut(k, nodes, imageV1)
			images := []string{imageV2, imageV3, imageV4}
			hashes := make([]string, 0, len(images))
			for _, image := range images {
				hashes = append(hashes, s.changeTemplate(k, setImage(image)))
				s.rolledOut(k, nodes, image)
				Eventually(s.revisionViews, timeout, interval).Should(HaveLen(2))
			}
			Expect(s.revisionViews()).To(Equal([]revisionView{
				{Name: "agent-" + hashes[1], Hash: hashes[1], Revision: 3},
				{Name: "agent-" + hashes[2], Hash: hashes[2], Revision: 4},
			}))
		})

		It("never deletes a revision that a pod still carries, even beyond the limit", func() {
			s := newScenario()
			k := s.rolloutKubelet()
			s.addNodes(2)
			s.createSet("agent", withStrategy(nasv1alpha1.OnDeleteStrategyType), func(set *nasv1alpha1.NodeAgentSet) {
				set.Spec.RevisionHistoryLimit = ptr.To[int32](1)
			})
			v1 := s.rolledOut(k, shortNodeNames(2), imageV1)
			hash1 := v1["node-1"].Hash

			// node-0 moves to revision 2 and node-1 stays on revision 1; revisions 3 and 4 follow.
			hash2 := s.changeTemplate(k, setImage(imageV2))
			Expect(k8s.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: v1["node-0"].Name}})).To(Succeed())
			k.eventually(func(g Gomega) {
				g.Expect(viewPods(s.agentPods(g))).To(HaveKeyWithValue("node-0", And(HaveField("Hash", hash2), HaveField("Ready", BeTrue()))))
			})
			hash3 := s.changeTemplate(k, setImage(imageV3))
			hash4 := s.changeTemplate(k, setImage(imageV4))

			// Two old revisions against a limit of 1: both carried by a pod, so only revision 3 goes.
			inUse := []revisionView{
				{Name: "agent-" + hash1, Hash: hash1, Revision: 1},
				{Name: "agent-" + hash2, Hash: hash2, Revision: 2},
				{Name: "agent-" + hash4, Hash: hash4, Revision: 4},
			}
			k.eventually(func(g Gomega) { g.Expect(s.revisionViews()).To(Equal(inUse)) })
			k.consistently(2*time.Second, func(g Gomega) { g.Expect(s.revisionViews()).To(Equal(inUse)) })
			Expect(hash3).NotTo(BeElementOf(hash1, hash2, hash4))

			// Once no pod carries revision 1, it goes: the limit is met again. Revision 2 stays, within
			// the limit, after its pod is replaced too.
			kept := []revisionView{
				{Name: "agent-" + hash2, Hash: hash2, Revision: 2},
				{Name: "agent-" + hash4, Hash: hash4, Revision: 4},
			}
			Expect(k8s.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: v1["node-1"].Name}})).To(Succeed())
			k.eventually(func(g Gomega) {
				g.Expect(viewPods(s.agentPods(g))).To(HaveKeyWithValue("node-1", HaveField("Hash", hash4)))
				g.Expect(s.revisionViews()).To(Equal(kept))
			})
			Expect(k8s.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(s.ns))).To(Succeed())
			s.rolledOut(k, shortNodeNames(2), imageV4)
			k.consistently(2*time.Second, func(g Gomega) { g.Expect(s.revisionViews()).To(Equal(kept)) })
		})
	})

	It("with a partition updates only the first nodes by name, and completes when the partition is lowered", func() {
		s := newScenario()
		k := s.rolloutKubelet()
		nodes := shortNodeNames(4)
		s.addNodes(4)
		s.createSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{
				MaxUnavailable: ptr.To(intstr.FromInt32(1)), Partition: ptr.To(intstr.FromInt32(2)),
			}
		})
		before := s.rolledOut(k, nodes, imageV1)

		hash2 := s.changeTemplate(k, setImage(imageV2))
		wantMessage := fmt.Sprintf("2 of 2 eligible nodes run an available pod of revision %s; partition: 2 nodes, from %s on by name, keep their pods",
			hash2, s.nodeName("node-2"))
		check := func(g Gomega) {
			pods := viewPods(s.agentPods(g))
			g.Expect(pods).To(HaveLen(4))
			runningEverywhere(g, map[string]podView{"node-0": pods["node-0"], "node-1": pods["node-1"]}, nodes[:2], hash2, imageV2)
			g.Expect(pods).To(HaveKeyWithValue("node-2", before["node-2"]))
			g.Expect(pods).To(HaveKeyWithValue("node-3", before["node-3"]))
			set := s.getSet("agent")
			g.Expect(set.Status.UpdatedNumberScheduled).To(BeEquivalentTo(2))
			progressing := progressingOf(g, set)
			g.Expect(progressing.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(progressing.Reason).To(Equal(nasv1alpha1.ReasonRolloutComplete))
			g.Expect(progressing.Message).To(Equal(wantMessage))
		}
		k.eventually(check)
		k.consistently(2*time.Second, check)

		s.updateSet(func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To(intstr.FromInt32(0))
		})
		s.rolledOut(k, nodes, imageV2)
		Expect(progressingOf(Default, s.getSet("agent")).Message).To(Equal(
			fmt.Sprintf("4 of 4 eligible nodes run an available pod of revision %s", hash2)))
	})

	It("while paused replaces no pod but gives new nodes the new revision, and completes when resumed", func() {
		s := newScenario()
		k := s.rolloutKubelet()
		s.addNodes(3)
		s.createSet("agent")
		before := s.rolledOut(k, shortNodeNames(3), imageV1)

		s.updateSet(func(set *nasv1alpha1.NodeAgentSet) { set.Spec.UpdateStrategy.RollingUpdate.Paused = true })
		hash2 := s.changeTemplate(k, setImage(imageV2))
		k.consistently(3*time.Second, func(g Gomega) {
			g.Expect(viewPods(s.agentPods(g))).To(Equal(before))
			progressing := progressingOf(g, s.getSet("agent"))
			g.Expect(progressing.Status).To(Equal(metav1.ConditionUnknown))
			g.Expect(progressing.Reason).To(Equal(nasv1alpha1.ReasonRolloutPaused))
			g.Expect(progressing.Message).To(Equal(fmt.Sprintf("0 of 3 eligible nodes run an available pod of revision %s; paused", hash2)))
		})

		s.addNode("node-3")
		k.eventually(func(g Gomega) {
			pods := viewPods(s.agentPods(g))
			g.Expect(pods).To(HaveLen(4))
			g.Expect(pods).To(HaveKeyWithValue("node-3", And(HaveField("Hash", hash2), HaveField("Image", imageV2), HaveField("Ready", BeTrue()))))
			delete(pods, "node-3")
			g.Expect(pods).To(Equal(before))
			g.Expect(progressingOf(g, s.getSet("agent")).Message).To(HavePrefix("1 of 4 eligible nodes"))
		})

		s.updateSet(func(set *nasv1alpha1.NodeAgentSet) { set.Spec.UpdateStrategy.RollingUpdate.Paused = false })
		s.rolledOut(k, shortNodeNames(4), imageV2)
	})

	It("reports ProgressDeadlineExceeded naming the stuck node and why, and progresses again once the template is fixed", func() {
		s := newScenario()
		k := s.rolloutKubelet()
		nodes := shortNodeNames(2)
		s.addNodes(2)
		s.createSet("agent", func(set *nasv1alpha1.NodeAgentSet) { set.Spec.ProgressDeadlineSeconds = ptr.To[int32](5) })
		s.rolledOut(k, nodes, imageV1)

		changedAt := time.Now()
		hashBroken := s.changeTemplate(k, setImage(brokenImage))
		k.eventually(func(g Gomega) {
			progressing := progressingOf(g, s.getSet("agent"))
			g.Expect(progressing.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(progressing.Reason).To(Equal(nasv1alpha1.ReasonProgressDeadlineExceeded))
			g.Expect(progressing.Message).To(HavePrefix("no progress since "))
			g.Expect(progressing.Message).To(HaveSuffix(fmt.Sprintf(
				": 0 of 2 eligible nodes run an available pod of revision %s; stuck: %s (container agent: ImagePullBackOff)",
				hashBroken, s.nodeName("node-0"))))
			// Not before the deadline (the time is kept to the second).
			g.Expect(progressing.LastTransitionTime.Time).To(BeTemporally(">=", changedAt.Add(4*time.Second)))
		})

		s.changeTemplate(k, setImage(imageV2))
		s.rolledOut(k, nodes, imageV2)
	})

	It("restarts nothing when only minReadySeconds or the update strategy change", func() {
		s := newScenario()
		k := s.rolloutKubelet()
		s.addNodes(3)
		s.createSet("agent")
		before := s.rolledOut(k, shortNodeNames(3), imageV1)
		revisions := s.revisionViews()
		hash := s.getSet("agent").Status.UpdateRevision

		for _, change := range []func(*nasv1alpha1.NodeAgentSet){
			func(set *nasv1alpha1.NodeAgentSet) { set.Spec.MinReadySeconds = 1 },
			func(set *nasv1alpha1.NodeAgentSet) {
				set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: ptr.To(intstr.FromString("100%"))}
			},
			withStrategy(nasv1alpha1.OnDeleteStrategyType),
		} {
			s.updateSet(change)
			k.eventually(func(g Gomega) {
				set := s.getSet("agent")
				g.Expect(set.Status.ObservedGeneration).To(Equal(set.Generation))
			})
			k.consistently(2*time.Second, func(g Gomega) {
				g.Expect(viewPods(s.agentPods(g))).To(Equal(before))
				g.Expect(s.revisionViews()).To(Equal(revisions))
				g.Expect(s.getSet("agent").Status.UpdateRevision).To(Equal(hash))
			})
		}
	})
})
