//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/leaderelection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// The Deployment's two replicas behind leader election (pod_process_test.go runs each as its pod's
// container; only their ports differ from the manifest's, as both share this machine's network). The
// leader dies by SIGKILL in the middle of a rollout: it cannot give the lease up, the other replica
// takes it once the lease expires.
var _ = Describe("Leader election", func() {
	It("fails over to the other replica when the leader is SIGKILLed mid-rollout, and the rollout stays within its budget", func(ctx SpecContext) {
		img := theImage(ctx)

		By("stopping the suite's controller (it releases the lease); it starts again after the spec")
		DeferCleanup(env.startManager)
		env.stopManager()

		dep, pods := deployConfigDefault(ctx)
		replicas := map[string]*podProcess{}
		for i := range pods {
			metricsAddr, probeAddr := freeLocalAddr(), freeLocalAddr()
			replicas[pods[i].Name] = startPodProcess(ctx, img, &pods[i], "manager", func(cmd []string) []string {
				return withFlags(cmd, "--metrics-bind-address="+metricsAddr, "--health-probe-bind-address="+probeAddr)
			})
		}
		// The Deployment sets no timing: cmd/main.go's defaults, upstream's.
		const leaseDuration, retryPeriod = 15 * time.Second, 2 * time.Second
		leader, _ := waitForHolder(ctx, dep.Namespace, "", replicas)
		fmt.Fprintf(GinkgoWriter, "replica %s leads\n", leader)

		ns := newNamespace(ctx)
		const minReady = 3
		set := createSet(ctx, ns, "failover", withMinReadySeconds(minReady))
		nodes := workerNodes(ctx)
		expectRunningOn(ctx, set, nodes)

		w := watchRollout(ctx, set, nodes, minReady)
		By("rolling to a new image (maxUnavailable 1, maxSurge 0) and SIGKILLing the leader once one node is updated")
		rollToImage2(ctx, set)
		Eventually(func(g Gomega) {
			ims := images(live(setPods(ctx, g, set)))
			updated := 0
			for _, im := range ims {
				if im == image2 {
					updated++
				}
			}
			g.Expect(updated).To(BeNumerically(">=", 1))
			g.Expect(len(ims)-updated).To(BeNumerically(">=", 2), "too late: the rollout is almost done")
		}).WithContext(ctx).WithPolling(100 * time.Millisecond).Should(Succeed())
		killed := time.Now()
		replicas[leader].kill()
		w.markKill(killed)

		survivor, acquired := waitForHolder(ctx, dep.Namespace, leader, replicas)
		takeover := acquired.Sub(killed)
		expectRunningOnImage2(ctx, set, nodes)
		violations, maxUnavailable, firstWrite := w.stop()
		Expect(violations).To(BeEmpty(), "seen by the pod watch")
		Expect(maxUnavailable).To(Equal(1), "the rollout never made a node unavailable: did it roll?")
		Expect(firstWrite).NotTo(BeZero(), "no pod was created or deleted after the kill")
		failover := firstWrite.Sub(killed)
		AddReportEntry("leader failover", fmt.Sprintf(
			"lease taken over by %s %s after the SIGKILL, its first pod write %s after the SIGKILL (lease duration %s, retry period %s)", survivor,
			takeover.Round(10*time.Millisecond), failover.Round(10*time.Millisecond), leaseDuration, retryPeriod))
		fmt.Fprintf(GinkgoWriter, "FAILOVER: the leader was SIGKILLed; %s took the lease over after %s, and wrote its first pod after %s\n",
			survivor, takeover.Round(10*time.Millisecond), failover.Round(10*time.Millisecond))
		// The other replica tries every jittered retry period: client-go waits the period plus up to
		// JitterFactor (1.2) times it, so up to 4.4 s between tries. It sees the lease's last renewal
		// (at most at the kill) up to one such wait late, and counts the lease duration from when it
		// saw it; its next try after that comes up to another wait later: 23.8 s at most, plus a second
		// of slack for a loaded machine.
		jitteredRetry := retryPeriod + time.Duration(leaderelection.JitterFactor*float64(retryPeriod))
		Expect(takeover).To(BeNumerically("<", leaseDuration+2*jitteredRetry+time.Second), "takeover")
		Expect(failover).To(BeNumerically(">=", takeover-time.Second), "the new leader wrote before it held the lease")

		By("the survivor gives the lease up on SIGTERM")
		replicas[survivor].stop(30 * time.Second)
	})
})

// withFlags replaces the value of each --name=value flag of cmd.
func withFlags(cmd []string, flags ...string) []string {
	out := append([]string{}, cmd...)
	for _, f := range flags {
		name, _, _ := strings.Cut(f, "=")
		found := false
		for i, a := range out {
			if strings.HasPrefix(a, name+"=") {
				out[i], found = f, true
			}
		}
		Expect(found).To(BeTrue(), "the command line %q has no %s", cmd, name)
	}
	return out
}

