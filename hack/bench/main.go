// Command bench compares the NodeAgentSet controller with the upstream DaemonSet controller (inside
// kube-controller-manager) side by side on one dedicated local kwok cluster. See docs/benchmarks.md.
//
//	go run ./hack/bench --nodes 1000 --pairs 3 --mode equal
//	go run ./hack/bench --smoke
//	go run ./hack/bench --gate --nodes 1000
//	go run ./hack/bench --soak --nodes 1000 --soak-duration 30m --mode defaults
//
// It creates its own cluster with hack/local-cluster.sh (kwokctl, binary runtime, the shared
// hack/kwok/kwokctl.yaml plus the bench's settings, name nodeagentset-bench, state under
// .demo/bench), runs kube-controller-manager itself (only the controllers the comparison needs, with
// the client budget of the mode) and the NodeAgentSet controller (bin built from ./cmd), both with the
// cluster's admin credentials, and deletes the cluster when it is done, also on failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

const (
	clusterName    = "nodeagentset-bench"
	image1         = "registry.k8s.io/pause:3.10"
	image2         = "registry.k8s.io/pause:3.10.1"
	kcmControllers = "daemonset,nodelifecycle,serviceaccount,serviceaccount-token,garbagecollector,podgc"
	clkTck         = 100.0
)

type config struct {
	nodes   int
	pairs   int
	mode    string
	idle    time.Duration
	timeout time.Duration
	root    string
	k8sBin  string
	dir     string
	keep    bool
	// skipDS, timeline and nasLogLevel are for experiments on the NodeAgentSet controller alone.
	skipDS      bool
	timeline    bool
	nasLogLevel int
	// referenceWindow is how often the reference rollout writes at most (ideal.go).
	referenceWindow time.Duration
	// kwokWorkers is kwok's podPlayStageParallelism: how many pod transitions (Ready, gone) the
	// simulated kubelets of all nodes carry out at once.
	kwokWorkers int
	// gate runs the readiness gate mode instead of the comparison (gate.go).
	gate bool
	// soak runs the soak mode instead of the comparison (soak.go): soakDuration of node churn at
	// soakChurnRate node events a second, a rollout every soakRolloutEvery.
	soak             bool
	soakDuration     time.Duration
	soakRolloutEvery time.Duration
	soakChurnRate    float64
	// commit is the commit the controller is built from (gitCommit), taken at the start.
	commit string
	// unrelatedPerNode is how many pods of no DaemonSet or NodeAgentSet each node runs during the
	// whole run (unrelated.go).
	unrelatedPerNode int
}

// kwokWorkers is kwok's podPlayStageParallelism for a cluster of n nodes: 4 (kwok's default) per
// 1,000 nodes or part of them. One kwok process plays the kubelet of every node with a fixed pool of
// workers; at its default of 4 it finalizes about 135 pod deletions a second whether the cluster has
// 1,000 or 5,000 nodes (docs/benchmarks.md), so at 5,000 nodes a fixed pool, not the controllers or
// the API server, would set the pace. In a real cluster every node brings its own kubelet: the
// simulated kubelets' capacity grows with the nodes here too.
func kwokWorkersFor(n int) int {
	return 4 * max(1, (n+999)/1000)
}

// timeoutFor is the default limit for each wait: 15 minutes, or 180 ms per node above 5,000. The
// DaemonSet controller at its default qps 20 takes 50 s per 1,000 nodes to cover them and 100 s to roll
// them out: 16.7 minutes at 10,000 nodes.
func timeoutFor(nodes int) time.Duration {
	return max(15*time.Minute, time.Duration(nodes)*180*time.Millisecond)
}

