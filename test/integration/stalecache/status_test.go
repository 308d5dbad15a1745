package stalecache

import (
	"context"
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/controller/nodeagentset"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// canaryNodeLabel marks (and taints) the nodes of the canary specs, so that the sets of the other
// specs, which tolerate nothing, never count them. Its value is the spec's namespace.
const canaryNodeLabel = "stale-canary"

var _ = Describe("A reconcile right after the one that wrote the set's status", func() {
	// A manager of its own whose NodeAgentSet watch receives events late: a pass that starts the
	// moment the previous one wrote status finds the cache still holding the status before it.
	var m ctrl.Manager
	BeforeEach(func() {
		slow := rest.CopyConfig(cfg)
		slow.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return slowWatches{next: rt, resource: "/nodeagentsets", delay: fixedDelay(watchDelay)}
		}
		var err error
		m, err = ctrl.NewManager(slow, nodeagentset.ManagerOptions(nodeagentset.Config{}))
		Expect(err).NotTo(HaveOccurred())
		Expect(nodeagentset.SetupIndexes(ctx, m.GetCache())).To(Succeed())
		mctx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go func() {
			defer GinkgoRecover()
			Expect(m.Start(mctx)).To(Succeed())
		}()
	})

	It("reads that status: a canary that failed stays failed, even when the set's watch lags", func() {
		failedCanaryStaysFailed(m, m.GetClient(), "stale-status", func(set *nasv1alpha1.NodeAgentSet) {
			// The read-your-writes client waits for the status write the pass just made.
			var cached nasv1alpha1.NodeAgentSet
			Expect(m.GetClient().Get(ctx, client.ObjectKeyFromObject(set), &cached)).To(Succeed())
			Expect(cached.Status.Canary).To(HaveField("Phase", nasv1alpha1.CanaryFailed), "the cache behind the controller's own write")
		})
	})

	It("cannot write over a newer verdict when it plans on a stale set: the status write is conditional", func() {
		// A client that reads the slow cache without waiting for its own writes: passes plan on the
		// status before the last one, and their writes must be refused.
		plain, err := client.New(m.GetConfig(), client.Options{Scheme: scheme, Cache: &client.CacheOptions{Reader: m.GetCache()}})
		Expect(err).NotTo(HaveOccurred())
		failedCanaryStaysFailed(m, plain, "stale-status-plain", func(*nasv1alpha1.NodeAgentSet) {})
	})
})

