package planner

// Rollout simulation: whole rollouts replayed against a fake world (simworld_test.go) that applies each
// plan, ages pods to Ready and moves a clock. Every step is checked against the invariants of
// upstream's rolling update (reference rules 43-49, the surge invariants of section 3.5) and of our
// additions (partition, pause, progress); every run is compared with a golden trace under testdata/.
//
// Rewrite the traces after a deliberate change, then read the diff:
//
//	go test ./internal/planner -run TestRolloutSimulation -update

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden traces of TestRolloutSimulation under testdata/")

// simScenario is one simulated rollout: a world, then phases.
type simScenario struct {
	name  string
	about string
	// nodes is how many nodes (node-0, node-1, ...) run a pod of v1 at the start.
	nodes           int
	strategy        nasv1alpha1.NodeAgentSetUpdateStrategy
	minReadySeconds int32
	// progressDeadlineSeconds is handed to the set; the planner ignores it, the stall scenario checks
	// that the deadline would fire.
	progressDeadlineSeconds *int32
	budget                  simBudget
	kubelet                 simKubelet
	// oldUnready: the v1 pods are not Ready at the start.
	oldUnready bool
	phases     []simPhase
}

// simPhase is a change to the world, then steps until the world settles.
type simPhase struct {
	title  string
	change func(w *simWorld)
	// steps, when set, runs exactly that many steps instead of running until the world settles.
	steps int
	// atLeast keeps a settled world running until that much time has passed.
	atLeast time.Duration
	// check runs at the end of the phase.
	check func(t *testing.T, w *simWorld)
}

func TestRolloutSimulation(t *testing.T) {
	for _, sc := range simScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			w := newSimWorld(t, sc)
			for _, ph := range sc.phases {
				w.runPhase(ph)
				if t.Failed() {
					t.FailNow()
				}
			}
			assertGolden(t, sc.name, w.trace.String())
		})
	}
}

func simScenarios() []simScenario {
	return []simScenario{
		{
			name: "max-unavailable-2", about: "5 nodes, maxUnavailable 2 (3.2 #1)",
			nodes: 5, strategy: maxUnavailable(intOrStr(2)), budget: simBudget{maxUnavailable: 2},
			kubelet: simKubelet{readyAfter: 3 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(2, 0))},
		},
		{
			name: "max-surge-2", about: "5 nodes, maxSurge 2, maxUnavailable 0 (3.2 #2)",
			nodes: 5, strategy: maxSurge(intOrStr(2)), budget: simBudget{maxSurge: 2},
			kubelet: simKubelet{readyAfter: 3 * time.Second, terminationDelay: 2 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(0, 2))},
		},
		{
			name: "all-old-unready", about: "5 nodes, maxUnavailable 1, no v1 pod Ready: all are replaced at once, outside the budget (3.2 #9)",
			nodes: 5, strategy: maxUnavailable(intOrStr(1)), budget: simBudget{maxUnavailable: 1}, oldUnready: true,
			kubelet: simKubelet{readyAfter: 3 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(0, 0))},
		},
		{
			name: "all-old-unready-max-surge", about: "5 nodes, maxSurge 1, no v1 pod Ready: all get a v2 pod at once, outside the budget (3.2 #10)",
			nodes: 5, strategy: maxSurge(intOrStr(1)), budget: simBudget{maxSurge: 1}, oldUnready: true,
			kubelet: simKubelet{readyAfter: 3 * time.Second, terminationDelay: 2 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(0, 0))},
		},
		stallScenario(),
		{
			name: "new-pods-never-ready-max-surge", about: "5 nodes, maxSurge 1, v2 never Ready: one surge pod waits forever, no node loses its agent",
			nodes: 5, strategy: maxSurge(intOrStr(1)), budget: simBudget{maxSurge: 1}, progressDeadlineSeconds: ptr.To[int32](600),
			kubelet: simKubelet{readyAfter: 3 * time.Second, neverReady: "agent:bad"},
			phases: []simPhase{{
				title: "template v1 -> bad", change: func(w *simWorld) { w.setTemplate("agent:bad") }, atLeast: 620 * time.Second,
				check: func(t *testing.T, w *simWorld) {
					checkLayout(t, w, "node-0=v1+bad node-1=v1 node-2=v1 node-3=v1 node-4=v1")
					checkStalled(t, w, "node-0")
					if s := w.lastPlan.Status; s.NumberAvailable != 5 || w.peakSurge != 1 {
						t.Errorf("status %+v, peak surge %d: want all 5 nodes available and 1 surge pod", s, w.peakSurge)
					}
				},
			}},
		},
		partitionScenario(),
		pauseScenario(),
		{
			name: "min-ready-seconds-10", about: "3 nodes, maxUnavailable 1, minReadySeconds 10: a node counts only once its pod is available",
			nodes: 3, strategy: maxUnavailable(intOrStr(1)), minReadySeconds: 10, budget: simBudget{maxUnavailable: 1},
			kubelet: simKubelet{readyAfter: 2 * time.Second},
			phases: []simPhase{updateToV2(func(t *testing.T, w *simWorld) {
				checkRolledOut(1, 0)(t, w)
				// Each new pod, on the step it turns Ready, makes the planner wake up exactly when it becomes
				// available (checked at every step); here: that happened once per node.
				if w.requeues[10*time.Second] != 3 {
					t.Errorf("RequeueAfter was 10s on %d steps, want 3 (one per new pod turning Ready): %v", w.requeues[10*time.Second], w.requeues)
				}
			})},
		},
		{
			name: "max-unavailable-10-percent-of-20", about: "20 nodes, maxUnavailable 10% = 2 nodes",
			nodes: 20, strategy: maxUnavailable(intstr.FromString("10%")), budget: simBudget{maxUnavailable: 2},
			kubelet: simKubelet{readyAfter: 3 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(2, 0))},
		},
		{
			name: "max-unavailable-10-percent-of-11", about: "11 nodes, maxUnavailable 10% = 1.1 nodes, rounded up to 2 (rule 45)",
			nodes: 11, strategy: maxUnavailable(intstr.FromString("10%")), budget: simBudget{maxUnavailable: 2},
			kubelet: simKubelet{readyAfter: 3 * time.Second, terminationDelay: 2 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(2, 0))},
		},
		{
			name:  "max-surge-20-percent-min-ready-10",
			about: "7 nodes, maxSurge 20% = 1.4 nodes, rounded up to 2, minReadySeconds 10, slow termination (the surge e2e test of 3.5)",
			nodes: 7, strategy: maxSurge(intstr.FromString("20%")), minReadySeconds: 10, budget: simBudget{maxSurge: 2},
			kubelet: simKubelet{readyAfter: 3 * time.Second, terminationDelay: 15 * time.Second},
			phases:  []simPhase{updateToV2(checkRolledOut(0, 2))},
		},
	}
}

