package planner

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// canaryWorld is a small simulated cluster for canary rollouts: every step the planner plans, the
// controller writes status.canary and carries out the plan, pods become Ready a second after they
// are created, and pods of a bad revision restart their container every step. After every step it
// checks the canary's invariant: before the canary succeeds, no more nodes run the revision under
// test than it lists.
type canaryWorld struct {
	t     *testing.T
	set   *nasv1alpha1.NodeAgentSet
	nodes []*corev1.Node
	pods  []*corev1.Pod
	now   time.Time
	// bad names the revisions whose pods crash (a restart a step); stuck those whose pods never get Ready.
	bad, stuck map[string]bool
	seq        int
	// rolloutStartedAt is Input.RolloutStartedAt.
	rolloutStartedAt time.Time
	// older is the set as its older revision (oldHash) was, when it matters (withGPUOverride).
	older *nasv1alpha1.NodeAgentSet
}

func canaryStrategy(c nasv1alpha1.CanaryStrategy) nasv1alpha1.NodeAgentSetUpdateStrategy {
	one := intstr.FromInt32(1)
	if c.Duration == nil {
		c.Duration = &metav1.Duration{Duration: time.Minute}
	}
	return nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.RollingUpdateStrategyType,
		RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: &one, Canary: &c}}
}

// newCanaryWorld runs n nodes with available pods of oldHash.
func newCanaryWorld(t *testing.T, n int, c nasv1alpha1.CanaryStrategy) *canaryWorld {
	w := &canaryWorld{t: t, set: newSet(withStrategy(canaryStrategy(c))), nodes: newNodes(0, n, nil), now: t0, bad: map[string]bool{}, stuck: map[string]bool{}}
	for _, node := range w.nodes {
		w.addPod(node.Name, oldHash, true)
	}
	return w
}

func (w *canaryWorld) addPod(node, hash string, isReady bool) {
	w.seq++
	p := newPod(fmt.Sprintf("pod-%03d", w.seq), node, withHash(hash), created(w.now))
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent"}}
	if isReady {
		readySince(w.now.Add(-time.Hour))(p)
	} else {
		notReady(p)
	}
	w.pods = append(w.pods, p)
}

func (w *canaryWorld) input() Input {
	in := Input{Set: w.set, Hash: curHash, Nodes: w.nodes, Pods: w.pods, Now: w.now, RolloutStartedAt: latest(t0, w.rolloutStartedAt),
		Template: TemplateVerdict{State: TemplateAccepted}, Revisions: map[string]*corev1.PodTemplateSpec{oldHash: {}}}
	if w.older != nil {
		in.Revisions[oldHash] = &w.older.Spec.Template
		in.RevisionOverrides = map[string][]nasv1alpha1.NodeOverride{oldHash: w.older.Spec.NodeOverrides}
	}
	return in
}

// step plans, writes the verdict, carries out the plan, and moves time on a second.
func (w *canaryWorld) step() Plan {
	w.t.Helper()
	p := Compute(w.input())
	w.set.Status.Canary = p.Canary
	deleted := map[*corev1.Pod]bool{}
	for _, d := range p.Deletes {
		deleted[d.Pod] = true
	}
	kept := w.pods[:0]
	for _, pod := range w.pods {
		if !deleted[pod] {
			kept = append(kept, pod)
		}
	}
	w.pods = kept
	for _, r := range p.Relabels {
		r.Pod.Labels[nasv1alpha1.ControllerRevisionHashLabel] = curHash
	}
	for _, node := range p.Creates {
		hash := curHash
		if h, ok := p.CreateRevisions[node]; ok {
			hash = h
		}
		w.addPod(node, hash, false)
		// The controller builds a pod from its node's override: the current revision's, or that of the
		// revision a canary holds the node at.
		o := p.Overrides[node]
		if hash != curHash {
			o = p.CreateOverrides[node]
		}
		if o.SpecHash != "" {
			pod := w.pods[len(w.pods)-1]
			pod.Labels[OverrideLabel], pod.Labels[PodSpecHashLabel] = o.Name, o.SpecHash
		}
	}
	w.now = w.now.Add(time.Second)
	for _, pod := range w.pods {
		hash := pod.Labels[nasv1alpha1.ControllerRevisionHashLabel]
		if w.bad[hash] {
			pod.Status.ContainerStatuses[0].RestartCount++
		}
		if !IsPodReady(pod) && !w.stuck[hash] {
			readySince(w.now)(pod)
		}
	}
	w.checkInvariant()
	return p
}

