//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// The chaos spec (docs/design/chaos.md): sets are created and rolled out on CHAOS_NODES nodes while two
// controller replicas are SIGKILLed and SIGSTOPped, the API server restarts, etcd is compacted, nodes
// are deleted and re-created and their labels flip; a checker watches every pod event and holds the
// sets to their rules; once the faults stop every set must converge within CHAOS_CONVERGENCE. make test
// runs it short (40 nodes, 60 s), make test-chaos long (300 nodes, 5 min).

const (
	// chaosPool is the pool label value (unhealthyPoolLabel) of the spec's nodes.
	chaosPool = "chaos"
	// chaosEligibleLabel makes a node of the pool eligible for the spec's sets; the spec flips it.
	chaosEligibleLabel = "e2e.nodeagentset.io/chaos-eligible"

	// The replicas' leader election: a takeover in seconds (cmd/main.go's flags).
	chaosLeaseDuration, chaosRenewDeadline, chaosRetryPeriod = 4 * time.Second, 3 * time.Second, time.Second
)

type chaosConfig struct {
	nodes          int
	duration       time.Duration // faults and rollouts.
	reconcileBound time.Duration // "a reconcile": invariants 2 and 3.
	convergence    time.Duration // invariant 4.
	seed           uint64
}

func chaosConfigFromEnv() chaosConfig {
	c := chaosConfig{nodes: 40, duration: 60 * time.Second, reconcileBound: 20 * time.Second, seed: uint64(time.Now().UnixNano())}
	if v := os.Getenv("CHAOS_NODES"); v != "" {
		n, err := strconv.Atoi(v)
		Expect(err).NotTo(HaveOccurred(), "CHAOS_NODES")
		c.nodes = n
	}
	// A rollout takes longer on more nodes (each step replaces a tenth or a twentieth of them), and the
	// last re-created nodes count as unhealthy for 30 s: 98 s at 40 nodes, 150 s at 300.
	c.convergence = 90*time.Second + time.Duration(c.nodes)*200*time.Millisecond
	for key, d := range map[string]*time.Duration{"CHAOS_DURATION": &c.duration, "CHAOS_RECONCILE_BOUND": &c.reconcileBound, "CHAOS_CONVERGENCE": &c.convergence} {
		if v := os.Getenv(key); v != "" {
			var err error
			*d, err = time.ParseDuration(v)
			Expect(err).NotTo(HaveOccurred(), key)
		}
	}
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		Expect(err).NotTo(HaveOccurred(), "CHAOS_SEED")
		c.seed = s
	}
	return c
}