// stallScenario: the new template never becomes Ready. The rollout stops after maxUnavailable nodes,
// Rollout.Stuck names them, LastProgress stops moving and the progress deadline passes; rolling back
// replaces only the stuck pods.
func stallScenario() simScenario {
	var untouched []string
	return simScenario{
		name: "new-pods-never-ready", about: "5 nodes, maxUnavailable 2, v2 never Ready; then a rollback to v1 (3.2 #4, the rollback e2e test of 3.5)",
		nodes: 5, strategy: maxUnavailable(intOrStr(2)), budget: simBudget{maxUnavailable: 2}, progressDeadlineSeconds: ptr.To[int32](600),
		kubelet: simKubelet{readyAfter: 3 * time.Second, neverReady: "agent:bad"},
		phases: []simPhase{
			{
				title: "template v1 -> bad", atLeast: 700 * time.Second,
				change: func(w *simWorld) {
					untouched = []string{w.podOn("node-2"), w.podOn("node-3"), w.podOn("node-4")}
					w.setTemplate("agent:bad")
				},
				check: func(t *testing.T, w *simWorld) {
					checkLayout(t, w, "node-0=bad node-1=bad node-2=v1 node-3=v1 node-4=v1")
					checkStalled(t, w, "node-0", "node-1")
				},
			},
			{
				title:  "rollback: template bad -> v1",
				change: func(w *simWorld) { w.setTemplate("agent:v1") },
				check: func(t *testing.T, w *simWorld) {
					checkRolledOut(0, 0)(t, w)
					got := []string{w.podOn("node-2"), w.podOn("node-3"), w.podOn("node-4")}
					if !slices.Equal(got, untouched) {
						t.Errorf("pods on node-2..4 are %v, want the same v1 pods as before the rollout %v (no restart)", got, untouched)
					}
				},
			},
		},
	}
}

