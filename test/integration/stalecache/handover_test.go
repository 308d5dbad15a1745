package stalecache

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeagentset/nodeagentset/internal/controller/nodeagentset"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// handoverWatchDelay slows the pod watch of the replica that takes over: its cache misses the last
// pods the old leader created for up to this long.
const handoverWatchDelay = 2 * time.Second

// replica is a manager running the controller with leader election, as one replica of the Deployment.
type replica struct {
	mgr     ctrl.Manager
	stop    context.CancelFunc
	stopped chan struct{}
}

func startReplica(restConfig *rest.Config) *replica {
	config := nodeagentset.Config{
		MaxConcurrentReconciles: 2, LeaderElection: true, LeaderElectionNamespace: "default",
		LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond,
		SkipControllerNameValidation: true,
	}
	m, err := ctrl.NewManager(restConfig, nodeagentset.ManagerOptions(config))
	Expect(err).NotTo(HaveOccurred())
	replicaCtx, stop := context.WithCancel(ctx)
	_, err = nodeagentset.SetupWithManager(replicaCtx, m, config)
	Expect(err).NotTo(HaveOccurred())
	r := &replica{mgr: m, stop: stop, stopped: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		defer close(r.stopped)
		Expect(m.Start(replicaCtx)).To(Succeed())
	}()
	return r
}

func (r *replica) shutdown() {
	r.stop()
	Eventually(r.stopped).WithTimeout(30 * time.Second).Should(BeClosed())
}

var _ = Describe("A leader handover right after a large create batch", func() {
	It("never creates a second pod on a node: the new leader waits until its cache is as fresh as the API server", func() {
		ns := "handover"
		Expect(direct.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())

		// Every pod ever created in the namespace, by node: a duplicate that a later pass deletes
		// again still counts.
		clientset, err := kubernetes.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		w, err := clientset.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		defer w.Stop()
		var mu sync.Mutex
		created := map[string]map[types.UID]bool{}
		go func() {
			defer GinkgoRecover()
			for ev := range w.ResultChan() {
				pod, ok := ev.Object.(*corev1.Pod)
				if ev.Type != watch.Added || !ok {
					continue
				}
				node, ok := planner.TargetNodeName(pod)
				Expect(ok).To(BeTrue())
				mu.Lock()
				if created[node] == nil {
					created[node] = map[types.UID]bool{}
				}
				created[node][pod.UID] = true
				mu.Unlock()
			}
		}()
		createdCount := func() int {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, uids := range created {
				n += len(uids)
			}
			return n
		}

		first := startReplica(cfg)
		defer first.shutdown()
		Eventually(first.mgr.Elected()).WithTimeout(30 * time.Second).Should(BeClosed())
		// The second replica's pod watch is slowed once its cache has synced (the initial list may come
		// through the watch stream too).
		var delay atomic.Int64
		slow := rest.CopyConfig(cfg)
		slow.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return slowWatches{next: rt, resource: "/pods", delay: &delay}
		}
		second := startReplica(slow)
		defer second.shutdown()
		Expect(second.mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
		delay.Store(int64(handoverWatchDelay))

		set := agentSet(ns)
		Expect(direct.Create(ctx, set)).To(Succeed())
		// The first leader creates a pod on every node; it is stopped the moment they all exist.
		Eventually(func() int {
			var pods corev1.PodList
			Expect(direct.List(ctx, &pods, client.InNamespace(ns))).To(Succeed())
			return len(pods.Items)
		}).WithPolling(10 * time.Millisecond).WithTimeout(30 * time.Second).Should(Equal(nodes))
		first.shutdown()
		Eventually(second.mgr.Elected()).WithTimeout(30 * time.Second).Should(BeClosed())

		// The new leader's first passes run on a pod cache up to handoverWatchDelay behind. Give them
		// time to act, and the cache time to catch up.
		Eventually(createdCount).Should(Equal(nodes))
		Consistently(createdCount).WithTimeout(3 * handoverWatchDelay).WithPolling(100 * time.Millisecond).Should(Equal(nodes))
		mu.Lock()
		defer mu.Unlock()
		Expect(created).To(HaveLen(nodes), "every node got a pod")
		for node, uids := range created {
			Expect(uids).To(HaveLen(1), "node %s got a second pod", node)
		}
	})
})