func main() {
	var c config
	smoke := flag.Bool("smoke", false, "quick run: 50 nodes, 1 pair, 10 s idle")
	flag.IntVar(&c.nodes, "nodes", 1000, "number of kwok nodes")
	flag.IntVar(&c.pairs, "pairs", 3, "number of trial pairs, each after a reference run: DaemonSet first in odd pairs, NodeAgentSet first in even ones")
	flag.StringVar(&c.mode, "mode", "equal", "client budgets: equal (both --kube-api-qps=20 --kube-api-burst=30) or defaults (each its shipped defaults)")
	flag.DurationVar(&c.idle, "idle", 60*time.Second, "idle measurement window")
	flag.DurationVar(&c.timeout, "timeout", 0, "limit for each wait (0: 15m, or longer for more than 5,000 nodes: see timeoutFor)")
	flag.StringVar(&c.k8sBin, "k8s-bin", "", "directory of the Kubernetes binaries (default bin/k8s/$K8S_VERSION)")
	flag.BoolVar(&c.keep, "keep", false,
		"keep the cluster afterwards (delete it with CLUSTER_NAME="+clusterName+" DEMO_DIR=.demo/bench hack/local-cluster.sh down)")
	flag.BoolVar(&c.skipDS, "skip-daemonset", false,
		"experiments: run only the reference and the NodeAgentSet trials, no idle minute (the table has no DaemonSet figures)")
	flag.IntVar(&c.nasLogLevel, "controller-log-level", 0,
		"the NodeAgentSet controller's log verbosity (--zap-log-level); 1 logs every status write, 2 every pod write: see .demo/bench/manager.log")
	flag.DurationVar(&c.referenceWindow, "reference-window", 100*time.Millisecond,
		"the reference rollout writes at most once per this window, at once after a quiet one (the controller's pod-event window); 0: at every pod event")
	flag.IntVar(&c.kwokWorkers, "kwok-workers", 0,
		"kwok's podPlayStageParallelism, the pod transitions the simulated kubelets carry out at once (0: 4 per 1,000 nodes)")
	flag.IntVar(&c.unrelatedPerNode, "unrelated-pods-per-node", 0,
		"pods of no DaemonSet or NodeAgentSet to run on every node (namespace "+unrelatedNamespace+") for the whole run: "+
			"both controllers' caches hold them, the peak RSS rows include them")
	flag.BoolVar(&c.timeline, "timeline", false,
		"log a census of the pods during each coverage (every 0.5 s, the reference's too) and rollout (every second): old, terminating, new, bound, Ready; "+
			"after each coverage and rollout (the reference's too), where its time went (kubelet, scheduler, controller)")
	flag.BoolVar(&c.gate, "gate", false,
		"readiness gate mode: --nodes nodes join with a gate taint; report when every agent was available and every gate lifted")
	flag.BoolVar(&c.soak, "soak", false,
		"soak mode: the NodeAgentSet controller alone, three sets on --nodes nodes, node churn and rollouts; report whether its memory stays flat")
	flag.DurationVar(&c.soakDuration, "soak-duration", 30*time.Minute, "soak mode: how long the node churn lasts")
	flag.DurationVar(&c.soakRolloutEvery, "soak-rollout-every", 3*time.Minute, "soak mode: a template change of one set (in turn) this often")
	flag.Float64Var(&c.soakChurnRate, "soak-churn-rate", 1, "soak mode: node events (delete, create, re-create, label flip) a second")
	flag.Parse()
	if *smoke {
		c.nodes, c.pairs, c.idle = 50, 1, 10*time.Second
	}
	if c.kwokWorkers <= 0 {
		c.kwokWorkers = kwokWorkersFor(c.nodes)
	}
	if c.timeout <= 0 {
		c.timeout = timeoutFor(c.nodes)
	}
	if c.unrelatedPerNode < 0 || c.unrelatedPerNode > 100 {
		fmt.Fprintln(os.Stderr, "--unrelated-pods-per-node must be between 0 and 100 (a node takes 110 pods)")
		os.Exit(2)
	}
	if c.soak && (c.soakDuration <= 0 || c.soakRolloutEvery <= 0 || c.soakChurnRate <= 0) {
		fmt.Fprintln(os.Stderr, "--soak-duration, --soak-rollout-every and --soak-churn-rate must be positive")
		os.Exit(2)
	}
	if c.mode != "equal" && c.mode != "defaults" {
		fmt.Fprintln(os.Stderr, "--mode must be equal or defaults")
		os.Exit(2)
	}
	wd, err := os.Getwd()
	if err != nil {
		fatal(err)
	}
	c.root = wd
	c.commit = gitCommit(wd)
	if c.k8sBin == "" {
		v := os.Getenv("K8S_VERSION")
		if v == "" {
			v = "1.37.1"
		}
		c.k8sBin = filepath.Join(wd, "bin", "k8s", v)
	}
	c.dir = filepath.Join(wd, ".demo", "bench")

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, c)
	cancel()
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench: error:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench %s] %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, c config) (err error) {
	began := time.Now()
	if err := c.buildManager(); err != nil {
		return err
	}
	if !c.keep {
		defer c.deleteCluster()
	}
	if err := c.createCluster(); err != nil {
		return err
	}
	rc, cs, cl, err := c.clients()
	if err != nil {
		return err
	}
	if err := c.applyCRD(); err != nil {
		return err
	}
	ct, err := c.startControllers(ctx)
	defer ct.stop()
	if err != nil {
		return err
	}
	profDir := filepath.Join(c.dir, "profiles")
	if err := emptyDir(profDir); err != nil {
		return err
	}
	floorCS, err := newFloorClient(rc)
	if err != nil {
		return err
	}
	b := &bench{c: c, cs: cs, cl: cl, ct: ct, tr: &tracker{},
		prof: &profiler{url: ct.nasPprof, dir: profDir, httpc: &http.Client{}}}
	b.tr.reset("", c.nodes)
	if c.gate {
		return b.runGate(ctx)
	}
	if err := b.prepareNodes(ctx); err != nil {
		return err
	}
	if c.soak {
		return b.runSoak(ctx)
	}
	if err := b.createUnrelatedPods(ctx, floorCS); err != nil {
		return err
	}
	rss := peakRSS{before: b.ct.peakRSS(), end: map[string]float64{}}
	if err := b.measureIdleLoad(ctx); err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	if err := b.trackPods(cs, stop); err != nil {
		return err
	}

	results, floors, err := b.pairs(ctx, floorCS)
	if err != nil {
		return err
	}
	idle := map[string]idleResult{}
	if !c.skipDS {
		if idle, err = b.idle(ctx); err != nil {
			return err
		}
	}
	b.prof.heap(ctx, "after-idle")
	rss.end = b.ct.peakRSS()
	if err := b.deleteUnrelatedPods(ctx, floorCS); err != nil {
		return err
	}
	printTable(os.Stdout, c, results, floors, idle, rss, time.Since(began))
	logf("NodeAgentSet profiles: %s (go tool pprof -top %s)", profDir, filepath.Join(profDir, "cpu-nodeagentset-1-*.pb.gz"))
	return checkInvariants(c, results)
}