// checkInvariant: before the canary succeeds, only canary nodes run the revision under test.
func (w *canaryWorld) checkInvariant() {
	w.t.Helper()
	st := w.set.Status.Canary
	if st == nil || st.Phase == nasv1alpha1.CanarySucceeded {
		return
	}
	canary := map[string]bool{}
	for _, n := range st.Nodes {
		canary[n] = true
	}
	for _, pod := range w.pods {
		if pod.Labels[nasv1alpha1.ControllerRevisionHashLabel] == curHash && !canary[pod.Spec.NodeName] {
			w.t.Fatalf("at %s, phase %s: node %s runs the revision under test outside the canary %v", w.now.Sub(t0), st.Phase,
				pod.Spec.NodeName, st.Nodes)
		}
	}
}

// runFor steps for d of simulated time.
func (w *canaryWorld) runFor(d time.Duration) Plan {
	w.t.Helper()
	var p Plan
	for end := w.now.Add(d); w.now.Before(end); {
		p = w.step()
	}
	return p
}

// hashes maps every node to the revisions its pods run, sorted.
func (w *canaryWorld) hashes() map[string]string {
	out := map[string]string{}
	for _, pod := range w.pods {
		h := pod.Labels[nasv1alpha1.ControllerRevisionHashLabel]
		if out[pod.Spec.NodeName] != "" {
			h = out[pod.Spec.NodeName] + "+" + h
		}
		out[pod.Spec.NodeName] = h
	}
	return out
}

func (w *canaryWorld) count(hash string) int {
	n := 0
	for _, h := range w.hashes() {
		if h == hash {
			n++
		}
	}
	return n
}

func (w *canaryWorld) wantPhase(want nasv1alpha1.CanaryPhase) {
	w.t.Helper()
	if got := w.set.Status.Canary; got == nil || got.Phase != want {
		w.t.Fatalf("at %s: canary %+v, want phase %s", w.now.Sub(t0), got, want)
	}
}

func TestCanaryGoodRevisionPassesThenRollsOut(t *testing.T) {
	two := intstr.FromInt32(2)
	w := newCanaryWorld(t, 5, nasv1alpha1.CanaryStrategy{Nodes: &two, MaxRestarts: 1})
	w.runFor(10 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryWatching)
	if got := w.set.Status.Canary.Nodes; fmt.Sprint(got) != "[node-0 node-1]" {
		t.Fatalf("canary nodes %v, want the first two by name", got)
	}
	if n := w.count(curHash); n != 2 {
		t.Fatalf("%d nodes run the new revision during the watch, want 2", n)
	}
	p := w.runFor(time.Minute)
	w.wantPhase(nasv1alpha1.CanarySucceeded)
	if p.Rollout.Phase == RolloutCanary {
		t.Fatalf("rollout phase %s after the canary succeeded", p.Rollout.Phase)
	}
	p = w.runFor(20 * time.Second)
	if n := w.count(curHash); n != 5 || !p.Rollout.Complete {
		t.Fatalf("%d of 5 nodes run the new revision, complete %v: %v", n, p.Rollout.Complete, w.hashes())
	}
}

