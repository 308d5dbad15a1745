package controller

import (
	"context"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/controller/nodeagentset"
)

// The suite's API server runs without the ServiceAccount admission plugin (envtest's default: without a
// controller manager no namespace has its default account). These specs start a second one with the
// plugin on, and drive a reconciler of their own by calling Reconcile, so that a pod whose account does
// not exist is refused as in a real cluster.
var _ = Describe("A set whose ServiceAccount does not exist yet", Ordered, func() {
	var (
		env    *envtest.Environment
		c      client.Client
		r      *nodeagentset.Reconciler
		ctx    context.Context
		cancel context.CancelFunc
	)
	BeforeAll(func() {
		ctx, cancel = context.WithCancel(context.Background())
		env = &envtest.Environment{
			CRDDirectoryPaths:     []string{filepath.Join("..", "..", "..", "config", "crd", "bases")},
			ErrorIfCRDPathMissing: true,
			Scheme:                scheme,
		}
		args := env.ControlPlane.GetAPIServer().Configure()
		args.Set("disable-admission-plugins", "TaintNodesByCondition")
		args.Set("enable-admission-plugins", "ServiceAccount")
		cfg, err := env.Start()
		Expect(err).NotTo(HaveOccurred())
		c, err = client.New(cfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:  scheme,
			Metrics: metricsserver.Options{BindAddress: "0"},
			Cache:   cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
			Client:  client.Options{Cache: &client.CacheOptions{EnableReadYourWritesConsistency: ptr.To(true)}},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(nodeagentset.SetupIndexes(ctx, mgr.GetCache())).To(Succeed())
		r = nodeagentset.NewReconciler(mgr.GetClient(), mgr.GetCache(), mgr.GetAPIReader(),
			mgr.GetEventRecorder(nodeagentset.ControllerName), clock.RealClock{})
		go func() {
			defer GinkgoRecover()
			Expect(mgr.Start(ctx)).To(Succeed())
		}()
		Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
	})
	AfterAll(func() {
		cancel()
		time.Sleep(100 * time.Millisecond)
		Expect(env.Stop()).To(Succeed())
	})

	It("says so, creates nothing, and creates the pods within seconds of the account appearing", func() {
		// A new namespace: no default ServiceAccount, as in a real cluster for a moment after its creation.
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}}
		Expect(c.Create(ctx, ns)).To(Succeed())
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-0", Labels: map[string]string{"agents": "yes"}}}
		Expect(c.Create(ctx, node)).To(Succeed())
		set := &nasv1alpha1.NodeAgentSet{
			ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns.Name},
			Spec: nasv1alpha1.NodeAgentSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
					Spec: corev1.PodSpec{
						NodeSelector: map[string]string{"agents": "yes"},
						Containers:   []corev1.Container{{Name: "agent", Image: "registry.k8s.io/pause:3.10"}},
					},
				},
			},
		}
		Expect(c.Create(ctx, set)).To(Succeed())
		req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(set)}
		pods := func(g Gomega) []corev1.Pod {
			var list corev1.PodList
			g.Expect(c.List(ctx, &list, client.InNamespace(ns.Name))).To(Succeed())
			return list.Items
		}
		// reconciling runs passes, as the work queue would on events and requeues, while f polls.
		reconciling := func(within time.Duration, f func(g Gomega)) {
			GinkgoHelper()
			Eventually(func(g Gomega) {
				_, _ = r.Reconcile(ctx, req)
				f(g)
			}, within, 200*time.Millisecond).Should(Succeed())
		}

		reconciling(timeout, func(g Gomega) {
			got := &nasv1alpha1.NodeAgentSet{}
			g.Expect(c.Get(ctx, req.NamespacedName, got)).To(Succeed())
			valid := condition(got, nasv1alpha1.ConditionPodTemplateValid)
			g.Expect(valid).NotTo(BeNil())
			g.Expect(valid.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(valid.Reason).To(Equal(nasv1alpha1.ReasonServiceAccountMissing))
			g.Expect(valid.Message).To(ContainSubstring(`error looking up service account fresh/default: serviceaccount "default" not found`))
		})
		Expect(pods(Default)).To(BeEmpty())

		// Regression (issue 14, defect 2): the missing account was taken for a rejected template and the
		// set created nothing for five minutes.
		Expect(c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name}})).To(Succeed())
		reconciling(5*time.Second, func(g Gomega) {
			g.Expect(pods(g)).To(HaveLen(1))
			got := &nasv1alpha1.NodeAgentSet{}
			g.Expect(c.Get(ctx, req.NamespacedName, got)).To(Succeed())
			g.Expect(condition(got, nasv1alpha1.ConditionPodTemplateValid).Status).To(Equal(metav1.ConditionTrue))
		})
	})
})
