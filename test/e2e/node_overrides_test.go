//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
	"github.com/nodeagentset/nodeagentset/internal/plugin"
)

// Images of the override specs: kwok pulls nothing, an image is only a way to tell pods apart.
const (
	gpuImage   = "registry.k8s.io/pause:3.10-cuda"
	gpuImage2  = "registry.k8s.io/pause:3.10-cuda2"
	arm64Image = "registry.k8s.io/pause:3.10-arm64"
)

// mixedFleet is the example of docs/node-overrides.md on the local cluster's nodes: worker-1 and
// worker-2 carry gpu=true, worker-2 and worker-4 are arm64, worker-3 and worker-5 neither.
func mixedFleet(set *nasv1alpha1.NodeAgentSet) {
	set.Spec.NodeOverrides = []nasv1alpha1.NodeOverride{
		{
			Name:         "gpu",
			NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"gpu": "true"}},
			Containers: []nasv1alpha1.ContainerOverride{{
				Name: "agent", Image: gpuImage, Env: []corev1.EnvVar{{Name: "GPU_METRICS", Value: "on"}},
				Resources: &corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("512Mi"),
				}},
			}},
		},
		{
			Name:         "arm64",
			NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelArchStable: "arm64"}},
			Containers:   []nasv1alpha1.ContainerOverride{{Name: "agent", Image: arm64Image}},
		},
		{
			Name: "by-size",
			Containers: []nasv1alpha1.ContainerOverride{{
				Name: "agent",
				ResourcesFromAllocatable: &nasv1alpha1.AllocatableShare{
					Requests: map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: "1%", corev1.ResourceCPU: "0.5%"},
					Min:      map[corev1.ResourceName]nasv1alpha1.QuantityString{corev1.ResourceMemory: "128Mi"},
				},
			}},
		},
	}
}

// runs is what a node's pod should be: override, image, memory request ("0" for none).
type runs struct{ override, image, memory string }

func (r runs) String() string { return fmt.Sprintf("%s/%s/%s", r.override, r.image, r.memory) }

// checkRuns checks that each node runs exactly one available pod, as want says, and returns the pods' UIDs.
func checkRuns(ctx context.Context, g Gomega, set *nasv1alpha1.NodeAgentSet, want map[string]runs) map[string]types.UID {
	pods := byNode(live(setPods(ctx, g, set)))
	uids := map[string]types.UID{}
	got := map[string]string{}
	for node := range want {
		g.Expect(pods[node]).To(HaveLen(1), "pods on %s", node)
		p := pods[node][0]
		g.Expect(isAvailable(&p, 0, time.Now())).To(BeTrue(), "pod %s on %s available", p.Name, node)
		mem := p.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory]
		got[node] = runs{p.Labels[planner.OverrideLabel], p.Spec.Containers[0].Image, mem.String()}.String()
		uids[node] = p.UID
	}
	wantStr := map[string]string{}
	for node, r := range want {
		wantStr[node] = r.String()
	}
	g.Expect(got).To(Equal(wantStr))
	return uids
}

// setAllocatableMemory patches a node's status.allocatable memory; restored after the spec.
func setAllocatableMemory(ctx context.Context, node, memory string) {
	patch := func(ctx context.Context, q resource.Quantity) {
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var n corev1.Node
			if err := k8s.Get(ctx, client.ObjectKey{Name: node}, &n); err != nil {
				return err
			}
			base := n.DeepCopy()
			n.Status.Allocatable[corev1.ResourceMemory] = q
			return k8s.Status().Patch(ctx, &n, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		})).To(Succeed())
	}
	var n corev1.Node
	Expect(k8s.Get(ctx, client.ObjectKey{Name: node}, &n)).To(Succeed())
	orig := n.Status.Allocatable[corev1.ResourceMemory]
	patch(ctx, resource.MustParse(memory))
	DeferCleanup(func(ctx SpecContext) { patch(ctx, orig) })
}

// nas runs `kubectl nas ARGS...` in-process against the cluster.
func nas(ctx context.Context, args ...string) string {
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut}
	code := plugin.Run(ctx, append([]string{"--kubeconfig", env.kubeconfig}, args...), streams)
	ExpectWithOffset(1, code).To(Equal(0), "kubectl nas %v: %s", args, errOut.String())
	return out.String()
}

