//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// gitOpsManager is the field manager of the specs' server-side applies: a GitOps tool.
const gitOpsManager = "e2e-gitops"

var (
	pluginOnce   sync.Once
	pluginBinary string
)

// kubectlNAS runs the kubectl-nas binary (built once) against the cluster.
func kubectlNAS(ctx context.Context, args ...string) (string, error) {
	pluginOnce.Do(func() {
		pluginBinary = filepath.Join(env.stateDir, "kubectl-nas")
		env.run(ctx, "", getenv("GO", "go"), "build", "-o", pluginBinary, "./cmd/kubectl-nas")
	})
	return env.tryRun(ctx, "", nil, pluginBinary, append([]string{"--kubeconfig", env.kubeconfig}, args...)...)
}

// killManager kills the controller (SIGKILL: no shutdown, its lease runs out) and waits for it to exit.
func killManager() {
	env.mu.Lock()
	p := env.manager
	env.mu.Unlock()
	Expect(p.cmd.Process.Kill()).To(Succeed())
	<-p.done
}

// withCanary is a RollingUpdate with a one-node canary.
func withCanary(c nasv1alpha1.CanaryStrategy) setOpt {
	one := intstr.FromInt32(1)
	c.Nodes = &one
	return withStrategy(nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.RollingUpdateStrategyType,
		RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: &one, Canary: &c}})
}

// applySet server-side applies the set's manifest as a GitOps tool would: the same manifest every
// time, with no status and no annotations of its own.
func applySet(ctx context.Context, set *nasv1alpha1.NodeAgentSet) {
	manifest := set.DeepCopy()
	manifest.TypeMeta = metav1.TypeMeta{APIVersion: nasv1alpha1.GroupVersion.String(), Kind: "NodeAgentSet"}
	manifest.ResourceVersion, manifest.UID, manifest.Status = "", "", nasv1alpha1.NodeAgentSetStatus{}
	raw, err := json.Marshal(manifest)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	env.kubectl(ctx, string(raw), "apply", "--server-side", "--field-manager", gitOpsManager, "-f", "-")
	// The helpers find the set's pods by its UID.
	var cur nasv1alpha1.NodeAgentSet
	ExpectWithOffset(1, k8s.Get(ctx, client.ObjectKeyFromObject(set), &cur)).To(Succeed())
	set.UID = cur.UID
}

// canaryInvariant watches the pods of a namespace and, on every event, checks that no node outside
// the canary runs the revision under test while the canary has not succeeded. A violation must
// still hold a moment later (the controller may have decided the canary passed in the pass that
// created the pod, and written status just after).
type canaryInvariant struct {
	mu         sync.Mutex
	violations []string
	events     int
}

func watchCanaryInvariant(ctx context.Context, set *nasv1alpha1.NodeAgentSet) *canaryInvariant {
	inv := &canaryInvariant{}
	w, err := k8s.Watch(ctx, &corev1.PodList{}, client.InNamespace(set.Namespace))
	Expect(err).NotTo(HaveOccurred())
	wctx, cancel := context.WithCancel(ctx)
	DeferCleanup(func() {
		cancel()
		w.Stop()
	})
	go func() {
		defer GinkgoRecover()
		for {
			select {
			case <-wctx.Done():
				return
			case e, ok := <-w.ResultChan():
				if !ok {
					return
				}
				if e.Type == watch.Error {
					continue
				}
				if v := inv.check(wctx, set); v != "" {
					time.Sleep(2 * time.Second)
					if v = inv.check(wctx, set); v != "" {
						inv.mu.Lock()
						inv.violations = append(inv.violations, v)
						inv.mu.Unlock()
					}
				}
				inv.mu.Lock()
				inv.events++
				inv.mu.Unlock()
			}
		}
	}()
	return inv
}