var _ = Describe("Chaos", Label("chaos"), func() {
	It("keeps every set within its rules while controllers, the API server, etcd and nodes fail, and converges after", func(ctx SpecContext) {
		cfg := chaosConfigFromEnv()
		chaosLog("%d nodes, %s of faults, CHAOS_SEED=%d", cfg.nodes, cfg.duration, cfg.seed)
		rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed))
		dir := filepath.Join(env.stateDir, "chaos")
		Expect(os.RemoveAll(dir)).To(Succeed())
		Expect(os.MkdirAll(dir, 0o755)).To(Succeed())

		By(fmt.Sprintf("adding %d nodes", cfg.nodes))
		nodes := addPoolNodes(ctx, "chaos", chaosPool, cfg.nodes)
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() {
				defer GinkgoRecover()
				updateNode(ctx, n, func(node *corev1.Node) { node.Labels[chaosEligibleLabel] = "true" })
			})
		}
		wg.Wait()

		// Last of the cleanups: kwok gets a fresh start for the specs after this one. On a failure the
		// suite's AfterEach, which runs before any cleanup, has kept the cluster's logs (kwokctl writes
		// them over on the next start).
		DeferCleanup(restartKwok)

		By("replacing the suite's controller by two replicas with short leases")
		DeferCleanup(env.startManager)
		env.stopManager()
		ctl := startChaosControllers(dir)
		DeferCleanup(ctl.stop)

		ns := newNamespace(ctx)
		checker := newChaosChecker(ns, nodes, cfg.reconcileBound)
		sets := []*nasv1alpha1.NodeAgentSet{
			newChaosSet(ns, "surge", &nasv1alpha1.RollingUpdateNodeAgentSet{
				MaxSurge: ptr.To(intstr.FromString("20%")), MaxUnavailable: ptr.To(intstr.FromInt32(0))}),
			// Numbers, not percentages, so that the checker's budget is exactly the controller's.
			newChaosSet(ns, "delete-first", &nasv1alpha1.RollingUpdateNodeAgentSet{
				MaxUnavailable: ptr.To(intstr.FromInt(max(3, cfg.nodes/10))), MaxSurge: ptr.To(intstr.FromInt32(0))}),
			newChaosSet(ns, "staged", &nasv1alpha1.RollingUpdateNodeAgentSet{
				MaxUnavailable: ptr.To(intstr.FromInt(max(2, cfg.nodes/20))), MaxSurge: ptr.To(intstr.FromInt32(0))}),
		}
		for _, s := range sets {
			checker.addSet(s)
		}
		checkerCtx, stopChecker := context.WithCancel(ctx)
		checkerDone := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(checkerDone)
			checker.run(checkerCtx)
		}()
		DeferCleanup(stopChecker)

		By("creating the sets, then rolling them out while the faults run")
		for _, s := range sets {
			Expect(k8s.Create(ctx, s)).To(Succeed())
		}
		inj := &chaosInjector{cfg: cfg, rng: rng, ctl: ctl, checker: checker, nodes: nodes, sets: sets, faults: map[string]int{}}
		start := time.Now()
		faultCtx, stopFaults := context.WithTimeout(ctx, cfg.duration)
		defer stopFaults()
		var loops sync.WaitGroup
		for _, loop := range []func(context.Context){inj.controlPlaneLoop, inj.nodeLoop, inj.rolloutLoop} {
			loops.Go(func() {
				defer GinkgoRecover()
				loop(faultCtx)
			})
		}
		loops.Wait()
		faultTime := time.Since(start)

		By("the faults stopped: every node eligible again, every set unpaused with partition 0")
		inj.settle(ctx)
		converged := time.Now()
		Eventually(func(g Gomega) {
			for _, s := range sets {
				checkConverged(ctx, g, s, nodes)
			}
		}).WithContext(ctx).WithTimeout(cfg.convergence).WithPolling(time.Second).Should(Succeed())
		convergence := time.Since(converged)
		checker.countConvergence(len(sets))

		stopChecker()
		<-checkerDone
		By("checking the replicas' logs: no panic, no refused request but while a restarted API server syncs its authorizer")
		for _, log := range ctl.logs {
			checkLog(log, checker.afterRestart)
		}
		started, exits := ctl.summary()
		report := checker.report(inj.faultCounts(), faultTime, convergence, len(nodes)) +
			fmt.Sprintf("controller replicas started: %d, exited without being killed: %d (seed %d)\n", started, exits, cfg.seed)
		Expect(os.WriteFile(filepath.Join(dir, "report.txt"), []byte(report), 0o644)).To(Succeed())
		AddReportEntry("chaos", report)
		if len(checker.violations) > 0 {
			// make test-e2e prints it last, where a CI log's tail shows it.
			Expect(os.WriteFile(filepath.Join(dir, "violations.txt"),
				[]byte(fmt.Sprintf("seed %d\n%s", cfg.seed, strings.Join(checker.violations, "\n"))), 0o644)).To(Succeed())
		}
		Expect(checker.violations).To(BeEmpty(), "invariants violated (seed %d)", cfg.seed)
		Expect(checker.total()).To(BeNumerically(">", 0))
		for _, f := range []string{"sigkill", "sigstop", "apiserver-restart", "compaction", "node-recreate", "label-flip"} {
			Expect(inj.faultCounts()[f]).To(BeNumerically(">", 0), "no %s fault was injected", f)
		}
	}, SpecTimeout(30*time.Minute))
})

func newChaosSet(ns, name string, ru *nasv1alpha1.RollingUpdateNodeAgentSet) *nasv1alpha1.NodeAgentSet {
	set := newSet(ns, name, withMinReadySeconds(1), withNodeSelector(unhealthyPoolLabel, chaosPool, chaosEligibleLabel, "true"),
		withStrategy(nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.RollingUpdateStrategyType, RollingUpdate: ru}))
	set.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "VERSION", Value: "0"}}
	return set
}

