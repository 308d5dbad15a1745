package main

// The soak mode (--soak): the NodeAgentSet controller alone on --nodes nodes for --soak-duration,
// three sets, node churn at --soak-churn-rate events a second (churn.go) and a rollout of one set
// every --soak-rollout-every, in turn. Every soakSampleEvery the controller's RSS, Go heap,
// goroutines and API writes are read; at the end the figures (soakreport.go) say whether its memory
// stayed flat, what a node event costs in writes, and whether every set converged once the churn
// stopped. See docs/benchmarks.md, "Soak".

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

const (
	soakNamespace = "bench-soak"
	// soakSubsetLabel puts a node in the subset set's nodeSelector ("true"); the churn flips it.
	soakSubsetLabel = "bench.nodeagentset.io/soak-subset"
	// soakRolloutAnnotation is the template annotation a rollout changes.
	soakRolloutAnnotation = "bench.nodeagentset.io/rollout"
	soakSampleEvery       = 10 * time.Second
	// soakWindow is the length of the first and last windows compared (the first is the warm-up);
	// shorter soaks use a quarter of their length.
	soakWindow = 5 * time.Minute
	// soakConvergeTimeout bounds the wait for convergence, at the start and after the churn.
	soakConvergeTimeout = 10 * time.Minute
	soakSeed            = 20
)

// soakSeries are the controller's series a soak sample reads; soakSeriesBy those it also reads by a
// label (scrape).
var (
	soakSeries = []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_gc_heap_goal_bytes",
		"nodeagentset_pods_created_total", "nodeagentset_pods_deleted_total"}
	soakSeriesBy = map[string]string{"nodeagentset_pods_deleted_total": "reason"}
)

// soakSet is one of the soak's sets: a plain one, one that surges, one on the subset of the nodes.
type soakSet struct {
	name          string
	surge, subset bool
}

var soakSets = []soakSet{{name: "plain"}, {name: "surge", surge: true}, {name: "subset", subset: true}}

func (s soakSet) object() *nasv1alpha1.NodeAgentSet {
	lbls := map[string]string{"app": "soak-" + s.name}
	tpl := template(image1)
	tpl.Labels = lbls
	if s.subset {
		tpl.Spec.NodeSelector = map[string]string{soakSubsetLabel: "true"}
	}
	tenPercent, zero := intstr.FromString("10%"), intstr.FromInt32(0)
	ru := &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: &tenPercent, MaxSurge: &zero}
	if s.surge {
		ru = &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: &zero, MaxSurge: &tenPercent}
	}
	return &nasv1alpha1.NodeAgentSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: soakNamespace, Name: s.name},
		Spec: nasv1alpha1.NodeAgentSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: tpl,
			UpdateStrategy: nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.NodeAgentSetUpdateStrategyType("RollingUpdate"),
				RollingUpdate: ru},
		},
	}
}

// soak is the state of a running soak, shared by its churn, rollout and sampling loops.
type soak struct {
	b      *bench
	began  time.Time
	events [churnFlip + 1]atomic.Int64 // by churnKind.
	total  atomic.Int64
	// rolloutsStarted counts the rollouts started, inFlight those not yet complete.
	rolloutsStarted atomic.Int64
	inFlight        atomic.Int64
	mu              sync.Mutex
	rollouts        []rolloutRun
	samples         []soakSample
}