// check returns the violation in the world as it is now, or "".
func (inv *canaryInvariant) check(ctx context.Context, set *nasv1alpha1.NodeAgentSet) string {
	var cur nasv1alpha1.NodeAgentSet
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(set), &cur); err != nil {
		return ""
	}
	st := cur.Status.Canary
	if st == nil || st.Phase == nasv1alpha1.CanarySucceeded {
		return ""
	}
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(set.Namespace)); err != nil {
		return ""
	}
	for _, p := range live(pods.Items) {
		if p.Labels[hashLabel] == st.Revision && !slices.Contains(st.Nodes, targetNode(&p)) {
			return fmt.Sprintf("phase %s: pod %s on %s runs revision %s outside the canary %v", st.Phase, p.Name, targetNode(&p),
				st.Revision, st.Nodes)
		}
	}
	return ""
}

func (inv *canaryInvariant) expectHeld() {
	GinkgoHelper()
	inv.mu.Lock()
	defer inv.mu.Unlock()
	Expect(inv.violations).To(BeEmpty())
	Expect(inv.events).To(BeNumerically(">", 0), "the invariant saw no pod event")
}

// restartCanaryPod restarts the container of the canary pod once, as the kubelet reports it (kwok
// reports no restarts of its own).
func restartCanaryPod(ctx context.Context, set *nasv1alpha1.NodeAgentSet, st *nasv1alpha1.CanaryStatus) {
	GinkgoHelper()
	By("restarting the canary pod's container, as the kubelet reports it")
	Eventually(func(g Gomega) {
		pods := byNode(live(setPods(ctx, g, set)))[st.Nodes[0]]
		g.Expect(pods).To(HaveLen(1))
		pod := pods[0]
		g.Expect(pod.Labels[hashLabel]).To(Equal(st.Revision))
		g.Expect(pod.Status.ContainerStatuses).NotTo(BeEmpty())
		patch := client.MergeFrom(pod.DeepCopy())
		pod.Status.ContainerStatuses[0].RestartCount++
		g.Expect(k8s.Status().Patch(ctx, &pod, patch)).To(Succeed())
	}).WithContext(ctx).Should(Succeed())
}

// imagesByNode maps every node with a live pod of the set to its pod's image.
func imagesByNode(ctx context.Context, g Gomega, set *nasv1alpha1.NodeAgentSet) map[string]string {
	out := map[string]string{}
	for node, pods := range byNode(live(setPods(ctx, g, set))) {
		g.Expect(pods).To(HaveLen(1), "pods on %s", node)
		out[node] = pods[0].Spec.Containers[0].Image
	}
	return out
}

// everyNodeRuns asserts that each worker runs one available pod of image.
func everyNodeRuns(ctx context.Context, g Gomega, set *nasv1alpha1.NodeAgentSet, nodes []string, image string) {
	checkRunningOn(ctx, g, set, nodes)
	for _, n := range nodes {
		g.Expect(imagesByNode(ctx, g, set)).To(HaveKeyWithValue(n, image))
	}
}

// canaryStatus waits for the set's canary of its current template to reach phase, and returns it.
func canaryStatus(ctx context.Context, set *nasv1alpha1.NodeAgentSet, phase nasv1alpha1.CanaryPhase) *nasv1alpha1.CanaryStatus {
	GinkgoHelper()
	var st *nasv1alpha1.CanaryStatus
	Eventually(func(g Gomega) {
		cur := getSet(ctx, g, set)
		g.Expect(cur.Status.ObservedGeneration).To(BeNumerically(">=", cur.Generation))
		g.Expect(cur.Status.Canary).NotTo(BeNil())
		g.Expect(cur.Status.Canary.Revision).To(Equal(cur.Status.UpdateRevision))
		g.Expect(cur.Status.Canary.Phase).To(Equal(phase), "canary: %s", cur.Status.Canary.Message)
		st = cur.Status.Canary
	}).WithContext(ctx).Should(Succeed())
	return st
}