// checkConverged: the set runs one available pod of its update revision on each eligible node and
// none elsewhere, and its status says so.
func checkConverged(ctx context.Context, g Gomega, set *nasv1alpha1.NodeAgentSet, nodes []string) {
	checkRunningOn(ctx, g, set, nodes)
	cur := getSet(ctx, g, set)
	g.Expect(cur.Status.UpdatedNumberScheduled).To(BeEquivalentTo(len(nodes)), "%s: updatedNumberScheduled", set.Name)
	g.Expect(hashes(live(setPods(ctx, g, set)))).To(Equal(map[string]int{cur.Status.UpdateRevision: len(nodes)}), "%s: revisions", set.Name)
}

// chaosInjector makes the faults and changes the sets, and counts what it did.
type chaosInjector struct {
	cfg     chaosConfig
	rng     *rand.Rand
	rngMu   sync.Mutex
	ctl     *chaosControllers
	checker *chaosChecker
	nodes   []string
	sets    []*nasv1alpha1.NodeAgentSet

	mu     sync.Mutex
	faults map[string]int
	// rejoining waits for re-created nodes to lose their not-ready taint.
	rejoining sync.WaitGroup
}

func (inj *chaosInjector) intN(n int) int {
	inj.rngMu.Lock()
	defer inj.rngMu.Unlock()
	return inj.rng.IntN(n)
}

// between is a random duration in [lo, hi).
func (inj *chaosInjector) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(inj.intN(int(hi-lo)))
}

func (inj *chaosInjector) count(fault string) {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	inj.faults[fault]++
}

func (inj *chaosInjector) faultCounts() map[string]int {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	out := map[string]int{}
	for k, v := range inj.faults {
		out[k] = v
	}
	return out
}

