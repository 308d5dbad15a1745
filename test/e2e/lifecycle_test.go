//go:build e2e

package e2e

import (
	"context"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// rolledSet creates a set, rolls it to a second template and waits, so that it owns pods and two
// ControllerRevisions.
func rolledSet(ctx context.Context, ns, name string, nodes []string) *nasv1alpha1.NodeAgentSet {
	set := createSet(ctx, ns, name)
	expectRunningOn(ctx, set, nodes)
	rollToImage2(ctx, set)
	EventuallyWithOffset(1, func(g Gomega) {
		checkRunningOn(ctx, g, set, nodes)
		g.Expect(images(live(setPods(ctx, g, set)))).To(HaveEach(image2))
		g.Expect(setRevisions(ctx, g, set)).To(HaveLen(2))
	}).WithContext(ctx).Should(Succeed())
	return set
}

// dependents lists the pods and ControllerRevisions of the set's selector in its namespace, whoever
// owns them.
func dependents(ctx context.Context, g Gomega, set *nasv1alpha1.NodeAgentSet) ([]corev1.Pod, []appsv1.ControllerRevision) {
	var pods corev1.PodList
	var revs appsv1.ControllerRevisionList
	sel := client.MatchingLabels(set.Spec.Selector.MatchLabels)
	g.ExpectWithOffset(1, k8s.List(ctx, &pods, client.InNamespace(set.Namespace), sel)).To(Succeed())
	g.ExpectWithOffset(1, k8s.List(ctx, &revs, client.InNamespace(set.Namespace), sel)).To(Succeed())
	return pods.Items, revs.Items
}

var _ = Describe("Deleting a NodeAgentSet", func() {
	var ns string
	var nodes []string

	BeforeEach(func(ctx SpecContext) {
		env.waitForGarbageCollector(ctx)
		ns = newNamespace(ctx)
		nodes = workerNodes(ctx)
	})

	It("removes its pods and revisions through the garbage collector", func(ctx SpecContext) {
		set := rolledSet(ctx, ns, "gc", nodes)
		Expect(k8s.Delete(ctx, set)).To(Succeed())
		Eventually(func(g Gomega) {
			pods, revs := dependents(ctx, g, set)
			g.Expect(pods).To(BeEmpty())
			g.Expect(revs).To(BeEmpty())
		}).WithContext(ctx).Should(Succeed())
	})

	It("in the foreground waits for the garbage collector to remove its pods, and the controller lets them go", func(ctx SpecContext) {
		set := rolledSet(ctx, ns, "foreground", nodes)
		Expect(k8s.Delete(ctx, set, client.PropagationPolicy("Foreground"))).To(Succeed())
		expectGone(ctx, set)
		pods, revs := dependents(ctx, Default, set)
		Expect(pods).To(BeEmpty())
		Expect(revs).To(BeEmpty())
	})

	It("with the orphan policy leaves its pods and revisions, without owner", func(ctx SpecContext) {
		set := rolledSet(ctx, ns, "orphan", nodes)
		Expect(k8s.Delete(ctx, set, client.PropagationPolicy("Orphan"))).To(Succeed())
		expectGone(ctx, set)
		check := func(g Gomega) {
			pods, revs := dependents(ctx, g, set)
			g.Expect(live(pods)).To(HaveLen(len(nodes)))
			g.Expect(revs).To(HaveLen(2))
			for _, p := range pods {
				g.Expect(p.OwnerReferences).To(BeEmpty(), "pod %s", p.Name)
			}
			for _, r := range revs {
				g.Expect(r.OwnerReferences).To(BeEmpty(), "revision %s", r.Name)
			}
		}
		Eventually(check).WithContext(ctx).Should(Succeed())
		Consistently(check).WithContext(ctx).Should(Succeed())
	})
})

var _ = Describe("The manifests", func() {
	It("config/default is accepted by the API server (server-side dry run)", func(ctx SpecContext) {
		out := env.kubectl(ctx, "", "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-k", filepath.Join(env.root, "config", "default"))
		Expect(out).To(ContainSubstring("deployment.apps/nodeagentset-controller-manager serverside-applied (server dry run)"))
	})

	It("config/samples run where they should", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		env.kubectl(ctx, "", "apply", "--server-side", "-n", ns, "-k", filepath.Join(env.root, "config", "samples"))
		workers := workerNodes(ctx)
		all := append([]string{"control-plane-1"}, workers...)
		for name, nodes := range map[string][]string{
			"log-collector":       all,                      // tolerates the control plane.
			"gpu-monitor":         {"worker-1", "worker-2"}, // gpu=true.
			"node-agent":          all,                      // tolerates everything.
			"local-metrics-agent": workers,
			"mixed-fleet-agent":   workers,
			"security-agent":      workers, // a canary.
		} {
			By(name)
			var set nasv1alpha1.NodeAgentSet
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &set)).To(Succeed())
			expectRunningOn(ctx, &set, nodes)
		}
	})
})