// failedCanaryStaysFailed rolls a set with a one-node canary on three nodes of its own to a second
// revision, with passes of a reconciler on c run back to back (the kubelet's work between them, a
// fake clock), restarts the canary pod's container, and checks that the canary fails and stays
// failed while the canary node gets the stable revision back and after the watch would have ended.
// afterFailed runs right after the pass that wrote the failure.
func failedCanaryStaysFailed(m ctrl.Manager, c client.Client, ns string, afterFailed func(*nasv1alpha1.NodeAgentSet)) {
	GinkgoHelper()
	Expect(direct.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	names := make([]string, 0, 3)
	for i := range 3 {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", ns, i), Labels: map[string]string{canaryNodeLabel: ns}},
			Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: canaryNodeLabel, Effect: corev1.TaintEffectNoSchedule}}},
		}
		Expect(direct.Create(ctx, node)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(direct.Delete(ctx, node))).To(Succeed()) })
		names = append(names, node.Name)
	}
	set := canarySet(ns)
	Expect(direct.Create(ctx, set)).To(Succeed())

	clk := clocktesting.NewFakeClock(time.Now())
	r := nodeagentset.NewReconciler(c, m.GetCache(), m.GetAPIReader(), m.GetEventRecorder("stale-status-test"), clk)
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: set.Name}}
	// pass reconciles once, as the controller would, retrying a pass that found the cache behind.
	pass := func() {
		GinkgoHelper()
		Eventually(func() error {
			_, err := r.Reconcile(ctx, req)
			return err
		}).WithTimeout(time.Minute).WithPolling(10 * time.Millisecond).Should(Succeed())
	}
	// untilCanary runs passes back to back, the kubelet's work between them, until the stored
	// canary reaches phase; it returns the stored canary.
	untilCanary := func(phase nasv1alpha1.CanaryPhase) *nasv1alpha1.CanaryStatus {
		GinkgoHelper()
		var st *nasv1alpha1.CanaryStatus
		Eventually(func(g Gomega) {
			pass()
			runPods(ns)
			st = storedCanary(g, set)
			g.Expect(st).To(HaveField("Phase", phase))
		}).WithTimeout(time.Minute).WithPolling(time.Millisecond).Should(Succeed())
		return st
	}

	stable := untilCanary(nasv1alpha1.CanarySucceeded).Revision
	allStable := map[string]string{names[0]: stable, names[1]: stable, names[2]: stable}
	untilRunning(pass, ns, allStable)

	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"agent","image":"registry.k8s.io/pause:3.9"}]}}}}`)
	Expect(direct.Patch(ctx, set, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
	watching := untilCanary(nasv1alpha1.CanaryWatching)
	Expect(watching.Revision).NotTo(Equal(stable))
	Expect(watching.Nodes).To(Equal(names[:1]))

	By("restarting the canary pod's container, as the kubelet reports it")
	var pods corev1.PodList
	Expect(direct.List(ctx, &pods, client.InNamespace(ns))).To(Succeed())
	restarted := false
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Labels[nasv1alpha1.ControllerRevisionHashLabel] == watching.Revision {
			pod.Status.ContainerStatuses[0].RestartCount = 1
			Expect(direct.Status().Update(ctx, pod)).To(Succeed())
			restarted = true
		}
	}
	Expect(restarted).To(BeTrue())
	failed := untilCanary(nasv1alpha1.CanaryFailed)
	Expect(failed.Reason).To(Equal(nasv1alpha1.CanaryTooManyRestarts))
	afterFailed(set)

	By("passing back to back while the canary node gets the stable revision back, then past the watch's end")
	for i := range 20 {
		if i == 10 {
			clk.Step(2 * time.Minute)
		}
		pass()
		runPods(ns)
		Expect(storedCanary(Default, set)).To(HaveField("Phase", nasv1alpha1.CanaryFailed), "after pass %d", i)
	}
	untilRunning(pass, ns, allStable)
	Expect(storedCanary(Default, set)).To(HaveField("Phase", nasv1alpha1.CanaryFailed))
}

// canarySet runs on the canary spec's nodes with a one-node canary that a single restart fails and
// that Rollback ends.
func canarySet(ns string) *nasv1alpha1.NodeAgentSet {
	set := agentSet(ns)
	one := intstr.FromInt32(1)
	set.Spec.Template.Spec.NodeSelector = map[string]string{canaryNodeLabel: ns}
	set.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: canaryNodeLabel, Operator: corev1.TolerationOpExists}}
	set.Spec.UpdateStrategy = nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.RollingUpdateStrategyType,
		RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: &one, Canary: &nasv1alpha1.CanaryStrategy{
			Nodes: &one, Duration: &metav1.Duration{Duration: time.Minute}, OnFailure: nasv1alpha1.CanaryFailureRollback}}}
	return set
}

// storedCanary is the set's canary as the API server stores it.
func storedCanary(g Gomega, set *nasv1alpha1.NodeAgentSet) *nasv1alpha1.CanaryStatus {
	var cur nasv1alpha1.NodeAgentSet
	g.Expect(direct.Get(ctx, client.ObjectKeyFromObject(set), &cur)).To(Succeed())
	return cur.Status.Canary
}

// runPods plays the kubelet: every pod of the namespace without a status runs, Ready, its container
// started once.
func runPods(ns string) {
	var pods corev1.PodList
	Expect(direct.List(ctx, &pods, client.InNamespace(ns))).To(Succeed())
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Status.Phase == corev1.PodRunning || pod.DeletionTimestamp != nil {
			continue
		}
		pod.Status.Phase = corev1.PodRunning
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent", Image: pod.Spec.Containers[0].Image, Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		if err := direct.Status().Update(ctx, pod); !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			Expect(err).NotTo(HaveOccurred())
		}
	}
}

// untilRunning runs passes back to back, the kubelet's work between them, until every node runs a
// Ready pod of the revision want names for it.
func untilRunning(pass func(), ns string, want map[string]string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		pass()
		runPods(ns)
		g.Expect(revisionsByNode(g, ns)).To(Equal(want))
	}).WithTimeout(time.Minute).WithPolling(time.Millisecond).Should(Succeed())
}

// revisionsByNode maps every node with a live pod of the namespace to its pod's revision hash.
func revisionsByNode(g Gomega, ns string) map[string]string {
	var pods corev1.PodList
	g.Expect(direct.List(ctx, &pods, client.InNamespace(ns))).To(Succeed())
	out := map[string]string{}
	for _, pod := range pods.Items {
		if pod.DeletionTimestamp != nil {
			continue
		}
		node, ok := planner.TargetNodeName(&pod)
		g.Expect(ok).To(BeTrue())
		g.Expect(out).NotTo(HaveKey(node), "two pods on %s", node)
		out[node] = pod.Labels[nasv1alpha1.ControllerRevisionHashLabel]
	}
	return out
}