// chaosLog writes a line of the spec's timeline, with the time, to the GinkgoWriter.
func chaosLog(format string, args ...any) {
	fmt.Fprintf(GinkgoWriter, "%s chaos: "+strings.TrimSuffix(format, "\n")+"\n", append([]any{time.Now().Format(time.StampMilli)}, args...)...)
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// controlPlaneLoop injects one control-plane fault at a time until ctx ends: first one of each kind
// (carried out whatever ctx says, so that a short run has them all), then decks in which SIGKILL comes
// four times to one of each other kind. A fault under way is carried to its end.
func (inj *chaosInjector) controlPlaneLoop(ctx context.Context) {
	first := true
	for first || ctx.Err() == nil {
		deck := []string{"sigkill", "sigstop", "apiserver-restart", "compaction"}
		if !first {
			deck = append(deck, "sigkill", "sigkill", "sigkill")
		}
		inj.rngMu.Lock()
		inj.rng.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
		inj.rngMu.Unlock()
		deckCtx := ctx
		if first {
			deckCtx = context.WithoutCancel(ctx)
		}
		first = false
		for i := 0; i < len(deck); i++ {
			fault := deck[i]
			// A leader works a few seconds before each fault: without them nothing would progress.
			leader := inj.ctl.waitLeader(deckCtx)
			if leader == nil {
				return
			}
			inj.checker.leaderWorks(time.Now())
			if !sleep(deckCtx, inj.between(2*time.Second, 5*time.Second)) {
				return
			}
			switch fault {
			case "sigkill":
				inj.checker.leaderGone(time.Now())
				if inj.ctl.kill(leader) {
					inj.count(fault)
					chaosLog("%s SIGKILLed", leader.name)
				} else {
					// The leader stopped by itself meanwhile (it lost its lease): once more.
					deck = append(deck, fault)
				}
			case "sigstop":
				inj.checker.leaderGone(time.Now())
				if inj.ctl.freeze(deckCtx, leader) {
					inj.count(fault)
				} else {
					deck = append(deck, fault)
				}
			case "apiserver-restart":
				inj.restartAPIServer(deckCtx)
			case "compaction":
				compactEtcd(deckCtx)
				inj.count(fault)
				if inj.intN(2) == 0 {
					time.Sleep(time.Second)
					inj.restartAPIServer(deckCtx)
				}
			}
		}
	}
}

// restartAPIServer SIGKILLs kube-apiserver and has kwokctl start it again (it starts whatever of the
// cluster is not running, on the same etcd data and port).
func (inj *chaosInjector) restartAPIServer(ctx context.Context) {
	down := time.Now()
	inj.checker.apiServerDown(down)
	// The leader may lose its lease while the API server is down: until the loop sees one at work
	// again, nothing reconciles.
	inj.checker.leaderGone(down)
	killComponent("kube-apiserver")
	startCtx, cancel := startContext(ctx)
	defer cancel()
	startComponents(startCtx)
	Eventually(func(ctx context.Context) error {
		return k8s.List(ctx, &corev1.NamespaceList{}, client.Limit(1))
	}).WithContext(startCtx).WithPolling(200 * time.Millisecond).Should(Succeed())
	inj.checker.apiServerUp(time.Now())
	inj.count("apiserver-restart")
	chaosLog("the API server was down %s", time.Since(down).Round(10*time.Millisecond))
}

// etcdClientURL is the client URL of the cluster's etcd, from the flags kwokctl gives it.
var etcdClientURL = regexp.MustCompile(`--listen-client-urls=(\S+)`)

// compactEtcd compacts etcd to its current revision through etcd's JSON gateway: every watch or list
// that restarts from an older resourceVersion then fails with 410 Gone.
func compactEtcd(ctx context.Context) {
	conf, err := os.ReadFile(filepath.Join(env.clusterDir(), "kwok.yaml"))
	Expect(err).NotTo(HaveOccurred())
	m := etcdClientURL.FindSubmatch(conf)
	Expect(m).NotTo(BeNil(), "no etcd client URL in kwok.yaml")
	url := strings.Split(string(m[1]), ",")[0]
	post := func(path string, body any) map[string]any {
		b, err := json.Marshal(body)
		Expect(err).NotTo(HaveOccurred())
		req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, url+path, bytes.NewReader(b))
		Expect(err).NotTo(HaveOccurred())
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = resp.Body.Close() }()
		var out map[string]any
		Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
		Expect(resp.StatusCode).To(Equal(http.StatusOK), "etcd %s: %v", path, out)
		return out
	}
	// A range over the empty key reads no key but gives the store's revision in its header.
	header, _ := post("/v3/kv/range", map[string]any{"key": "AA==", "keys_only": true})["header"].(map[string]any)
	rev, _ := header["revision"].(string)
	Expect(rev).NotTo(BeEmpty())
	post("/v3/kv/compaction", map[string]any{"revision": rev, "physical": true})
	chaosLog("etcd compacted at revision %s", rev)
}

// nodeLoop flips a random node's eligibility label about every second and re-creates a random node
// about every 4 s, until ctx ends.
func (inj *chaosInjector) nodeLoop(ctx context.Context) {
	for sleep(ctx, inj.between(500*time.Millisecond, 1500*time.Millisecond)) {
		node := inj.nodes[inj.intN(len(inj.nodes))]
		if !inj.checker.present(node) {
			// Being re-created, with the labels it had: a second re-creation (a minute without
			// Ready) would undo a flip made in between behind the checker's back (seen once in a
			// long run).
			continue
		}
		if inj.intN(4) == 0 {
			inj.recreateNode(ctx, node)
			continue
		}
		eligible := !inj.checker.eligible(node)
		// Keep most nodes eligible: a node out of scope goes back more often than one goes out.
		if !eligible && inj.checker.ineligibleCount() >= len(inj.nodes)/5 {
			continue
		}
		// A node leaves the sets the moment the write lands, which may be before the call returns:
		// the checker learns it first. It joins them once the write is done, and is no longer held
		// to being out of scope from the moment the write may land.
		if !eligible {
			inj.checker.flipped(node, false, time.Now())
		} else {
			inj.checker.joining(node)
		}
		if !chaosRetry(ctx, func(ctx context.Context) error { return setEligible(ctx, node, eligible) }) {
			// The write may have landed all the same: the node counts as eligible again, a pod the
			// controller created for it is no violation, and the next flip settles it.
			inj.checker.flipped(node, true, time.Now())
			continue
		}
		if eligible {
			inj.checker.flipped(node, true, time.Now())
		}
		inj.count("label-flip")
		chaosLog("%s eligible=%t", node, eligible)
	}
}