func TestCanaryRequeuesAtTheWatchEnd(t *testing.T) {
	w := newCanaryWorld(t, 3, nasv1alpha1.CanaryStrategy{Duration: &metav1.Duration{Duration: 10 * time.Minute}})
	w.runFor(5 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryWatching)
	p := Compute(w.input())
	end := w.set.Status.Canary.WatchStartedAt.Add(10 * time.Minute)
	if got := w.now.Add(p.RequeueAfter); got.After(end) {
		t.Fatalf("requeue at %s, after the watch ends at %s", got, end)
	}
}

func TestCanaryRestartsFailItAndItGoesNoFurther(t *testing.T) {
	w := newCanaryWorld(t, 5, nasv1alpha1.CanaryStrategy{MaxRestarts: 2})
	w.runFor(3 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryWatching)
	w.bad[curHash] = true
	p := w.runFor(5 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryFailed)
	if st := w.set.Status.Canary; st.Reason != nasv1alpha1.CanaryTooManyRestarts || st.Restarts != 3 {
		t.Fatalf("canary %+v, want TooManyRestarts after 3 restarts", st)
	}
	if p.Rollout.Phase != RolloutCanaryFailed {
		t.Fatalf("rollout phase %s, want %s", p.Rollout.Phase, RolloutCanaryFailed)
	}
	w.runFor(2 * time.Minute)
	if n := w.count(curHash); n != 1 {
		t.Fatalf("%d nodes run the failed revision, want the one canary node: %v", n, w.hashes())
	}
	if cond := ProgressingConditionFor(p); cond.Reason != nasv1alpha1.ReasonCanaryFailed || cond.Status != metav1.ConditionFalse {
		t.Fatalf("Progressing %+v", cond)
	}
}

// ProgressingConditionFor renders the Progressing condition of a plan.
func ProgressingConditionFor(p Plan) metav1.Condition { return ProgressingCondition(p, curHash) }

func TestCanaryRollbackRestoresTheCanaryNodes(t *testing.T) {
	two := intstr.FromInt32(2)
	w := newCanaryWorld(t, 4, nasv1alpha1.CanaryStrategy{Nodes: &two, OnFailure: nasv1alpha1.CanaryFailureRollback})
	w.bad[curHash] = true
	w.runFor(15 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryFailed)
	p := w.runFor(15 * time.Second)
	if n := w.count(oldHash); n != 4 {
		t.Fatalf("%d of 4 nodes run the stable revision after the rollback: %v", n, w.hashes())
	}
	if got := p.Nodes["node-0"].Reason.Code; got != ReasonCanaryRolledBack {
		t.Fatalf("node-0 reason %s, want %s", got, ReasonCanaryRolledBack)
	}
	w.wantPhase(nasv1alpha1.CanaryFailed)
}

func TestCanaryWithoutAutoPromoteWaitsForPromote(t *testing.T) {
	no := false
	w := newCanaryWorld(t, 3, nasv1alpha1.CanaryStrategy{AutoPromote: &no})
	w.runFor(2 * time.Minute)
	w.wantPhase(nasv1alpha1.CanaryWaitingForPromotion)
	if n := w.count(curHash); n != 1 {
		t.Fatalf("%d nodes run the new revision while waiting for promote", n)
	}
	// A decision for another revision is ignored.
	w.set.Annotations = map[string]string{nasv1alpha1.CanaryDecisionAnnotation: CanaryDecision(CanaryDecisionPromote, oldHash, w.now)}
	w.runFor(5 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryWaitingForPromotion)
	w.set.Annotations[nasv1alpha1.CanaryDecisionAnnotation] = CanaryDecision(CanaryDecisionPromote, curHash, w.now)
	w.runFor(20 * time.Second)
	w.wantPhase(nasv1alpha1.CanarySucceeded)
	if n := w.count(curHash); n != 3 {
		t.Fatalf("%d of 3 nodes run the new revision after promote: %v", n, w.hashes())
	}
}

