package main

// The readiness gate mode (--gate): how long after its agent is available does a joining node lose
// its gate taint, and with how many node writes (docs/node-readiness-gate.md).

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

const (
	gateNamespace = "bench-gate"
	gateKey       = "readiness.nodeagentset.io/bench"
	gateLabel     = "bench.nodeagentset.io/gate"
)

// gateTracker records, per node, when the set's pod on it became Ready and when its gate taint went,
// and counts the node updates that changed the gate taint (one per node write that landed).
type gateTracker struct {
	mu        sync.Mutex
	readyAt   map[string]time.Time
	liftedAt  map[string]time.Time
	gateWrite int
}

func hasGateTaint(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == gateKey {
			return true
		}
	}
	return false
}

func (g *gateTracker) pod(p *corev1.Pod) {
	if p == nil || p.Namespace != gateNamespace || p.Spec.NodeName == "" || !podReady(p) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.readyAt[p.Spec.NodeName]; !ok {
		g.readyAt[p.Spec.NodeName] = time.Now()
	}
}

func (g *gateTracker) node(old, cur *corev1.Node) {
	if cur == nil || cur.Labels[gateLabel] != "true" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if old != nil && hasGateTaint(old) != hasGateTaint(cur) {
		g.gateWrite++
	}
	if !hasGateTaint(cur) {
		if _, ok := g.liftedAt[cur.Name]; !ok {
			g.liftedAt[cur.Name] = time.Now()
		}
	}
}

func (g *gateTracker) lifted() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.liftedAt)
}

// runGate is the gate mode: a Bootstrap set over the nodes labelled gateLabel, then c.nodes nodes
// joining with the gate taint, all at once.
func (b *bench) runGate(ctx context.Context) error {
	if err := b.ensureNamespace(ctx, gateNamespace); err != nil {
		return err
	}
	set := &nasv1alpha1.NodeAgentSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: gateNamespace, Name: "gate"},
		Spec: nasv1alpha1.NodeAgentSetSpec{
			Selector:          &metav1.LabelSelector{MatchLabels: map[string]string{"app": "bench-agent"}},
			Template:          template(image2),
			NodeReadinessGate: &nasv1alpha1.NodeReadinessGate{TaintKey: gateKey, Mode: nasv1alpha1.BootstrapGateMode},
		},
	}
	set.Spec.Template.Spec.NodeSelector = map[string]string{gateLabel: "true"}
	if err := b.cl.Create(ctx, set); err != nil {
		return err
	}
	g := &gateTracker{readyAt: map[string]time.Time{}, liftedAt: map[string]time.Time{}}
	stop := make(chan struct{})
	defer close(stop)
	f := informers.NewSharedInformerFactory(b.cs, 0)
	if _, err := f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p, _ := o.(*corev1.Pod); g.pod(p) },
		UpdateFunc: func(_, n any) { p, _ := n.(*corev1.Pod); g.pod(p) },
	}); err != nil {
		return err
	}
	if _, err := f.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { n, _ := o.(*corev1.Node); g.node(nil, n) },
		UpdateFunc: func(o, n any) { on, _ := o.(*corev1.Node); nn, _ := n.(*corev1.Node); g.node(on, nn) },
	}); err != nil {
		return err
	}
	f.Start(stop)
	f.WaitForCacheSync(stop)

	logf("gate: %d nodes join with taint %s:NoSchedule", b.c.nodes, gateKey)
	began := time.Now()
	nums := make([]int, 0, b.c.nodes)
	for i := 1; i <= b.c.nodes; i++ {
		nums = append(nums, i)
	}
	if err := inParallel(32, nums, func(i int) error {
		n := nodeObject(i)
		n.Labels[gateLabel] = "true"
		n.Spec.Taints = []corev1.Taint{{Key: gateKey, Effect: corev1.TaintEffectNoSchedule}}
		_, err := b.cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := poll(ctx, b.c.timeout, func() bool { return g.lifted() == b.c.nodes }); err != nil {
		return fmt.Errorf("waiting for %d gates to lift (%d lifted): %w", b.c.nodes, g.lifted(), err)
	}
	// Late node updates (a second write) would show here.
	time.Sleep(2 * time.Second)
	return printGate(os.Stdout, b.c.nodes, began, g)
}

// printGate prints the gate mode's table and fails when a gate lifted before its agent was Ready or a
// node took more than one gate write.
func printGate(w io.Writer, nodes int, began time.Time, g *gateTracker) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var lastReady, lastLift time.Time
	gaps := make([]float64, 0, nodes)
	early := 0
	for node, lift := range g.liftedAt {
		ready, ok := g.readyAt[node]
		if !ok || lift.Before(ready) {
			early++
			continue
		}
		gaps = append(gaps, lift.Sub(ready).Seconds())
		lastReady, lastLift = latestTime(lastReady, ready), latestTime(lastLift, lift)
	}
	sort.Float64s(gaps)
	pct := func(p float64) float64 {
		if len(gaps) == 0 {
			return 0
		}
		return gaps[min(len(gaps)-1, int(p*float64(len(gaps))))]
	}
	_, _ = fmt.Fprintf(w, "\nReadiness gate: %d nodes join with the taint\n\n", nodes)
	_, _ = fmt.Fprintf(w, "| | seconds |\n|---|---|\n")
	_, _ = fmt.Fprintf(w, "| every agent available (the floor) | %.1f |\n", lastReady.Sub(began).Seconds())
	_, _ = fmt.Fprintf(w, "| every gate lifted | %.1f |\n", lastLift.Sub(began).Seconds())
	_, _ = fmt.Fprintf(w, "| gap | %.1f |\n", lastLift.Sub(lastReady).Seconds())
	_, _ = fmt.Fprintf(w, "| per node, agent Ready to gate lifted: p50 / p99 / max | %.2f / %.2f / %.2f |\n", pct(0.5), pct(0.99), pct(1))
	_, _ = fmt.Fprintf(w, "\nnode writes that changed the gate taint: %d for %d nodes\n", g.gateWrite, nodes)
	if early > 0 {
		return fmt.Errorf("%d gates lifted before the node's agent was Ready", early)
	}
	if g.gateWrite > nodes {
		return fmt.Errorf("%d gate writes for %d nodes: more than one per node", g.gateWrite, nodes)
	}
	return nil
}

func latestTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