// chaosRetry retries op (the API server may be down) for up to a minute; false when it never
// succeeded or ctx ended.
func chaosRetry(ctx context.Context, op func(context.Context) error) bool {
	deadline := time.Now().Add(time.Minute)
	for {
		err := op(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			chaosLog("gave up: %v", err)
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func setEligible(ctx context.Context, node string, eligible bool) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var n corev1.Node
		if err := k8s.Get(ctx, client.ObjectKey{Name: node}, &n); err != nil {
			return err
		}
		if eligible {
			n.Labels[chaosEligibleLabel] = "true"
		} else {
			delete(n.Labels, chaosEligibleLabel)
		}
		return k8s.Update(ctx, &n)
	})
}

// recreateNode deletes a node and creates it again under its name with its labels, as a kubelet
// registers: tainted not-ready until the node lifecycle controller sees it Ready. Once started it is
// carried to its end, whatever ctx says.
func (inj *chaosInjector) recreateNode(ctx context.Context, name string) {
	ctx = context.WithoutCancel(ctx)
	var old corev1.Node
	if !chaosRetry(ctx, func(ctx context.Context) error { return k8s.Get(ctx, client.ObjectKey{Name: name}, &old) }) {
		return
	}
	inj.replaceNode(ctx, name, old.Labels)
	inj.count("node-recreate")
	chaosLog("%s re-created", name)
	// Until the node lifecycle controller lifts the not-ready taint the node is not eligible for the
	// sets (a NoSchedule taint they do not tolerate: rule 26), and a surge rollout may remove its old
	// pod as upstream does (rule 47): it rejoins the sets' budget once untainted. A node created in the
	// seconds the API server restarts may never be marked Ready by kwok (seen once in CI): after a
	// minute it is re-created again, as a kubelet would register once more, at most twice.
	inj.rejoining.Go(func() {
		defer GinkgoRecover()
		// A plain poll, not a Gomega assertion: this goroutine runs beside the spec (no global fail
		// handler may be swapped here).
		readyWithin := func(d time.Duration) bool {
			for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
				// Ready too, not only untainted: the node lifecycle controller lifts the not-ready taint
				// of a node that has no Ready condition yet, and taints it again once it notices
				// (seen in a long run, kwok 42 s late to take a re-created node over: a surge set
				// then removed the node's available old pod, rule 47, behind the checker's back).
				var n corev1.Node
				if err := k8s.Get(ctx, client.ObjectKey{Name: name}, &n); err == nil && nodeIsReady(&n) &&
					!slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool {
						return t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable
					}) {
					return true
				}
			}
			return false
		}
		for range 2 {
			if readyWithin(time.Minute) {
				break
			}
			chaosLog("%s still not Ready a minute after it was created: re-created again", name)
			inj.replaceNode(ctx, name, old.Labels)
		}
		Expect(readyWithin(time.Minute)).To(BeTrue(), "%s is still tainted not-ready", name)
		inj.checker.nodeBack(name, time.Now())
		chaosLog("%s Ready and untainted", name)
	})
}

// replaceNode deletes the node and creates it again under its name with labels, as a kubelet
// registers: tainted not-ready until the node lifecycle controller sees it Ready.
func (inj *chaosInjector) replaceNode(ctx context.Context, name string, labels map[string]string) {
	// The node's pods may go (rule 27) before the delete call returns: the checker learns it first.
	inj.checker.nodeGone(name, time.Now())
	Expect(chaosRetry(ctx, func(ctx context.Context) error {
		return client.IgnoreNotFound(k8s.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	})).To(BeTrue())
	Expect(chaosRetry(ctx, func(ctx context.Context) error {
		err := k8s.Get(ctx, client.ObjectKey{Name: name}, &corev1.Node{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("node %s still there: %w", name, err)
	})).To(BeTrue())
	// The node's Lease goes too, before the node is back, as the garbage collector would delete it
	// (it is owned by the old node) but at once: kwok otherwise went on renewing the old Lease from its
	// cache, was refused, and took the new node over only once that Lease expired (30 to 42 s late in
	// long runs, and once past the short spec's convergence bound). kwok may create it again at once
	// for the old node (in its own name, so it renews it): the wait for it to be gone is short and
	// either way is fine.
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: name}}
	Expect(chaosRetry(ctx, func(ctx context.Context) error { return client.IgnoreNotFound(k8s.Delete(ctx, lease)) })).To(BeTrue())
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(lease), &coordinationv1.Lease{}); apierrors.IsNotFound(err) {
			break
		}
	}
	node := poolNode(name, chaosPool)
	node.Labels = labels
	Expect(chaosRetry(ctx, func(ctx context.Context) error { return k8s.Create(ctx, node) })).To(BeTrue())
}