// checkStalled checks a rollout that stopped: the nodes waiting for their new pod are stuck, and
// Rollout.LastProgress has not moved since that pod was created, for longer than the progress deadline.
func checkStalled(t *testing.T, w *simWorld, nodes ...string) {
	t.Helper()
	r := w.lastPlan.Rollout
	stuck := make([]string, 0, len(r.Stuck))
	for _, s := range r.Stuck {
		stuck = append(stuck, s.Node+": "+string(s.Reason.Code))
	}
	want := make([]string, 0, len(nodes))
	created := time.Time{}
	for _, n := range nodes {
		want = append(want, n+": "+string(ReasonPodNotReady))
		for _, pod := range w.podsByNode()[n] {
			if IsPodUpdated(pod, w.hash) && pod.CreationTimestamp.After(created) {
				created = pod.CreationTimestamp.Time
			}
		}
	}
	if !slices.Equal(stuck, want) {
		t.Errorf("stuck %v, want %v", stuck, want)
	}
	deadline := time.Duration(*w.set.Spec.ProgressDeadlineSeconds) * time.Second
	last := w.now.Add(-simTick)
	if r.Complete || r.Paused || last.Sub(r.LastProgress) <= deadline {
		t.Errorf("at %s: rollout complete %t paused %t, last progress %s: the progress deadline (%s) would not fire",
			w.offset(last), r.Complete, r.Paused, w.offset(r.LastProgress), deadline)
	}
	if !r.LastProgress.Equal(created) || last.Sub(w.progressSince) < deadline {
		t.Errorf("LastProgress %s, unchanged since %s; want %s (the last new pod's creation), unchanged for longer than %s",
			w.offset(r.LastProgress), w.offset(w.progressSince), w.offset(created), deadline)
	}
}

// partitionScenario: partition 2 of 5 updates node-0..2 and leaves node-3 and node-4 alone; lowering it
// to 0 completes the rollout.
func partitionScenario() simScenario {
	var kept []string
	strategy := maxUnavailable(intOrStr(1))
	strategy.RollingUpdate.Partition = ptr.To(intOrStr(2))
	return simScenario{
		name: "partition-2-of-5", about: "5 nodes, maxUnavailable 1, partition 2; then partition 0",
		nodes: 5, strategy: strategy, budget: simBudget{maxUnavailable: 1},
		kubelet: simKubelet{readyAfter: 3 * time.Second},
		phases: []simPhase{
			{
				title: "template v1 -> v2",
				change: func(w *simWorld) {
					kept = []string{w.podOn("node-3"), w.podOn("node-4")}
					w.setTemplate("agent:v2")
				},
				check: func(t *testing.T, w *simWorld) {
					checkLayout(t, w, "node-0=v2 node-1=v2 node-2=v2 node-3=v1 node-4=v1")
					if got := []string{w.podOn("node-3"), w.podOn("node-4")}; !slices.Equal(got, kept) {
						t.Errorf("pods on node-3, node-4 are %v, want the untouched %v", got, kept)
					}
					r := w.lastPlan.Rollout
					if r.Target != 3 || r.Partition != 2 || r.FirstPartitionedNode != "node-3" || r.UpdatedAvailable != 3 || !r.Complete {
						t.Errorf("rollout %+v, want 3/3 complete with partition 2 from node-3", r)
					}
					if s := w.lastPlan.Status; s.UpdatedNumberScheduled != 3 || s.NumberAvailable != 5 {
						t.Errorf("status %+v, want 3 updated, 5 available", s)
					}
					if w.peakUnavailable != 1 {
						t.Errorf("peak unavailable %d, want 1", w.peakUnavailable)
					}
				},
			},
			{
				title:  "partition 2 -> 0",
				change: func(w *simWorld) { w.setPartition(0) },
				check:  checkRolledOut(1, 0),
			},
		},
	}
}