var _ = Describe("A canary rollout", func() {
	var (
		ns    string
		nodes []string
	)
	BeforeEach(func(ctx SpecContext) {
		ns = newNamespace(ctx)
		nodes = workerNodes(ctx)
	})

	It("passes a good image after its duration and rolls out; a re-apply changes nothing; a controller restart mid-watch resumes",
		func(ctx SpecContext) {
			set := newSet(ns, "canary-good", withCanary(nasv1alpha1.CanaryStrategy{Duration: &metav1.Duration{Duration: 20 * time.Second}}))
			applySet(ctx, set)
			Eventually(func(g Gomega) { everyNodeRuns(ctx, g, set, nodes, image1) }).WithContext(ctx).Should(Succeed())
			canaryStatus(ctx, set, nasv1alpha1.CanarySucceeded)
			inv := watchCanaryInvariant(ctx, set)

			set.Spec.Template.Spec.Containers[0].Image = image2
			applySet(ctx, set)
			watching := canaryStatus(ctx, set, nasv1alpha1.CanaryWatching)
			Expect(watching.Nodes).To(Equal(nodes[:1]), "the first node by name")
			Expect(imagesByNode(ctx, Default, set)).To(Equal(map[string]string{nodes[0]: image2, nodes[1]: image1, nodes[2]: image1,
				nodes[3]: image1, nodes[4]: image1}))

			By("re-applying the same manifest mid-watch")
			generation := getSet(ctx, Default, set).Generation
			applySet(ctx, set)
			cur := getSet(ctx, Default, set)
			Expect(cur.Generation).To(Equal(generation))
			Expect(cur.Status.Canary.WatchStartedAt).To(Equal(watching.WatchStartedAt))

			By("killing the controller mid-watch and starting it again after the watch would have ended")
			killManager()
			time.Sleep(time.Until(watching.WatchStartedAt.Add(22 * time.Second)))
			Expect(imagesByNode(ctx, Default, set)).To(HaveKeyWithValue(nodes[1], image1))
			env.startManager(ctx)
			restartedAt := time.Now()
			succeeded := canaryStatus(ctx, set, nasv1alpha1.CanarySucceeded)
			Expect(succeeded.WatchStartedAt).To(Equal(watching.WatchStartedAt), "the watch resumed from status")
			Expect(time.Since(restartedAt)).To(BeNumerically("<", 10*time.Second), "the watch did not start over")
			Eventually(func(g Gomega) { everyNodeRuns(ctx, g, set, nodes, image2) }).WithContext(ctx).Should(Succeed())
			Eventually(func(g Gomega) {
				progressing := getSet(ctx, g, set).Status.Conditions
				g.Expect(progressing).To(ContainElement(And(HaveField("Type", nasv1alpha1.ConditionProgressing),
					HaveField("Reason", nasv1alpha1.ReasonRolloutComplete))))
			}).WithContext(ctx).Should(Succeed())

			By("re-applying the same manifest after the rollout")
			before := getSet(ctx, Default, set)
			podsBefore := podNames(live(setPods(ctx, Default, set)))
			applySet(ctx, set)
			Consistently(func(g Gomega) {
				cur := getSet(ctx, g, set)
				g.Expect(cur.Generation).To(Equal(before.Generation))
				g.Expect(cur.Status.Canary).To(Equal(before.Status.Canary))
				g.Expect(podNames(live(setPods(ctx, g, set)))).To(Equal(podsBefore))
			}).WithContext(ctx).Should(Succeed())
			inv.expectHeld()
		})

	It("fails on canary pod restarts, goes no further, and with Rollback restores the canary node", func(ctx SpecContext) {
		set := createSet(ctx, ns, "canary-bad", withCanary(nasv1alpha1.CanaryStrategy{
			Duration: &metav1.Duration{Duration: time.Minute}, OnFailure: nasv1alpha1.CanaryFailureRollback}))
		Eventually(func(g Gomega) { everyNodeRuns(ctx, g, set, nodes, image1) }).WithContext(ctx).Should(Succeed())
		stable := updateRevision(ctx, set)
		inv := watchCanaryInvariant(ctx, set)
		rollToImage2(ctx, set)
		watching := canaryStatus(ctx, set, nasv1alpha1.CanaryWatching)

		restartCanaryPod(ctx, set, watching)
		failed := canaryStatus(ctx, set, nasv1alpha1.CanaryFailed)
		Expect(failed.Reason).To(Equal(nasv1alpha1.CanaryTooManyRestarts))

		Eventually(func(g Gomega) {
			everyNodeRuns(ctx, g, set, nodes, image1)
			g.Expect(hashes(live(setPods(ctx, g, set)))).To(Equal(map[string]int{stable: len(nodes)}))
		}).WithContext(ctx).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(hashes(live(setPods(ctx, g, set)))).To(Equal(map[string]int{stable: len(nodes)}))
			g.Expect(getSet(ctx, g, set).Status.Canary.Phase).To(Equal(nasv1alpha1.CanaryFailed))
		}).WithContext(ctx).Should(Succeed())

		out, err := kubectlNAS(ctx, "rollout", "status", set.Name, "-n", ns, "--watch=false")
		Expect(err).To(HaveOccurred(), "rollout status must fail on a failed canary: %s", out)
		Expect(err.Error()).To(ContainSubstring("canary failed"))
		inv.expectHeld()
	})

	It("fails on restarts and, with Pause, goes no further, the canary node keeping the new pod; abort restores it", func(ctx SpecContext) {
		set := createSet(ctx, ns, "canary-pause", withCanary(nasv1alpha1.CanaryStrategy{Duration: &metav1.Duration{Duration: time.Minute}}))
		Eventually(func(g Gomega) { everyNodeRuns(ctx, g, set, nodes, image1) }).WithContext(ctx).Should(Succeed())
		inv := watchCanaryInvariant(ctx, set)
		rollToImage2(ctx, set)
		watching := canaryStatus(ctx, set, nasv1alpha1.CanaryWatching)
		restartCanaryPod(ctx, set, watching)
		failed := canaryStatus(ctx, set, nasv1alpha1.CanaryFailed)
		Expect(failed.Reason).To(Equal(nasv1alpha1.CanaryTooManyRestarts))
		wantImages := map[string]string{}
		for _, n := range nodes {
			wantImages[n] = image1
		}
		wantImages[watching.Nodes[0]] = image2
		Consistently(func(g Gomega) {
			g.Expect(imagesByNode(ctx, g, set)).To(Equal(wantImages))
			g.Expect(getSet(ctx, g, set).Status.Canary.Phase).To(Equal(nasv1alpha1.CanaryFailed))
		}).WithContext(ctx).Should(Succeed())

		out, err := kubectlNAS(ctx, "rollout", "abort", set.Name, "-n", ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("canary of revision " + watching.Revision + " aborted"))
		canaryStatus(ctx, set, nasv1alpha1.CanaryAborted)
		Eventually(func(g Gomega) { everyNodeRuns(ctx, g, set, nodes, image1) }).WithContext(ctx).Should(Succeed())
		inv.expectHeld()
	})

	It("waits for kubectl nas rollout promote when autoPromote is false", func(ctx SpecContext) {
		set := createSet(ctx, ns, "canary-promote", withCanary(nasv1alpha1.CanaryStrategy{
			Duration: &metav1.Duration{Duration: 3 * time.Second}, AutoPromote: ptr.To(false)}))
		Eventually(func(g Gomega) { everyNodeRuns(ctx, g, set, nodes, image1) }).WithContext(ctx).Should(Succeed())
		inv := watchCanaryInvariant(ctx, set)
		rollToImage2(ctx, set)
		waiting := canaryStatus(ctx, set, nasv1alpha1.CanaryWaitingForPromotion)
		Consistently(func(g Gomega) {
			images := imagesByNode(ctx, g, set)
			g.Expect(images).To(HaveKeyWithValue(waiting.Nodes[0], image2))
			for _, n := range nodes[1:] {
				g.Expect(images).To(HaveKeyWithValue(n, image1))
			}
		}).WithContext(ctx).Should(Succeed())

		out, err := kubectlNAS(ctx, "rollout", "promote", set.Name, "-n", ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("canary of revision " + waiting.Revision + " promoted"))
		Eventually(func(g Gomega) { everyNodeRuns(ctx, g, set, nodes, image2) }).WithContext(ctx).Should(Succeed())
		st := canaryStatus(ctx, set, nasv1alpha1.CanarySucceeded)
		Expect(st.Decision).To(HavePrefix("promote:" + waiting.Revision + ":"))
		Expect(getSet(ctx, Default, set).Spec.UpdateStrategy.RollingUpdate.Canary.AutoPromote).To(Equal(ptr.To(false)),
			"the spec is never written")
		inv.expectHeld()
	})
})
