// Package stalecache proves the controller's answer to stale caches (docs/design/stale-cache.md): a
// reconcile that runs right after another, before the informer has delivered the pods the first one
// created, must not create a second pod on any node.
//
// The first specs run no controller: the test calls Reconcile itself, twice back to back, so the
// second pass starts the moment the first returns, with nothing in between to let the cache catch up.
// The last one runs two managers with leader election (handover_test.go).
package stalecache

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/controller/nodeagentset"
	"github.com/nodeagentset/nodeagentset/internal/planner"
	"github.com/nodeagentset/nodeagentset/test/integration/testenv"
)

const (
	nodes  = 20
	rounds = 3
	// watchDelay slows every read of the pod watch stream the cache consumes, so the cache is
	// reliably behind the API server, as a busy informer would be.
	watchDelay = 100 * time.Millisecond
)

var (
	ctx     context.Context
	cancel  context.CancelFunc
	testEnv *envtest.Environment
	cfg     *rest.Config
	direct  client.Client
	mgr     ctrl.Manager
	scheme  = testenv.Scheme()
)

func TestStaleCache(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Stale cache suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	testEnv, cfg, err = testenv.Start(scheme)
	Expect(err).NotTo(HaveOccurred())
	direct, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// A manager for its cache and clients only, with the options of cmd/main.go: no controller is
	// registered. Its pod informer receives watch events late.
	slow := rest.CopyConfig(cfg)
	slow.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return slowWatches{next: rt, resource: "/pods", delay: fixedDelay(watchDelay)}
	}
	mgr, err = ctrl.NewManager(slow, nodeagentset.ManagerOptions(nodeagentset.Config{}))
	Expect(err).NotTo(HaveOccurred())
	Expect(nodeagentset.SetupIndexes(ctx, mgr.GetCache())).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	for i := range nodes {
		Expect(direct.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%02d", i)}})).To(Succeed())
	}
	// Warm the informers the reconciler reads, so the first pass does not pay for their start.
	Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
	for _, list := range []client.ObjectList{&corev1.NodeList{}, &corev1.PodList{}, &nasv1alpha1.NodeAgentSetList{}} {
		Expect(mgr.GetClient().List(ctx, list)).To(Succeed())
	}
})

var _ = AfterSuite(func() {
	cancel()
	Expect(testEnv.Stop()).To(Succeed())
})

// twoPassesBackToBack creates a set in a fresh namespace and reconciles it twice in a row with a
// reconciler built on c; it returns the number of nodes that ended with more than one pod.
func twoPassesBackToBack(c client.Client, round string) int {
	ns := "stale-" + round
	Expect(direct.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	set := agentSet(ns)
	Expect(direct.Create(ctx, set)).To(Succeed())
	// The reconciler reads the set from the cache: wait until the cache has it.
	Eventually(func() error {
		return mgr.GetCache().Get(ctx, client.ObjectKeyFromObject(set), &nasv1alpha1.NodeAgentSet{})
	}).Should(Succeed())

	r := nodeagentset.NewReconciler(c, mgr.GetCache(), mgr.GetAPIReader(), mgr.GetEventRecorder("stale-cache-test"), clock.RealClock{})
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "agent"}}
	_, err := r.Reconcile(ctx, req)
	Expect(err).NotTo(HaveOccurred())
	// The second pass may find the cache still behind its read barrier after a few seconds, and fail
	// without acting; the controller would requeue it, so does the test.
	Eventually(func() error {
		_, err := r.Reconcile(ctx, req)
		return err
	}).WithTimeout(time.Minute).WithPolling(10 * time.Millisecond).Should(Succeed())

	var pods corev1.PodList
	Expect(direct.List(ctx, &pods, client.InNamespace(ns))).To(Succeed())
	perNode := map[string]int{}
	for i := range pods.Items {
		node, ok := planner.TargetNodeName(&pods.Items[i])
		Expect(ok).To(BeTrue())
		perNode[node]++
	}
	Expect(perNode).To(HaveLen(nodes), "every node gets a pod")
	duplicated := 0
	for _, n := range perNode {
		if n > 1 {
			duplicated++
		}
	}
	return duplicated
}

var _ = Describe("A reconcile right after another", func() {
	It("never creates a second pod on a node when reads wait for the controller's own writes", func() {
		for i := range rounds {
			Expect(twoPassesBackToBack(mgr.GetClient(), fmt.Sprintf("consistent-%d", i))).To(BeZero())
		}
	})

	It("does create duplicates when reads do not wait (the hazard the design removes)", func() {
		// The same slow cache, read without the read-your-writes guard: the second pass plans on a
		// world that misses the first pass's pods. This shows the test above can fail.
		plain, err := client.New(mgr.GetConfig(), client.Options{Scheme: scheme, Cache: &client.CacheOptions{Reader: mgr.GetCache()}})
		Expect(err).NotTo(HaveOccurred())
		duplicated := 0
		for i := range rounds {
			duplicated += twoPassesBackToBack(plain, fmt.Sprintf("plain-%d", i))
		}
		Expect(duplicated).To(BeNumerically(">", 0))
	})
})

// slowWatches delays each read of a watch response body of resource (the last element of its path,
// "/pods") by delay, which a test may change while the watch runs.
type slowWatches struct {
	next     http.RoundTripper
	resource string
	delay    *atomic.Int64
}

// fixedDelay is a delay for slowWatches that stays d.
func fixedDelay(d time.Duration) *atomic.Int64 {
	var v atomic.Int64
	v.Store(int64(d))
	return &v
}

func (s slowWatches) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err != nil || req.URL.Query().Get("watch") != "true" || !strings.HasSuffix(req.URL.Path, s.resource) {
		return resp, err
	}
	resp.Body = slowBody{resp.Body, s.delay}
	return resp, nil
}

type slowBody struct {
	io.ReadCloser
	delay *atomic.Int64
}

func (b slowBody) Read(p []byte) (int, error) {
	time.Sleep(time.Duration(b.delay.Load()))
	return b.ReadCloser.Read(p)
}

// agentSet is the set both specs create: one pause container per node.
func agentSet(ns string) *nasv1alpha1.NodeAgentSet {
	return &nasv1alpha1.NodeAgentSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns},
		Spec: nasv1alpha1.NodeAgentSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
}