func TestCanaryAbortAndRetry(t *testing.T) {
	w := newCanaryWorld(t, 3, nasv1alpha1.CanaryStrategy{})
	w.runFor(5 * time.Second)
	w.set.Annotations = map[string]string{nasv1alpha1.CanaryDecisionAnnotation: CanaryDecision(CanaryDecisionAbort, curHash, w.now)}
	w.runFor(10 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryAborted)
	if n := w.count(oldHash); n != 3 {
		t.Fatalf("%d of 3 nodes run the stable revision after abort: %v", n, w.hashes())
	}
	w.set.Annotations[nasv1alpha1.CanaryDecisionAnnotation] = CanaryDecision(CanaryDecisionRetry, curHash, w.now)
	w.runFor(10 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryWatching)
	w.runFor(2 * time.Minute)
	w.wantPhase(nasv1alpha1.CanarySucceeded)
}

func TestCanaryVerdictIsKeyedByTheRevision(t *testing.T) {
	w := newCanaryWorld(t, 3, nasv1alpha1.CanaryStrategy{})
	w.runFor(30 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryWatching)
	before := w.set.Status.Canary.DeepCopy()
	// A re-applied spec (same hash) and a controller restart (the planner only has the status) go on
	// with the same watch.
	p := Compute(w.input())
	if !p.Canary.WatchStartedAt.Equal(before.WatchStartedAt) || !p.Canary.StartedAt.Equal(before.StartedAt) {
		t.Fatalf("the watch restarted: %+v, was %+v", p.Canary, before)
	}
	// A verdict for another revision starts a new canary.
	w.set.Status.Canary.Revision = "older"
	if p := Compute(w.input()); !p.Canary.StartedAt.Time.Equal(w.now) || !p.Canary.WatchStartedAt.Time.Equal(w.now) {
		t.Fatalf("a verdict of another revision: %+v", p.Canary)
	}
}

func TestCanaryHeldNodesGetTheStableRevision(t *testing.T) {
	w := newCanaryWorld(t, 3, nasv1alpha1.CanaryStrategy{})
	w.runFor(3 * time.Second)
	w.nodes = append(w.nodes, newNode("node-9", nil))
	p := w.step()
	if got := p.CreateRevisions["node-9"]; got != oldHash {
		t.Fatalf("a node that joins during the canary gets %q, want the stable revision", got)
	}
	w.runFor(3 * time.Second)
	if got := w.hashes()["node-9"]; got != oldHash {
		t.Fatalf("node-9 runs %s", got)
	}
	p = Compute(w.input())
	if got := p.Nodes["node-9"].Reason.Code; got != ReasonWaitingForCanary || !got.Outdated() {
		t.Fatalf("node-9 reason %s (outdated %v)", got, got.Outdated())
	}
	// A held node runs an available agent: the Available condition does not count it.
	if cond := AvailableCondition(p); cond.Status != metav1.ConditionTrue {
		t.Fatalf("Available %+v", cond)
	}
}

func TestCanaryNodeChoice(t *testing.T) {
	fifty := intstr.FromString("50%")
	tests := []struct {
		name   string
		canary nasv1alpha1.CanaryStrategy
		labels map[string]map[string]string
		// updated nodes already run the revision under test.
		updated []string
		want    string
	}{
		{name: "default one node, first by name", want: "[node-0]"},
		{name: "percent of eligible nodes, rounded up", canary: nasv1alpha1.CanaryStrategy{Nodes: &fifty}, want: "[node-0 node-1 node-2]"},
		{name: "nodes already updated come first", updated: []string{"node-3"}, want: "[node-3]"},
		{name: "every updated node is a canary node", updated: []string{"node-3", "node-4"}, want: "[node-3 node-4]"},
		{name: "selector, all matching", canary: nasv1alpha1.CanaryStrategy{NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"canary": "true"}}},
			labels: map[string]map[string]string{"node-2": {"canary": "true"}, "node-4": {"canary": "true"}}, want: "[node-2 node-4]"},
		{name: "selector, capped", canary: nasv1alpha1.CanaryStrategy{Nodes: ptrIntOrString(intstr.FromInt32(1)),
			NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"canary": "true"}}},
			labels: map[string]map[string]string{"node-2": {"canary": "true"}, "node-4": {"canary": "true"}}, want: "[node-2]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newCanaryWorld(t, 5, tc.canary)
			for _, n := range w.nodes {
				n.Labels = tc.labels[n.Name]
			}
			for _, pod := range w.pods {
				for _, u := range tc.updated {
					if pod.Spec.NodeName == u {
						withHash(curHash)(pod)
					}
				}
			}
			p := Compute(w.input())
			got := append([]string(nil), p.Canary.Nodes...)
			sort.Strings(got)
			if fmt.Sprint(got) != tc.want {
				t.Fatalf("canary nodes %v, want %s", got, tc.want)
			}
		})
	}
}