// rolloutLoop changes a random set every few seconds: a new template, or the staged set's pause or
// partition.
func (inj *chaosInjector) rolloutLoop(ctx context.Context) {
	version := 0
	for sleep(ctx, inj.between(3*time.Second, 8*time.Second)) {
		set := inj.sets[inj.intN(len(inj.sets))]
		action := inj.intN(4)
		if set.Name != "staged" {
			action = 0
		}
		var what string
		mutate := func(s *nasv1alpha1.NodeAgentSet) {
			switch action {
			case 0, 1:
				version++
				s.Spec.Template.Spec.Containers[0].Env[0].Value = strconv.Itoa(version)
				what = "template VERSION=" + strconv.Itoa(version)
			case 2:
				s.Spec.UpdateStrategy.RollingUpdate.Paused = !s.Spec.UpdateStrategy.RollingUpdate.Paused
				what = fmt.Sprintf("paused=%t", s.Spec.UpdateStrategy.RollingUpdate.Paused)
			case 3:
				p := []string{"50%", "25%", "0%"}[inj.intN(3)]
				s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To(intstr.FromString(p))
				what = "partition=" + p
			}
		}
		if chaosRetry(ctx, func(ctx context.Context) error { return updateSetErr(ctx, set, mutate) }) {
			inj.count("set-change")
			chaosLog("%s: %s", set.Name, what)
		}
	}
}

// updateSetErr is updateSet returning its error.
func updateSetErr(ctx context.Context, set *nasv1alpha1.NodeAgentSet, mutate func(*nasv1alpha1.NodeAgentSet)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur nasv1alpha1.NodeAgentSet
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(set), &cur); err != nil {
			return err
		}
		mutate(&cur)
		return k8s.Update(ctx, &cur)
	})
}

// settle ends the chaos: every node eligible and untainted, every set unpaused with partition 0.
func (inj *chaosInjector) settle(ctx context.Context) {
	inj.rejoining.Wait()
	inj.ctl.waitLeader(ctx)
	inj.checker.leaderWorks(time.Now())
	// kube-scheduler and kube-controller-manager elect a leader too, and exit when an API server
	// restart outlasts their renew deadline (10 s); kwokctl starts again whatever is not running.
	startCtx, cancel := startContext(ctx)
	startComponents(startCtx)
	cancel()
	for _, n := range inj.nodes {
		if !inj.checker.eligible(n) {
			inj.checker.joining(n)
			Expect(chaosRetry(ctx, func(ctx context.Context) error { return setEligible(ctx, n, true) })).To(BeTrue())
			inj.checker.flipped(n, true, time.Now())
		}
	}
	for _, s := range inj.sets {
		Expect(chaosRetry(ctx, func(ctx context.Context) error {
			return updateSetErr(ctx, s, func(s *nasv1alpha1.NodeAgentSet) {
				s.Spec.UpdateStrategy.RollingUpdate.Paused = false
				s.Spec.UpdateStrategy.RollingUpdate.Partition = nil
			})
		})).To(BeTrue())
	}
}

// chaosControllers runs two controller replicas and restarts any that exits.
type chaosControllers struct {
	dir string

	mu       sync.Mutex
	replicas []*chaosReplica
	started  int
	exits    int // exits the spec did not cause: a thawed replica that lost its lease, for one.
	stopping bool
	done     chan struct{}
	logs     []string
}