// waitForHolder waits until one of the replicas other than exclude holds the leader lease (its
// identity begins with its hostname, the pod's name) and returns it with the lease's acquire time.
func waitForHolder(ctx context.Context, ns, exclude string, replicas map[string]*podProcess) (string, time.Time) {
	var holder string
	var acquired time.Time
	Eventually(func(g Gomega) {
		for name, p := range replicas {
			g.Expect(name == exclude || !p.exited()).To(BeTrue(), "replica %s exited:\n%s", name, p.logTail(30))
		}
		var lease coordinationv1.Lease
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, &lease)).To(Succeed())
		g.Expect(lease.Spec.HolderIdentity).NotTo(BeNil())
		name, _, _ := strings.Cut(*lease.Spec.HolderIdentity, "_")
		g.Expect(replicas).To(HaveKey(name), "holder %s", *lease.Spec.HolderIdentity)
		g.Expect(name).NotTo(Equal(exclude), "the killed replica still holds the lease")
		g.Expect(lease.Spec.AcquireTime).NotTo(BeNil())
		holder, acquired = name, lease.Spec.AcquireTime.Time
	}).WithContext(ctx).WithPolling(200 * time.Millisecond).WithTimeout(time.Minute).Should(Succeed())
	return holder, acquired
}

func expectRunningOnImage2(ctx context.Context, set *nasv1alpha1.NodeAgentSet, nodes []string) {
	EventuallyWithOffset(1, func(g Gomega) {
		g.Expect(images(live(setPods(ctx, g, set)))).To(HaveEach(image2))
		checkRunningOn(ctx, g, set, nodes)
	}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())
}

// rolloutWatch checks every pod event of a set: no node ever has two of its pods (terminating ones
// included: maxSurge is 0), and never more than one node is without an available pod (maxUnavailable
// 1). It records the first pod creation or deletion after the kill: the new leader's first write.
type rolloutWatch struct {
	set       *nasv1alpha1.NodeAgentSet
	nodes     []string
	minReady  int32
	cancel    context.CancelFunc
	done      chan struct{}
	mu        sync.Mutex
	pods      map[types.UID]corev1.Pod
	killed    time.Time
	first     time.Time
	bad       []string
	maxUnavai int
}

func watchRollout(ctx context.Context, set *nasv1alpha1.NodeAgentSet, nodes []string, minReady int32) *rolloutWatch {
	wctx, cancel := context.WithCancel(ctx)
	w := &rolloutWatch{set: set, nodes: nodes, minReady: minReady, cancel: cancel, done: make(chan struct{}), pods: map[types.UID]corev1.Pod{}}
	// The state the watch starts from: a list, then the events after it (a watch from no version
	// would replay the pods one by one, through states that never were).
	var list corev1.PodList
	Expect(k8s.List(ctx, &list, client.InNamespace(set.Namespace), client.MatchingLabels(set.Spec.Selector.MatchLabels))).To(Succeed())
	for _, p := range list.Items {
		w.pods[p.UID] = p
	}
	wi, err := k8s.Watch(wctx, &corev1.PodList{}, client.InNamespace(set.Namespace), client.MatchingLabels(set.Spec.Selector.MatchLabels),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(cancel)
	go func() {
		defer GinkgoRecover()
		defer close(w.done)
		defer wi.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case ev, ok := <-wi.ResultChan():
				if !ok {
					w.mu.Lock()
					w.bad = append(w.bad, "the pod watch ended early")
					w.mu.Unlock()
					return
				}
				w.observe(ev)
			}
		}
	}()
	return w
}

func (w *rolloutWatch) observe(ev watch.Event) {
	pod, ok := ev.Object.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	old, had := w.pods[pod.UID]
	if !w.killed.IsZero() && w.first.IsZero() &&
		((ev.Type == watch.Added && !had) || (pod.DeletionTimestamp != nil && had && old.DeletionTimestamp == nil)) {
		w.first = now
	}
	if ev.Type == watch.Deleted {
		delete(w.pods, pod.UID)
	} else {
		w.pods[pod.UID] = *pod
	}
	var pods []corev1.Pod
	for _, p := range w.pods {
		pods = append(pods, p)
	}
	for node, onNode := range byNode(pods) {
		if len(onNode) > 1 {
			w.bad = append(w.bad, fmt.Sprintf("%s: node %s has %d pods:\n%s", now.Format(time.StampMilli), node, len(onNode), describePods(onNode, w.minReady)))
		}
	}
	unavailable := unavailableNodes(pods, w.nodes, w.minReady, now)
	w.maxUnavai = max(w.maxUnavai, len(unavailable))
	if len(unavailable) > 1 {
		w.bad = append(w.bad, fmt.Sprintf("%s: %d nodes without an available pod %v, maxUnavailable is 1:\n%s", now.Format(time.StampMilli),
			len(unavailable), unavailable, describePods(pods, w.minReady)))
	}
}

func (w *rolloutWatch) markKill(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.killed = t
}

// stop ends the watch and returns what it saw.
func (w *rolloutWatch) stop() (violations []string, maxUnavailable int, firstWriteAfterKill time.Time) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bad, w.maxUnavai, w.first
}