// prepareNodes creates the nodes and waits until the controllers are done with them.
func (b *bench) prepareNodes(ctx context.Context) error {
	if err := b.createNodes(ctx); err != nil {
		return err
	}
	// kube-controller-manager's node lifecycle controller takes in the new nodes first: it records a
	// RegisteredNode event for each (on its first monitor pass, up to --node-monitor-period later),
	// writes that would otherwise land in the first DaemonSet trial.
	if err := b.waitNodesRegistered(ctx); err != nil {
		return err
	}
	return b.settle(ctx)
}

// trackPods feeds the tracker from one informer on every pod of the cluster (the tracker keeps the
// trial's namespace) until stop is closed.
func (b *bench) trackPods(cs *kubernetes.Clientset, stop chan struct{}) error {
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p, _ := o.(*corev1.Pod); b.tr.apply(nil, p) },
		UpdateFunc: func(o, n any) { op, _ := o.(*corev1.Pod); np, _ := n.(*corev1.Pod); b.tr.apply(op, np) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			p, _ := o.(*corev1.Pod)
			b.tr.apply(p, nil)
		},
	}); err != nil {
		return err
	}
	f.Start(stop)
	f.WaitForCacheSync(stop)
	return nil
}

// pairs runs, c.pairs times, the reference and then a DaemonSet and a NodeAgentSet trial, in
// pairOrder.
func (b *bench) pairs(ctx context.Context, floorCS *kubernetes.Clientset) (map[string][]result, []floorResult, error) {
	results := map[string][]result{}
	floors := make([]floorResult, 0, b.c.pairs)
	for i := 1; i <= b.c.pairs; i++ {
		fl, err := b.floor(ctx, floorCS, i)
		if err != nil {
			return nil, nil, err
		}
		floors = append(floors, fl)
		for _, kind := range pairOrder(i, b.c.skipDS) {
			r, err := b.trial(ctx, kind, i)
			if err != nil {
				return nil, nil, err
			}
			results[kind] = append(results[kind], r)
		}
	}
	return results, floors, nil
}

// pairOrder is the order of the i-th pair's trials: the DaemonSet first in odd pairs, the
// NodeAgentSet first in even ones. A trial that always came second would always run right after the
// other trial and its clean-up, and always the longest after its pair's reference; alternating gives
// both trials each position equally often.
func pairOrder(i int, skipDS bool) []string {
	switch {
	case skipDS:
		return []string{kindNAS}
	case i%2 == 0:
		return []string{kindNAS, kindDS}
	}
	return []string{kindDS, kindNAS}
}

func poll(ctx context.Context, timeout time.Duration, cond func() bool) error {
	return pollEvery(ctx, timeout, 100*time.Millisecond, cond)
}

func pollEvery(ctx context.Context, timeout, interval time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
	return nil
}

// emptyDir makes dir an empty directory.
func emptyDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}