type chaosReplica struct {
	name   string
	p      *managerProcess
	killed bool // by the spec: SIGKILL.
	frozen bool // SIGSTOPped, now or before.
	leads  bool // its log says it acquired the lease and caught up.
}

func startChaosControllers(dir string) *chaosControllers {
	c := &chaosControllers{dir: dir, done: make(chan struct{})}
	c.mu.Lock()
	for range 2 {
		c.replicas = append(c.replicas, c.launch())
	}
	c.mu.Unlock()
	go func() {
		defer GinkgoRecover()
		defer close(c.done)
		for {
			time.Sleep(200 * time.Millisecond)
			c.mu.Lock()
			if c.stopping {
				c.mu.Unlock()
				return
			}
			for i, r := range c.replicas {
				if r.p.exited() {
					if !r.killed {
						c.exits++
					}
					c.replicas[i] = c.launch()
				}
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// launch starts a replica; c.mu is held.
func (c *chaosControllers) launch() *chaosReplica {
	c.started++
	name := fmt.Sprintf("replica-%d", c.started)
	log := filepath.Join(c.dir, name+".log")
	c.logs = append(c.logs, log)
	return &chaosReplica{name: name, p: env.launchManager(log,
		"--leader-elect-lease-duration", chaosLeaseDuration.String(),
		"--leader-elect-renew-deadline", chaosRenewDeadline.String(),
		"--leader-elect-retry-period", chaosRetryPeriod.String(),
		// Each pod created or deleted, with its node and why: the timeline of a violation.
		"--zap-log-level", "2")}
}

// leader is the running, never frozen replica that acquired the lease and caught up with the API
// server (handover.go: it reconciles from then on), or nil.
func (c *chaosControllers) leader() *chaosReplica {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.replicas {
		if !r.leads && !r.p.exited() {
			r.leads = r.p.logContains(`"msg":"Successfully acquired lease"`) && r.p.logContains(`"msg":"Pod cache caught up with the API server"`)
		}
	}
	for _, r := range c.replicas {
		if r.leads && !r.frozen && !r.p.exited() {
			return r
		}
	}
	return nil
}

// waitLeader waits up to a minute for a leader; nil when ctx ended first.
func (c *chaosControllers) waitLeader(ctx context.Context) *chaosReplica {
	deadline := time.Now().Add(time.Minute)
	for {
		if r := c.leader(); r != nil {
			return r
		}
		Expect(time.Now().Before(deadline)).To(BeTrue(), "no replica acquired the lease for a minute")
		if !sleep(ctx, 100*time.Millisecond) {
			return nil
		}
	}
}

// kill SIGKILLs r; the supervisor replaces it.
func (c *chaosControllers) kill(r *chaosReplica) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.p.exited() {
		return false
	}
	r.killed = true
	return r.p.cmd.Process.Signal(syscall.SIGKILL) == nil
}

// freeze SIGSTOPs r past its lease, waits until another replica leads, and thaws it.
func (c *chaosControllers) freeze(ctx context.Context, r *chaosReplica) bool {
	c.mu.Lock()
	if r.p.exited() {
		c.mu.Unlock()
		return false
	}
	r.frozen = true
	Expect(r.p.cmd.Process.Signal(syscall.SIGSTOP)).To(Succeed())
	c.mu.Unlock()
	chaosLog("%s SIGSTOPped", r.name)
	time.Sleep(chaosLeaseDuration + 4*time.Second)
	other := c.waitLeader(context.WithoutCancel(ctx))
	Expect(other).NotTo(BeIdenticalTo(r))
	chaosLog("%s took the lease over; %s thawed (SIGCONT)", other.name, r.name)
	// It stays marked frozen: once thawed it finds its lease lost and stops, and it never leads again.
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = r.p.cmd.Process.Signal(syscall.SIGCONT)
	return true
}

func (c *chaosControllers) stop() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	<-c.done
	for _, r := range c.replicas {
		_ = r.p.cmd.Process.Signal(syscall.SIGCONT)
		r.p.stop(20 * time.Second)
	}
}

func (c *chaosControllers) summary() (started, exits int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started, c.exits
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
