//go:build e2e

package e2e

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// The scenarios of upstream's test/e2e/apps/daemon_set.go (docs: ../shared/reference/upstream-daemonset.md
// section 3.5), against the real scheduler, garbage collector and node lifecycle controller.
var _ = Describe("NodeAgentSet, upstream DaemonSet e2e scenarios", func() {
	var ns string
	var nodes []string

	BeforeEach(func(ctx SpecContext) {
		ns = newNamespace(ctx)
		nodes = workerNodes(ctx)
	})

	It("runs a pod on every eligible node and replaces a deleted one", func(ctx SpecContext) {
		set := createSet(ctx, ns, "simple")
		expectRunningOn(ctx, set, nodes)

		By("deleting one pod")
		victim := live(setPods(ctx, Default, set))[0]
		Expect(k8s.Delete(ctx, &victim)).To(Succeed())
		Eventually(func(g Gomega) {
			checkRunningOn(ctx, g, set, nodes)
			onNode := byNode(live(setPods(ctx, g, set)))[targetNode(&victim)]
			g.Expect(onNode[0].UID).NotTo(Equal(victim.UID), "the deleted pod is still the one on %s", targetNode(&victim))
		}).WithContext(ctx).Should(Succeed())
	})

	It("follows a nodeSelector as nodes are labelled in and out of scope", func(ctx SpecContext) {
		set := createSet(ctx, ns, "complex", withNodeSelector(colorLabel, "blue"))
		By("no node is blue: no pod")
		expectRunningOn(ctx, set, nil)
		Consistently(func(g Gomega) { g.Expect(setPods(ctx, g, set)).To(BeEmpty()) }).WithContext(ctx).Should(Succeed())

		node := nodes[1]
		By("labelling " + node + " blue")
		colorNode(ctx, node, "blue")
		expectRunningOn(ctx, set, []string{node})

		By("relabelling it green: the pod goes")
		colorNode(ctx, node, "green")
		expectRunningOn(ctx, set, nil)

		By("selecting green in the template (and RollingUpdate) in one update: the pod comes back")
		updateSet(ctx, set, func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.Template.Spec.NodeSelector = map[string]string{colorLabel: "green"}
			s.Spec.UpdateStrategy = nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.RollingUpdateStrategyType}
		})
		expectRunningOn(ctx, set, []string{node})
	})

	It("follows required node affinity, replaced in the pod by one matchFields term", func(ctx SpecContext) {
		set := createSet(ctx, ns, "affinity", func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: colorLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{"blue"}}},
				}}},
			}}
		})
		expectRunningOn(ctx, set, nil)

		node := nodes[2]
		By("labelling " + node + " blue")
		colorNode(ctx, node, "blue")
		expectRunningOn(ctx, set, []string{node})
		pod := live(setPods(ctx, Default, set))[0]
		Expect(pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms).To(Equal([]corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}))

		By("removing the label: the pod goes")
		colorNode(ctx, node, "")
		expectRunningOn(ctx, set, nil)
	})

	It("deletes a failed pod and replaces it", func(ctx SpecContext) {
		set := createSet(ctx, ns, "failed")
		expectRunningOn(ctx, set, nodes)

		victim := live(setPods(ctx, Default, set))[0]
		By("setting pod " + victim.Name + " Failed through the status subresource")
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var p corev1.Pod
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(&victim), &p); err != nil {
				return err
			}
			p.Status.Phase = corev1.PodFailed
			return k8s.Status().Update(ctx, &p)
		})).To(Succeed())

		expectGone(ctx, &victim)
		expectRunningOn(ctx, set, nodes)
	})

	It("does not touch pods on a template change with OnDelete, replaces a deleted one with the new template", func(ctx SpecContext) {
		set := createSet(ctx, ns, "ondelete", withStrategy(nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.OnDeleteStrategyType}))
		expectRunningOn(ctx, set, nodes)
		rev1 := updateRevision(ctx, set)
		revs := setRevisions(ctx, Default, set)
		Expect(revs).To(HaveLen(1))
		Expect(revs[0].Revision).To(BeEquivalentTo(1))
		Expect(revs[0].Labels).To(HaveKeyWithValue(hashLabel, rev1))
		Expect(hashes(setPods(ctx, Default, set))).To(Equal(map[string]int{rev1: len(nodes)}))

		By("changing the image")
		rollToImage2(ctx, set)
		var rev2 string
		Eventually(func(g Gomega) {
			cur := getSet(ctx, g, set)
			g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
			rev2 = cur.Status.UpdateRevision
			g.Expect(rev2).NotTo(Equal(rev1))
			revs := setRevisions(ctx, g, set)
			g.Expect(revs).To(HaveLen(2))
			g.Expect(revs[1].Revision).To(BeEquivalentTo(2))
			g.Expect(revs[1].Labels).To(HaveKeyWithValue(hashLabel, rev2))
		}).WithContext(ctx).Should(Succeed())
		Consistently(func(g Gomega) {
			checkRunningOn(ctx, g, set, nodes)
			pods := setPods(ctx, g, set)
			g.Expect(hashes(pods)).To(Equal(map[string]int{rev1: len(nodes)}))
			g.Expect(images(pods)).To(HaveEach(image1))
		}).WithContext(ctx).Should(Succeed())

		By("deleting one pod: its replacement has the new template")
		victim := live(setPods(ctx, Default, set))[0]
		Expect(k8s.Delete(ctx, &victim)).To(Succeed())
		Eventually(func(g Gomega) {
			checkRunningOn(ctx, g, set, nodes)
			pods := setPods(ctx, g, set)
			g.Expect(hashes(pods)).To(Equal(map[string]int{rev1: len(nodes) - 1, rev2: 1}))
			g.Expect(byNode(pods)[targetNode(&victim)][0].Spec.Containers[0].Image).To(Equal(image2))
		}).WithContext(ctx).Should(Succeed())
	})

	It("rolls out a new template with at most maxUnavailable nodes unavailable at every poll", func(ctx SpecContext) {
		const minReady = 2
		set := createSet(ctx, ns, "rolling", withMinReadySeconds(minReady))
		expectRunningOn(ctx, set, nodes)
		rev1 := updateRevision(ctx, set)
		Expect(setRevisions(ctx, Default, set)).To(HaveLen(1))
		Expect(hashes(setPods(ctx, Default, set))).To(Equal(map[string]int{rev1: len(nodes)}))

		By("changing the image; default budget maxUnavailable 1")
		before := getSet(ctx, Default, set).ResourceVersion
		rollToImage2(ctx, set)
		Expect(getSet(ctx, Default, set).ResourceVersion).NotTo(Equal(before))
		maxSeen := 0
		Eventually(func(g Gomega) {
			pods := setPods(ctx, g, set)
			bad := unavailableNodes(pods, nodes, minReady, time.Now())
			maxSeen = max(maxSeen, len(bad))
			if len(bad) > 1 {
				StopTrying(fmt.Sprintf("%d nodes without an available pod (%v), maxUnavailable is 1:\n%s", len(bad), bad, describePods(pods, minReady))).Now()
			}
			g.Expect(images(live(pods))).To(HaveEach(image2))
			checkRunningOn(ctx, g, set, nodes)
		}).WithContext(ctx).WithPolling(fastPoll).WithTimeout(3 * time.Minute).Should(Succeed())
		Expect(maxSeen).To(Equal(1), "the rollout never made a node unavailable: did it roll at all?")

		cur := getSet(ctx, Default, set)
		revs := setRevisions(ctx, Default, set)
		Expect(revs).To(HaveLen(2))
		Expect(revs[1].Revision).To(BeEquivalentTo(2))
		Expect(revs[1].Labels).To(HaveKeyWithValue(hashLabel, cur.Status.UpdateRevision))
		Expect(hashes(setPods(ctx, Default, set))).To(Equal(map[string]int{cur.Status.UpdateRevision: len(nodes)}))
		// The last pod's minReadySeconds may have passed by the test's clock a moment before the
		// controller's requeued pass writes it into the status.
		Eventually(func(g Gomega) {
			st := getSet(ctx, g, set).Status
			g.Expect(st.UpdatedNumberScheduled).To(BeEquivalentTo(len(nodes)))
			g.Expect(st.NumberAvailable).To(BeEquivalentTo(len(nodes)))
		}).WithContext(ctx).WithPolling(fastPoll).WithTimeout(30 * time.Second).Should(Succeed())
	})

	It("rolls back without restarting the pods that never left the old template", func(ctx SpecContext) {
		set := createSet(ctx, ns, "rollback")
		expectRunningOn(ctx, set, nodes)
		rev1 := updateRevision(ctx, set)
		original := getSet(ctx, Default, set).Spec.Template.Spec.Containers[0]

		// kwok makes every bound pod Ready whatever its image, so the "broken" template is one the
		// scheduler cannot place (a non-existent image that also asks for more CPU than a node has):
		// its pod stays Pending and unavailable, and the rollout stops at the first node.
		By("rolling to a template whose pods never become available")
		updateSet(ctx, set, func(s *nasv1alpha1.NodeAgentSet) {
			c := &s.Spec.Template.Spec.Containers[0]
			c.Image = "registry.k8s.io/pause:non-existent"
			c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000")}
		})
		var oldPods []corev1.Pod
		Eventually(func(g Gomega) {
			pods := live(setPods(ctx, g, set))
			h := hashes(pods)
			g.Expect(h).To(HaveLen(2), "pods of both revisions:\n%s", describePods(pods, 0))
			g.Expect(h[rev1]).To(Equal(len(nodes)-1), "old pods")
			oldPods = nil
			for _, p := range pods {
				if p.Labels[hashLabel] == rev1 {
					oldPods = append(oldPods, p)
				}
			}
		}).WithContext(ctx).Should(Succeed())
		By("the budget holds the rollout at one node")
		Consistently(func(g Gomega) {
			g.Expect(hashes(live(setPods(ctx, g, set)))[rev1]).To(Equal(len(nodes) - 1))
		}).WithContext(ctx).Should(Succeed())

		By("rolling back to the original template")
		updateSet(ctx, set, func(s *nasv1alpha1.NodeAgentSet) { s.Spec.Template.Spec.Containers[0] = original })
		Eventually(func(g Gomega) {
			pods := setPods(ctx, g, set)
			if bad := unavailableNodes(pods, nodes, 0, time.Now()); len(bad) > 1 {
				StopTrying(fmt.Sprintf("%d nodes without an available pod (%v), maxUnavailable is 1:\n%s", len(bad), bad, describePods(pods, 0))).Now()
			}
			checkRunningOn(ctx, g, set, nodes)
			g.Expect(images(live(pods))).To(HaveEach(image1))
		}).WithContext(ctx).WithPolling(fastPoll).Should(Succeed())

		By("every old pod present mid-rollout still runs (not restarted)")
		for _, p := range oldPods {
			var cur corev1.Pod
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(&p), &cur)).To(Succeed(), "pod %s was replaced", p.Name)
			Expect(cur.UID).To(Equal(p.UID))
			Expect(cur.DeletionTimestamp).To(BeNil())
		}
		By("the rollback reuses the first revision, renumbered")
		cur := getSet(ctx, Default, set)
		Expect(cur.Status.UpdateRevision).To(Equal(rev1))
		revs := setRevisions(ctx, Default, set)
		Expect(revs).To(HaveLen(2))
		Expect(revs[1].Labels).To(HaveKeyWithValue(hashLabel, rev1))
		Expect(revs[1].Revision).To(BeEquivalentTo(3))
	})

	It("surges (maxSurge 1, maxUnavailable 0) within its invariants at every poll", func(ctx SpecContext) {
		const minReady = 2
		set := createSet(ctx, ns, "surge", withMinReadySeconds(minReady),
			withStrategy(nasv1alpha1.NodeAgentSetUpdateStrategy{
				Type: nasv1alpha1.RollingUpdateStrategyType,
				RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromInt32(1)),
				},
			}),
			func(s *nasv1alpha1.NodeAgentSet) {
				s.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "VERSION", Value: "1"}}
			})
		expectRunningOn(ctx, set, nodes)
		rev1 := updateRevision(ctx, set)

		By("changing env VERSION 1 -> 2")
		updateSet(ctx, set, func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "VERSION", Value: "2"}}
		})
		maxPerNode := 0
		Eventually(func(g Gomega) {
			pods := setPods(ctx, g, set)
			now := time.Now()
			fail := func(format string, args ...any) {
				StopTrying(fmt.Sprintf(format, args...) + "\n" + describePods(pods, minReady)).Now()
			}
			if h := hashes(pods); len(h) > 2 {
				fail("%d revisions at once: %v", len(h), h)
			}
			surging := 0
			for node, onNode := range byNode(pods) {
				maxPerNode = max(maxPerNode, len(onNode))
				if len(onNode) > 2 {
					fail("%d pods on node %s", len(onNode), node)
				}
				var oldLive, newUnavailable bool
				for _, p := range live(onNode) {
					if p.Labels[hashLabel] == rev1 {
						oldLive = true
					} else if !isAvailable(&p, minReady, now) {
						newUnavailable = true
					}
				}
				if oldLive && newUnavailable {
					surging++
				}
			}
			if surging > 1 {
				fail("%d nodes run an unavailable new pod beside an old one, maxSurge is 1", surging)
			}
			if bad := unavailableNodes(pods, nodes, minReady, now); len(bad) > 0 {
				fail("nodes without an available pod %v, maxUnavailable is 0", bad)
			}
			g.Expect(hashes(live(pods))).NotTo(HaveKey(rev1))
			checkRunningOn(ctx, g, set, nodes)
		}).WithContext(ctx).WithPolling(fastPoll).WithTimeout(3 * time.Minute).Should(Succeed())
		Expect(maxPerNode).To(Equal(2), "no node ever ran two pods: did it surge?")

		cur := getSet(ctx, Default, set)
		revs := setRevisions(ctx, Default, set)
		Expect(revs).To(HaveLen(2))
		Expect(revs[1].Revision).To(BeEquivalentTo(2))
		Expect(hashes(setPods(ctx, Default, set))).To(Equal(map[string]int{cur.Status.UpdateRevision: len(nodes)}))
	})

	It("lists and deletes a collection of sets by label", func(ctx SpecContext) {
		label := "e2e.nodeagentset.io/collection"
		set := createSet(ctx, ns, "collection", withSetLabel(label, ns))
		expectRunningOn(ctx, set, nodes)

		var list nasv1alpha1.NodeAgentSetList
		Expect(k8s.List(ctx, &list, client.MatchingLabels{label: ns})).To(Succeed())
		Expect(list.Items).To(HaveLen(1))

		Expect(k8s.DeleteAllOf(ctx, &nasv1alpha1.NodeAgentSet{}, client.InNamespace(ns), client.MatchingLabels{label: ns},
			client.GracePeriodSeconds(1))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.List(ctx, &list, client.MatchingLabels{label: ns})).To(Succeed())
			g.Expect(list.Items).To(BeEmpty())
		}).WithContext(ctx).Should(Succeed())
		Eventually(func(g Gomega) { g.Expect(setPods(ctx, g, set)).To(BeEmpty()) }).WithContext(ctx).Should(Succeed())
	})

	It("keeps conditions that someone else writes to /status", func(ctx SpecContext) {
		set := createSet(ctx, ns, "conditions")
		expectRunningOn(ctx, set, nodes)

		By("updating /status with a StatusUpdate condition")
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur := getSet(ctx, Default, set)
			cur.Status.Conditions = append(cur.Status.Conditions, metav1.Condition{
				Type: "StatusUpdate", Status: metav1.ConditionTrue, Reason: "E2E", Message: "Set from e2e test",
				LastTransitionTime: metav1.Now(),
			})
			return k8s.Status().Update(ctx, cur)
		})).To(Succeed())
		keeps := func(types ...string) {
			GinkgoHelper()
			check := func(g Gomega) {
				conds := getSet(ctx, g, set).Status.Conditions
				for _, t := range types {
					g.Expect(hasCondition(conds, t)).To(BeTrue(), "condition %s in %v", t, conds)
				}
			}
			Eventually(check).WithContext(ctx).Should(Succeed())
			Consistently(check).WithContext(ctx).Should(Succeed())
		}
		keeps("StatusUpdate")

		By("merge-patching /status with a StatusPatched condition")
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur := getSet(ctx, Default, set)
			base := cur.DeepCopy()
			cur.Status.Conditions = append(cur.Status.Conditions, metav1.Condition{
				Type: "StatusPatched", Status: metav1.ConditionTrue, Reason: "E2E", Message: "Patched from e2e test",
				LastTransitionTime: metav1.Now(),
			})
			return k8s.Status().Patch(ctx, cur, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		})).To(Succeed())
		keeps("StatusUpdate", "StatusPatched")

		By("rolling out a new template: the controller rewrites its status, the two conditions stay")
		rollToImage2(ctx, set)
		Eventually(func(g Gomega) {
			g.Expect(images(live(setPods(ctx, g, set)))).To(HaveEach(image2))
			checkRunningOn(ctx, g, set, nodes)
		}).WithContext(ctx).Should(Succeed())
		keeps("StatusUpdate", "StatusPatched", nasv1alpha1.ConditionAvailable)
	})
})