func TestCanaryWithoutAnOlderRevisionSucceedsAtOnce(t *testing.T) {
	w := newCanaryWorld(t, 2, nasv1alpha1.CanaryStrategy{})
	w.pods = nil
	p := w.step()
	if p.Canary.Phase != nasv1alpha1.CanarySucceeded || len(p.CreateRevisions) != 0 || len(p.Creates) != 2 {
		t.Fatalf("a fresh set: canary %+v, creates %v %v", p.Canary, p.Creates, p.CreateRevisions)
	}
}

func TestCanaryNodeNeverAvailableFailsAtTheProgressDeadline(t *testing.T) {
	w := newCanaryWorld(t, 3, nasv1alpha1.CanaryStrategy{})
	deadline := int32(30)
	w.set.Spec.ProgressDeadlineSeconds = &deadline
	w.stuck[curHash] = true
	w.runFor(29 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryProgressing)
	w.runFor(3 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryFailed)
	if st := w.set.Status.Canary; st.Reason != nasv1alpha1.CanaryProgressDeadlineExceeded {
		t.Fatalf("canary %+v", st)
	}
}

func TestCanaryPodUnavailableBeyondTheGraceFails(t *testing.T) {
	w := newCanaryWorld(t, 3, nasv1alpha1.CanaryStrategy{MaxRestarts: 100, Duration: &metav1.Duration{Duration: time.Hour}})
	w.runFor(5 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryWatching)
	for _, pod := range w.pods {
		if pod.Labels[nasv1alpha1.ControllerRevisionHashLabel] == curHash {
			notReady(pod)
		}
	}
	w.stuck[curHash] = true
	w.runFor(CanaryUnavailableGrace - 2*time.Second)
	w.wantPhase(nasv1alpha1.CanaryWatching)
	w.runFor(3 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryFailed)
	if st := w.set.Status.Canary; st.Reason != nasv1alpha1.CanaryPodUnavailable {
		t.Fatalf("canary %+v", st)
	}
}

func TestCanaryLongerThanTheProgressDeadlineDoesNotExceedIt(t *testing.T) {
	w := newCanaryWorld(t, 3, nasv1alpha1.CanaryStrategy{Duration: &metav1.Duration{Duration: 2 * time.Minute}})
	deadline := int32(60)
	w.set.Spec.ProgressDeadlineSeconds = &deadline
	for range 200 {
		p := w.step()
		if p.Rollout.Phase == RolloutDeadlineExceeded {
			t.Fatalf("at %s, canary %s: the rollout exceeded its deadline", w.now.Sub(t0), p.Canary.Phase)
		}
		if p.Rollout.Complete {
			return
		}
	}
	t.Fatalf("the rollout did not complete: %v", w.hashes())
}