// runSoak is the soak mode, on the nodes createNodes made.
func (b *bench) runSoak(ctx context.Context) error {
	load0 := loadAverage()
	if err := b.ensureNamespace(ctx, soakNamespace); err != nil {
		return err
	}
	nums := make([]int, 0, b.c.nodes)
	for i := 1; i <= b.c.nodes; i++ {
		if initialSubset(i) {
			nums = append(nums, i)
		}
	}
	if err := inParallel(32, nums, func(i int) error { return b.setSubset(ctx, i, true) }); err != nil {
		return err
	}
	for _, s := range soakSets {
		if err := b.cl.Create(ctx, s.object()); err != nil {
			return err
		}
	}
	logf("soak: %d sets created; waiting for them to cover the nodes", len(soakSets))
	t0 := time.Now()
	if err := b.waitConverged(ctx); err != nil {
		return fmt.Errorf("soak: initial coverage: %w", err)
	}
	logf("soak: every set covers its nodes (%.1f s); %s of churn at %.1f node events/s, a rollout every %s",
		time.Since(t0).Seconds(), b.c.soakDuration, b.c.soakChurnRate, b.c.soakRolloutEvery)

	s := &soak{b: b, began: time.Now()}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	var sampling sync.WaitGroup
	sampling.Go(func() { s.sampleLoop(sampleCtx) })
	churnCtx, stopChurn := context.WithTimeout(ctx, b.c.soakDuration)
	defer stopChurn()
	var rollouts sync.WaitGroup
	var loops sync.WaitGroup
	loops.Go(func() { s.churnLoop(churnCtx) })
	loops.Go(func() { s.rolloutLoop(churnCtx, &rollouts) })
	loops.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	logf("soak: churn over (%d node events); waiting for %d rollouts under way", s.total.Load(), s.inFlight.Load())
	rollouts.Wait()
	s.sample()
	stopSampling()
	sampling.Wait()

	if err := b.saveSamples(s.samples); err != nil {
		logf("soak: %v", err)
	}
	t1 := time.Now()
	converged := b.waitConverged(ctx)
	if converged == nil {
		logf("soak: every set converged %.1f s after the churn", time.Since(t1).Seconds())
	}
	window := min(soakWindow, b.c.soakDuration/4)
	res := soakResult{nodes: b.c.nodes, sets: len(soakSets), duration: b.c.soakDuration, window: window,
		churnRate: b.c.soakChurnRate, events: map[churnKind]int{}, samples: s.samples, rollouts: s.rollouts,
		converged: converged, load: load0 + " -> " + loadAverage(), commit: b.c.commit}
	for k := range s.events {
		res.events[churnKind(k)] = int(s.events[k].Load())
	}
	if failed := printSoak(os.Stdout, res); len(failed) > 0 {
		return fmt.Errorf("soak: failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// saveSamples writes the samples to soak-samples.csv beside the controller's log.
func (b *bench) saveSamples(samples []soakSample) error {
	path := filepath.Join(b.c.dir, "soak-samples.csv")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeSamples(f, samples); err != nil {
		_ = f.Close()
		return err
	}
	logf("soak: %d samples in %s", len(samples), path)
	return f.Close()
}

// setSubset sets node i's soakSubsetLabel.
func (b *bench) setSubset(ctx context.Context, i int, in bool) error {
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, soakSubsetLabel, strconv.FormatBool(in))
	_, err := b.cs.CoreV1().Nodes().Patch(ctx, fmt.Sprintf("worker-%d", i), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

// churnLoop injects the churner's node events at the churn rate until ctx is done.
func (s *soak) churnLoop(ctx context.Context) {
	ch := newChurner(soakSeed, s.b.c.nodes)
	tick := time.NewTicker(time.Duration(float64(time.Second) / s.b.c.soakChurnRate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			all, subset := ch.eligible()
			logf("soak: churn stopped with %d nodes, %d of them in the subset", all, subset)
			return
		case <-tick.C:
		}
		ev := ch.step()
		if err := s.b.inject(ctx, ev); err != nil && ctx.Err() == nil {
			logf("soak: node event %s worker-%d: %v", ev.kind, ev.node, err)
		}
		s.events[ev.kind].Add(1)
		s.total.Add(1)
	}
}

// inject carries out one node event.
func (b *bench) inject(ctx context.Context, ev churnEvent) error {
	switch ev.kind {
	case churnDelete:
		return b.cs.CoreV1().Nodes().Delete(ctx, fmt.Sprintf("worker-%d", ev.node), metav1.DeleteOptions{})
	case churnFlip:
		return b.setSubset(ctx, ev.node, ev.subset)
	default:
		n := nodeObject(ev.node)
		n.Labels[soakSubsetLabel] = strconv.FormatBool(ev.subset)
		_, err := b.cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		return err
	}
}

// rolloutLoop changes the template of one set every soakRolloutEvery, in turn, until ctx is done;
// each rollout is timed until every eligible node runs a pod of the new template (done counts the
// rollouts under way).
func (s *soak) rolloutLoop(ctx context.Context, done *sync.WaitGroup) {
	tick := time.NewTicker(s.b.c.soakRolloutEvery)
	defer tick.Stop()
	for k := 1; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		set := soakSets[(k-1)%len(soakSets)]
		patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:"%d"}}}}}`, soakRolloutAnnotation, k)
		obj := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: soakNamespace, Name: set.name}}
		// The parent ctx, not the churn's: a rollout started before the end is waited for.
		if err := s.b.cl.Patch(context.WithoutCancel(ctx), obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			logf("soak: rollout %d of %s: %v", k, set.name, err)
			continue
		}
		s.rolloutsStarted.Add(1)
		s.inFlight.Add(1)
		logf("soak: rollout %d of %s (generation %d)", k, set.name, obj.Generation)
		done.Go(func() {
			defer s.inFlight.Add(-1)
			t0 := time.Now()
			run := rolloutRun{set: set.name}
			err := pollEvery(context.WithoutCancel(ctx), s.b.c.timeout, time.Second, func() bool {
				return s.b.rolledOut(context.WithoutCancel(ctx), set.name, obj.Generation)
			})
			if err == nil {
				run.took = time.Since(t0)
				logf("soak: rollout %d of %s done in %.1f s", k, set.name, run.took.Seconds())
			} else {
				logf("soak: rollout %d of %s: %v", k, set.name, err)
			}
			s.mu.Lock()
			s.rollouts = append(s.rollouts, run)
			s.mu.Unlock()
		})
	}
}

// rolledOut: the set's status, for generation gen or later, has every eligible node running a pod of
// the current template.
func (b *bench) rolledOut(ctx context.Context, name string, gen int64) bool {
	var set nasv1alpha1.NodeAgentSet
	if b.cl.Get(ctx, client.ObjectKey{Namespace: soakNamespace, Name: name}, &set) != nil {
		return false
	}
	st := set.Status
	return st.ObservedGeneration >= gen && st.ObservedGeneration == set.Generation && st.UpdatedNumberScheduled == st.DesiredNumberScheduled
}

// sampleLoop samples every soakSampleEvery until ctx is done.
func (s *soak) sampleLoop(ctx context.Context) {
	tick := time.NewTicker(soakSampleEvery)
	defer tick.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sample reads the controller's memory and counters; a failed scrape is logged and skipped.
func (s *soak) sample() {
	snap, err := s.b.ct.snap(kindNAS)
	if err != nil {
		logf("soak: sample: %v", err)
		return
	}
	d := snap.diag
	x := soakSample{
		at:              time.Since(s.began),
		rssMiB:          procStatusMiB(s.b.ct.nas.cmd.Process.Pid, "VmRSS"),
		anonMiB:         procStatusMiB(s.b.ct.nas.cmd.Process.Pid, "RssAnon"),
		heapMiB:         d["go_memstats_heap_inuse_bytes"] / (1 << 20),
		heapGoalMiB:     d["go_gc_heap_goal_bytes"] / (1 << 20),
		goroutines:      d["go_goroutines"],
		writes:          writes(snap.req),
		req:             snap.req,
		podCreates:      d["nodeagentset_pods_created_total"],
		podDeletes:      d["nodeagentset_pods_deleted_total"],
		rolloutDeletes:  d["nodeagentset_pods_deleted_total/Outdated"] + d["nodeagentset_pods_deleted_total/SurgeReplaced"],
		statusWrites:    s.b.statusWrites(),
		nodeEvents:      int(s.total.Load()),
		rolloutsStarted: int(s.rolloutsStarted.Load()),
		rollingOut:      s.inFlight.Load() > 0,
	}
	s.mu.Lock()
	if x.statusWrites < 0 && len(s.samples) > 0 {
		// The API server's metrics did not answer: the count stands where it was.
		x.statusWrites = s.samples[len(s.samples)-1].statusWrites
	}
	s.samples = append(s.samples, x)
	s.mu.Unlock()
	logf("soak %5.0fs: RSS %.0f MiB (anonymous %.0f), heap %.1f MiB (goal %.1f), %.0f goroutines, %.0f writes, %d node events, %d rollouts started",
		x.at.Seconds(), x.rssMiB, x.anonMiB, x.heapMiB, x.heapGoalMiB, x.goroutines, x.writes, x.nodeEvents, x.rolloutsStarted)
}

// statusWrites is the API server's count of writes to NodeAgentSet status, which only the controller
// makes (apiserver_request_total of resource nodeagentsets, subresource status); -1 when unknown.
func (b *bench) statusWrites() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := b.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return -1
	}
	return statusWritesIn(string(raw))
}

// statusWritesIn sums, in the API server's metrics, the write requests to NodeAgentSet status.
func statusWritesIn(metrics string) float64 {
	t := 0.0
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") || labelValue(line, "resource") != "nodeagentsets" ||
			labelValue(line, "subresource") != "status" {
			continue
		}
		if v := labelValue(line, "verb"); v != "PATCH" && v != "PUT" && v != "APPLY" {
			continue
		}
		if x, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			t += x
		}
	}
	return t
}

// waitConverged waits until every soak set has converged (checkConverged), at most
// soakConvergeTimeout; the error says what is missing at the end.
func (b *bench) waitConverged(ctx context.Context) error {
	var last error
	err := pollEvery(ctx, soakConvergeTimeout, 2*time.Second, func() bool {
		last = b.converged(ctx)
		return last == nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w: %w", err, last)
	}
	return err
}

// converged lists the sets, nodes and pods and checks them.
func (b *bench) converged(ctx context.Context) error {
	var sets nasv1alpha1.NodeAgentSetList
	if err := b.cl.List(ctx, &sets, client.InNamespace(soakNamespace)); err != nil {
		return err
	}
	nodes, err := b.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return err
	}
	pods, err := b.cs.CoreV1().Pods(soakNamespace).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return err
	}
	return checkConverged(sets.Items, nodes.Items, pods.Items)
}

// checkConverged: for every set, its status is of its generation, each node its template's
// nodeSelector matches runs exactly one pod of the set, Ready, of the set's update revision, and no
// other node runs one.
func checkConverged(sets []nasv1alpha1.NodeAgentSet, nodes []corev1.Node, pods []corev1.Pod) error {
	var errs []error
	for i := range sets {
		set := &sets[i]
		if set.Status.ObservedGeneration != set.Generation || set.Status.UpdateRevision == "" {
			errs = append(errs, fmt.Errorf("%s: status of generation %d, want %d", set.Name, set.Status.ObservedGeneration, set.Generation))
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		eligible := map[string]bool{}
		nodeSel := labels.SelectorFromSet(set.Spec.Template.Spec.NodeSelector)
		for _, n := range nodes {
			if nodeSel.Matches(labels.Set(n.Labels)) {
				eligible[n.Name] = true
			}
		}
		good := map[string]int{}
		var bad, elsewhere []string
		for j := range pods {
			p := &pods[j]
			if !sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			switch {
			case !eligible[p.Spec.NodeName]:
				elsewhere = append(elsewhere, p.Name+" on "+p.Spec.NodeName)
			case podReady(p) && p.Labels[appsv1.ControllerRevisionHashLabelKey] == set.Status.UpdateRevision:
				good[p.Spec.NodeName]++
			default:
				bad = append(bad, p.Name)
			}
		}
		var missing []string
		for n := range eligible {
			if good[n] != 1 {
				missing = append(missing, n)
			}
		}
		if len(missing)+len(bad)+len(elsewhere) > 0 {
			errs = append(errs, fmt.Errorf("%s: %d of %d eligible nodes without exactly one Ready pod of revision %s (%s), "+
				"%d pods not Ready or of an older revision (%s), %d pods on other nodes (%s)",
				set.Name, len(missing), len(eligible), set.Status.UpdateRevision, first(missing), len(bad), first(bad), len(elsewhere), first(elsewhere)))
		}
	}
	return errors.Join(errs...)
}

// first names the first few of xs.
func first(xs []string) string {
	if len(xs) > 3 {
		return strings.Join(xs[:3], ", ") + ", ..."
	}
	return strings.Join(xs, ", ")
}

// loadAverage is the machine's load averages over 1, 5 and 15 minutes.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// gitCommit is the commit of the tree the controller was built from, with "-dirty" when it has
// uncommitted changes.
func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "-dirty"
	}
	return c
}