// pauseScenario: pausing mid-rollout lets the replacement under way finish and replaces nothing more; a
// node that joins meanwhile gets a pod of the new template; resuming completes the rollout.
func pauseScenario() simScenario {
	var held []string
	heldNodes := []string{"node-1", "node-2", "node-3", "node-4"}
	podsOn := func(w *simWorld) []string {
		out := make([]string, 0, len(heldNodes))
		for _, n := range heldNodes {
			out = append(out, w.podOn(n))
		}
		return out
	}
	checkHeld := func(t *testing.T, w *simWorld) {
		if got := podsOn(w); !slices.Equal(got, held) {
			t.Errorf("pods on %v are %v, want the v1 pods %v kept while paused", heldNodes, got, held)
		}
	}
	return simScenario{
		name: "pause", about: "5 nodes, maxUnavailable 1: paused after the first replacement began, node-5 joins, resumed",
		nodes: 5, strategy: maxUnavailable(intOrStr(1)), budget: simBudget{maxUnavailable: 1},
		kubelet: simKubelet{readyAfter: 3 * time.Second},
		phases: []simPhase{
			{
				title: "template v1 -> v2, two steps", steps: 2,
				change: func(w *simWorld) {
					held = podsOn(w)
					w.setTemplate("agent:v2")
				},
				check: func(t *testing.T, w *simWorld) {
					checkLayout(t, w, "node-0=v2 node-1=v1 node-2=v1 node-3=v1 node-4=v1")
				},
			},
			{
				title: "pause", atLeast: 30 * time.Second,
				change: func(w *simWorld) { w.setPaused(true) },
				check: func(t *testing.T, w *simWorld) {
					checkLayout(t, w, "node-0=v2 node-1=v1 node-2=v1 node-3=v1 node-4=v1")
					checkHeld(t, w)
					if r := w.lastPlan.Rollout; !r.Paused || r.UpdatedAvailable != 1 || r.Complete {
						t.Errorf("rollout %+v, want paused at 1/5", r)
					}
				},
			},
			{
				title: "node-5 joins", atLeast: 10 * time.Second,
				change: func(w *simWorld) { w.addNode("node-5") },
				check: func(t *testing.T, w *simWorld) {
					checkLayout(t, w, "node-0=v2 node-1=v1 node-2=v1 node-3=v1 node-4=v1 node-5=v2")
					checkHeld(t, w)
				},
			},
			{
				title:  "resume",
				change: func(w *simWorld) { w.setPaused(false) },
				check:  checkRolledOut(1, 0),
			},
		},
	}
}

// updateToV2 is the phase that changes the template's image to agent:v2 and runs the rollout.
func updateToV2(check func(t *testing.T, w *simWorld)) simPhase {
	return simPhase{
		title:  "template v1 -> v2",
		change: func(w *simWorld) { w.setTemplate("agent:v2") },
		check:  check,
	}
}

// checkRolledOut checks the end of a complete rollout: one available pod of the current template on
// every node, and the budgets used as far as expected (a budget never reached proves nothing).
func checkRolledOut(peakUnavailable, peakSurge int) func(t *testing.T, w *simWorld) {
	return func(t *testing.T, w *simWorld) {
		t.Helper()
		names := allNodeNames(w.nodes)
		slices.Sort(names)
		want := make([]string, 0, len(names))
		for _, n := range names {
			want = append(want, n+"="+w.revisions[w.hash])
		}
		checkLayout(t, w, strings.Join(want, " "))
		r, s := w.lastPlan.Rollout, w.lastPlan.Status
		if !r.Complete || len(r.Stuck) > 0 || int(r.UpdatedAvailable) != len(w.nodes) {
			t.Errorf("rollout %+v, want complete on all %d nodes", r, len(w.nodes))
		}
		if n := int32(len(w.nodes)); s.NumberAvailable != n || s.UpdatedNumberScheduled != n || w.lastPlan.CurrentRevision != w.hash {
			t.Errorf("status %+v, current revision %s: want all %d nodes updated and available on %s", s, w.lastPlan.CurrentRevision, n, w.hash)
		}
		if w.peakUnavailable != peakUnavailable || w.peakSurge != peakSurge {
			t.Errorf("peak unavailable %d, peak surge %d; want %d, %d", w.peakUnavailable, w.peakSurge, peakUnavailable, peakSurge)
		}
	}
}

func checkLayout(t *testing.T, w *simWorld, want string) {
	t.Helper()
	if got := w.layout(); got != want {
		t.Errorf("pods at %s:\n got  %s\n want %s", w.offset(w.now), got, want)
	}
}

// assertGolden compares a trace with testdata/<name>.golden, or rewrites the file with -update.
func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/planner -run TestRolloutSimulation -update to write it)", err)
	}
	want := string(raw)
	if got == want {
		return
	}
	gotLines, wantLines := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(gotLines), len(wantLines)); i++ {
		g, wl := line(gotLines, i), line(wantLines, i)
		if g != wl {
			t.Fatalf("%s differs from the simulation at line %d:\n got  %s\n want %s\n(if the change is deliberate, rerun with -update and review the diff)",
				path, i+1, g, wl)
		}
	}
}

func line(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "<end of trace>"
}