func TestCanaryMessage(t *testing.T) {
	watchStart := metav1.NewTime(t0)
	rollback := &nasv1alpha1.CanaryStrategy{MaxRestarts: 1, OnFailure: nasv1alpha1.CanaryFailureRollback}
	tests := []struct {
		name   string
		st     nasv1alpha1.CanaryStatus
		spec   *nasv1alpha1.CanaryStrategy
		detail string
		want   string
	}{
		{name: "progressing", st: nasv1alpha1.CanaryStatus{Revision: "h2", Phase: nasv1alpha1.CanaryProgressing, Nodes: []string{"a", "b"}},
			spec: &nasv1alpha1.CanaryStrategy{}, detail: "a: agent pod starting",
			want: "revision h2: updating canary nodes a, b; waiting for a: agent pod starting"},
		{name: "watching", st: nasv1alpha1.CanaryStatus{Revision: "h2", Phase: nasv1alpha1.CanaryWatching, Nodes: []string{"a"},
			WatchStartedAt: &watchStart, Restarts: 1}, spec: rollback,
			want: "revision h2: watching canary node a for 10m0s since 1970-01-12T13:46:40Z; restarts: 1, at most 1 allowed"},
		{name: "failed, rolled back", st: nasv1alpha1.CanaryStatus{Revision: "h2", StableRevision: "h1", Phase: nasv1alpha1.CanaryFailed,
			Reason: nasv1alpha1.CanaryTooManyRestarts, Nodes: []string{"a"}, Restarts: 2}, spec: rollback,
			want: "revision h2 failed its canary: the canary pods' containers restarted 2 times during the watch, more than maxRestarts 1; " +
				"canary node a gets revision h1 back"},
		{name: "failed, paused", st: nasv1alpha1.CanaryStatus{Revision: "h2", Phase: nasv1alpha1.CanaryFailed,
			Reason: nasv1alpha1.CanaryPodUnavailable, Nodes: []string{"a", "b"}}, spec: &nasv1alpha1.CanaryStrategy{}, detail: "b: agent pod not ready",
			want: "revision h2 failed its canary: a canary pod was unavailable for more than 30s (b: agent pod not ready); " +
				"the rollout is paused, canary nodes a, b keep the new revision"},
		{name: "nothing to compare", st: nasv1alpha1.CanaryStatus{Revision: "h1", Phase: nasv1alpha1.CanarySucceeded},
			spec: &nasv1alpha1.CanaryStrategy{}, want: "revision h1: no node runs an older revision, nothing to compare against"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CanaryMessage(&tc.st, tc.spec, tc.detail); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestCanaryWaitsWhilePaused(t *testing.T) {
	w := newCanaryWorld(t, 3, nasv1alpha1.CanaryStrategy{})
	deadline := int32(30)
	w.set.Spec.ProgressDeadlineSeconds = &deadline
	w.set.Spec.UpdateStrategy.RollingUpdate.Paused = true
	w.runFor(time.Minute)
	w.wantPhase(nasv1alpha1.CanaryProgressing)
	if n := w.count(curHash); n != 0 {
		t.Fatalf("%d nodes updated while paused", n)
	}
	// Resuming changes the spec: the controller dates the rollout from it.
	w.set.Spec.UpdateStrategy.RollingUpdate.Paused = false
	w.rolloutStartedAt = w.now
	w.runFor(5 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryWatching)
}

// withGPUOverride gives the set a node override (another image on the nodes labelled gpu=true, node-1
// among them), and the world's pods of oldHash the labels the older revision (another template image)
// gave them: the per-node spec hashes of a set with nodeOverrides.
func (w *canaryWorld) withGPUOverride() {
	w.nodes[1].Labels = map[string]string{"gpu": "true"}
	w.set.Spec.NodeOverrides = []nasv1alpha1.NodeOverride{{Name: "gpu",
		NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"gpu": "true"}},
		Containers:   []nasv1alpha1.ContainerOverride{{Name: "agent", Image: "foo/bar:cuda"}}}}
	older := w.set.DeepCopy()
	older.Spec.Template.Spec.Containers[0].Image = "foo/bar:older"
	w.older = older
	byName := map[string]*corev1.Node{}
	for _, n := range w.nodes {
		byName[n.Name] = n
	}
	for _, pod := range w.pods {
		o := RenderForNode(older, byName[pod.Spec.NodeName])
		pod.Labels[OverrideLabel], pod.Labels[PodSpecHashLabel] = o.Name, o.SpecHash
	}
}

func TestCanaryFailedWithRollbackStaysFailedPastTheWatch(t *testing.T) {
	for _, overrides := range []bool{false, true} {
		t.Run(fmt.Sprintf("overrides %v", overrides), func(t *testing.T) {
			w := newCanaryWorld(t, 4, nasv1alpha1.CanaryStrategy{OnFailure: nasv1alpha1.CanaryFailureRollback})
			if overrides {
				w.withGPUOverride()
			}
			w.runFor(5 * time.Second)
			w.wantPhase(nasv1alpha1.CanaryWatching)
			watchStarted := w.set.Status.Canary.WatchStartedAt
			w.bad[curHash] = true
			w.runFor(2 * time.Second)
			w.wantPhase(nasv1alpha1.CanaryFailed)
			failed := w.set.Status.Canary.DeepCopy()
			w.bad[curHash] = false
			// The canary node gets the stable revision back, and the passes go on well past the end
			// of the watch: the verdict stays as it was reached.
			for end := watchStarted.Add(3 * time.Minute); w.now.Before(end); {
				p := w.step()
				if !apiequality.Semantic.DeepEqual(p.Canary, failed) {
					t.Fatalf("at %s: canary %+v, want the failure unchanged %+v", w.now.Sub(t0), p.Canary, failed)
				}
				if len(p.Relabels) > 0 {
					t.Fatalf("at %s: relabels %v of a failed canary's set", w.now.Sub(t0), p.Relabels)
				}
			}
			if n := w.count(oldHash); n != 4 {
				t.Fatalf("%d of 4 nodes run the stable revision: %v", n, w.hashes())
			}
		})
	}
}

func TestCanaryDoneVerdictChangesOnlyOnADecisionOrANewRevision(t *testing.T) {
	rollback := nasv1alpha1.CanaryStrategy{OnFailure: nasv1alpha1.CanaryFailureRollback}
	for _, phase := range []nasv1alpha1.CanaryPhase{nasv1alpha1.CanarySucceeded, nasv1alpha1.CanaryFailed, nasv1alpha1.CanaryAborted} {
		// The worlds a done verdict may meet: the canary node without a pod, with a healthy pod of the
		// revision, all nodes on the revision, long after the watch and the progress deadline, a
		// decision for another revision, a decision it already acted on.
		worlds := map[string]func(w *canaryWorld){
			"canary node without a pod": func(w *canaryWorld) { w.pods = w.pods[1:] },
			"healthy canary pod": func(w *canaryWorld) {
				w.pods[0] = newPod("canary", "node-0", withHash(curHash), created(t0), readySince(t0))
			},
			"every node on the revision": func(w *canaryWorld) {
				for i, pod := range w.pods {
					w.pods[i] = newPod(fmt.Sprintf("new-%d", i), pod.Spec.NodeName, withHash(curHash), created(t0), readySince(t0))
				}
			},
			"a decision for another revision": func(w *canaryWorld) {
				w.set.Annotations = map[string]string{nasv1alpha1.CanaryDecisionAnnotation: CanaryDecision(CanaryDecisionPromote, oldHash, w.now)}
			},
			"a decision acted on": func(w *canaryWorld) {
				w.set.Annotations = map[string]string{nasv1alpha1.CanaryDecisionAnnotation: w.set.Status.Canary.Decision}
			},
		}
		for name, mutate := range worlds {
			t.Run(string(phase)+", "+name, func(t *testing.T) {
				w := newCanaryWorld(t, 3, rollback)
				watch, done := metav1.NewTime(t0.Add(-time.Hour)), metav1.NewTime(t0.Add(-30*time.Minute))
				w.set.Status.Canary = &nasv1alpha1.CanaryStatus{Revision: curHash, StableRevision: oldHash, Phase: phase,
					StartedAt: &watch, WatchStartedAt: &watch, CompletedAt: &done, Nodes: []string{"node-0"},
					RestartBaseline: map[string]int32{"pod-001": 0}, Restarts: 3, Message: "as it was reached",
					Decision: CanaryDecision(CanaryDecisionAbort, curHash, t0.Add(-time.Hour))}
				want := w.set.Status.Canary.DeepCopy()
				mutate(w)
				if p := Compute(w.input()); !apiequality.Semantic.DeepEqual(p.Canary, want) {
					t.Fatalf("canary %+v, want it unchanged %+v", p.Canary, want)
				}
			})
		}
	}
}

func TestCanaryNeverWatchesANodeTheRevisionDoesNotChange(t *testing.T) {
	// node-1's override sets the image the new revision changes: its pod stays the same.
	w := newCanaryWorld(t, 3, nasv1alpha1.CanaryStrategy{})
	w.withGPUOverride()
	unchangedPod := w.pods[1]
	w.runFor(5 * time.Second)
	w.wantPhase(nasv1alpha1.CanaryWatching)
	if got := w.set.Status.Canary.Nodes; fmt.Sprint(got) != "[node-0]" {
		t.Fatalf("canary nodes %v, want node-0: node-1 runs what the revision renders for it already", got)
	}
	for w.set.Status.Canary.Phase != nasv1alpha1.CanarySucceeded {
		if hash := unchangedPod.Labels[nasv1alpha1.ControllerRevisionHashLabel]; hash != oldHash {
			t.Fatalf("at %s: node-1's pod carries %s before the canary succeeded", w.now.Sub(t0), hash)
		}
		if p := w.step(); len(p.Relabels) > 0 && p.Canary.Phase != nasv1alpha1.CanarySucceeded {
			t.Fatalf("at %s, phase %s: %d relabels while the canary holds the fleet", w.now.Sub(t0), p.Canary.Phase, len(p.Relabels))
		}
	}
	w.runFor(20 * time.Second)
	if n := w.count(curHash); n != 3 {
		t.Fatalf("%d of 3 nodes run the new revision: %v", n, w.hashes())
	}
	if !slices.Contains(w.pods, unchangedPod) || unchangedPod.Labels[nasv1alpha1.ControllerRevisionHashLabel] != curHash {
		t.Fatalf("node-1's pod was replaced, or not relabelled: %v", w.hashes())
	}
}

func TestCanaryHeldPodsAreBuiltFromTheStableRevisionsOverrides(t *testing.T) {
	w := newCanaryWorld(t, 3, nasv1alpha1.CanaryStrategy{})
	w.withGPUOverride()
	w.runFor(3 * time.Second)
	// Two nodes join during the canary: a gpu node, whose pod the new revision does not change, and
	// another, whose pod it does.
	gpu, plain := newNode("node-8", map[string]string{"gpu": "true"}), newNode("node-9", nil)
	w.nodes = append(w.nodes, gpu, plain)
	p := w.step()
	for _, n := range []*corev1.Node{gpu, plain} {
		want := RenderForNode(w.older, n)
		if got := p.CreateOverrides[n.Name]; p.CreateRevisions[n.Name] != oldHash || got.Name != want.Name || got.SpecHash != want.SpecHash {
			t.Fatalf("%s: revision %q, override %q %q; want the stable revision's %q %q", n.Name, p.CreateRevisions[n.Name],
				got.Name, got.SpecHash, want.Name, want.SpecHash)
		}
	}
	var gpuPod *corev1.Pod
	for _, pod := range w.pods {
		if pod.Spec.NodeName == gpu.Name {
			gpuPod = pod
		}
	}
	w.runFor(2 * time.Minute)
	w.wantPhase(nasv1alpha1.CanarySucceeded)
	if n := w.count(curHash); n != 5 {
		t.Fatalf("%d of 5 nodes run the new revision: %v", n, w.hashes())
	}
	// The gpu node's held pod equals what the new revision renders for it: relabelled, not replaced.
	if !slices.Contains(w.pods, gpuPod) {
		t.Fatalf("node-8's held pod was replaced: %v", w.hashes())
	}
}