var _ = Describe("Node overrides", func() {
	It("give each node its override's pod; an edit rolls only its nodes within the budget; relabelling moves a node; undo restores",
		func(ctx SpecContext) {
			ns := newNamespace(ctx)
			nodes := workerNodes(ctx)
			Expect(nodes).To(Equal([]string{"worker-1", "worker-2", "worker-3", "worker-4", "worker-5"}))
			setAllocatableMemory(ctx, "worker-5", "8Gi")
			set := createSet(ctx, ns, "mixed", mixedFleet)

			By("each node runs the pod its override says")
			want := map[string]runs{
				"worker-1": {"gpu", gpuImage, "512Mi"},
				"worker-2": {"gpu", gpuImage, "512Mi"},   // gpu comes before arm64.
				"worker-3": {"by-size", image1, "655Mi"}, // 1% of 64Gi, rounded down to whole Mi.
				"worker-4": {"arm64", arm64Image, "0"},
				"worker-5": {"by-size", image1, "128Mi"}, // 1% of 8Gi is 81Mi: the minimum.
			}
			var before map[string]types.UID
			Eventually(func(g Gomega) {
				before = checkRuns(ctx, g, set, want)
				checkStatus(g, getSet(ctx, g, set), len(nodes))
			}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())
			out := nas(ctx, "-n", ns, "nodes", "mixed")
			Expect(out).To(MatchRegexp(`worker-2\s+yes\s+gpu\s+agent: cpu=200m,memory=512Mi`))
			Expect(out).To(MatchRegexp(`worker-3\s+yes\s+by-size\s+agent: cpu=80m,memory=655Mi`))

			By("editing the gpu override: only worker-1 and worker-2 roll, one at a time")
			updateSet(ctx, set, func(s *nasv1alpha1.NodeAgentSet) { s.Spec.NodeOverrides[0].Containers[0].Image = gpuImage2 })
			want["worker-1"] = runs{"gpu", gpuImage2, "512Mi"}
			want["worker-2"] = runs{"gpu", gpuImage2, "512Mi"}
			Eventually(func(g Gomega) {
				pods := live(setPods(ctx, g, set))
				if bad := unavailableNodes(pods, nodes, 0, time.Now()); len(bad) > 1 {
					StopTrying(fmt.Sprintf("%d nodes without an available pod (%v), maxUnavailable is 1", len(bad), bad)).Now()
				}
				for _, node := range []string{"worker-3", "worker-4", "worker-5"} {
					for _, p := range byNode(pods)[node] {
						if p.UID != before[node] {
							StopTrying(fmt.Sprintf("the pod of %s was replaced by the gpu edit: %s", node, p.Name)).Now()
						}
					}
				}
				checkRuns(ctx, g, set, want)
				cur := getSet(ctx, g, set)
				g.Expect(cur.Status.UpdatedNumberScheduled).To(BeEquivalentTo(len(nodes)))
				g.Expect(cur.Status.CurrentRevision).To(Equal(cur.Status.UpdateRevision))
			}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(fastPoll).Should(Succeed())

			By("relabelling worker-4 gpu=true: it moves from arm64 to gpu")
			updateNode(ctx, "worker-4", func(n *corev1.Node) { n.Labels["gpu"] = "true" })
			DeferCleanup(func(ctx SpecContext) { updateNode(ctx, "worker-4", func(n *corev1.Node) { delete(n.Labels, "gpu") }) })
			want["worker-4"] = runs{"gpu", gpuImage2, "512Mi"}
			Eventually(func(g Gomega) {
				pods := live(setPods(ctx, g, set))
				if bad := unavailableNodes(pods, nodes, 0, time.Now()); len(bad) > 1 {
					StopTrying(fmt.Sprintf("%d nodes without an available pod (%v), maxUnavailable is 1", len(bad), bad)).Now()
				}
				checkRuns(ctx, g, set, want)
			}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(fastPoll).Should(Succeed())
			Expect(nas(ctx, "-n", ns, "why", "mixed", "worker-4")).To(ContainSubstring("Node override gpu applies"))

			By("rollout undo: the gpu nodes go back to the first gpu image, the others keep their pods")
			kept := checkRuns(ctx, Default, set, want)
			Expect(nas(ctx, "-n", ns, "rollout", "undo", "mixed")).To(ContainSubstring("rolled back"))
			Expect(getSet(ctx, Default, set).Spec.NodeOverrides[0].Containers[0].Image).To(Equal(gpuImage))
			for _, node := range []string{"worker-1", "worker-2", "worker-4"} {
				want[node] = runs{"gpu", gpuImage, "512Mi"}
			}
			Eventually(func(g Gomega) {
				pods := live(setPods(ctx, g, set))
				if bad := unavailableNodes(pods, nodes, 0, time.Now()); len(bad) > 1 {
					StopTrying(fmt.Sprintf("%d nodes without an available pod (%v), maxUnavailable is 1", len(bad), bad)).Now()
				}
				uids := checkRuns(ctx, g, set, want)
				g.Expect(uids["worker-3"]).To(Equal(kept["worker-3"]))
				g.Expect(uids["worker-5"]).To(Equal(kept["worker-5"]))
				g.Expect(getSet(ctx, g, set).Status.UpdatedNumberScheduled).To(BeEquivalentTo(len(nodes)))
			}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(fastPoll).Should(Succeed())
		})
})
