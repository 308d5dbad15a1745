package nodeagentset

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// fakeLock is a lease lock in memory: its record, and the error its writes return.
type fakeLock struct {
	identity string
	record   resourcelock.LeaderElectionRecord
	writeErr error
}

func (l *fakeLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec := l.record
	return &rec, nil, nil
}

func (l *fakeLock) Create(_ context.Context, ler resourcelock.LeaderElectionRecord) error {
	return l.Update(context.Background(), ler)
}

func (l *fakeLock) Update(_ context.Context, ler resourcelock.LeaderElectionRecord) error {
	if l.writeErr != nil {
		return l.writeErr
	}
	l.record = ler
	return nil
}

func (l *fakeLock) RecordEvent(string) {}
func (l *fakeLock) Identity() string   { return l.identity }
func (l *fakeLock) Describe() string   { return "ns/lease" }

const fenceRenewDeadline = 3 * time.Second

func newTestFence() (*LeaseFence, *fakeLock, *clocktesting.FakeClock) {
	lock := &fakeLock{identity: "me"}
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return newLeaseFence(lock, fenceRenewDeadline, clk), lock, clk
}

func renew(t *testing.T, f *LeaseFence, holder string) error {
	t.Helper()
	return f.Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: holder})
}

func TestLeaseFenceHeldWhileTheLastRenewalIsYoungerThanTheRenewDeadline(t *testing.T) {
	f, _, clk := newTestFence()
	if f.held() {
		t.Fatal("held before the lease was ever taken")
	}
	if err := f.Create(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "me"}); err != nil {
		t.Fatal(err)
	}
	if !f.held() {
		t.Fatal("not held right after taking the lease")
	}
	clk.Step(fenceRenewDeadline - time.Millisecond)
	if !f.held() {
		t.Error("not held just before the renew deadline")
	}
	// The replica was frozen: no renewal for longer than the renew deadline.
	clk.Step(time.Millisecond)
	if f.held() {
		t.Error("held at the renew deadline after the last renewal: a thawed replica would write")
	}
	if err := renew(t, f, "me"); err != nil {
		t.Fatal(err)
	}
	if !f.held() {
		t.Error("not held after a renewal")
	}
}

func TestLeaseFenceCountsFromBeforeTheRenewal(t *testing.T) {
	f, lock, clk := newTestFence()
	// A renewal whose request took a second: the lease records the time it was sent.
	slow := &slowLock{fakeLock: lock, clk: clk, took: time.Second}
	f.inner = slow
	if err := renew(t, f, "me"); err != nil {
		t.Fatal(err)
	}
	clk.Step(fenceRenewDeadline - time.Second)
	if f.held() {
		t.Error("held a renew deadline after the renewal was sent")
	}
}

// slowLock's writes take took on the clock.
type slowLock struct {
	*fakeLock
	clk  *clocktesting.FakeClock
	took time.Duration
}

func (l *slowLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	l.clk.Step(l.took)
	return l.fakeLock.Update(ctx, ler)
}

func TestLeaseFenceClosesWhenTheLeaseIsSeenHeldByAnother(t *testing.T) {
	f, lock, _ := newTestFence()
	if err := renew(t, f, "me"); err != nil {
		t.Fatal(err)
	}
	lock.record = resourcelock.LeaderElectionRecord{HolderIdentity: "other"}
	if _, _, err := f.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.held() {
		t.Error("held after reading the lease held by another replica")
	}
}

func TestLeaseFenceFailedOrGivenUpRenewalsDoNotHold(t *testing.T) {
	f, lock, clk := newTestFence()
	if err := renew(t, f, "me"); err != nil {
		t.Fatal(err)
	}
	clk.Step(2 * time.Second)
	lock.writeErr = errors.New("conflict")
	if err := renew(t, f, "me"); err == nil {
		t.Fatal("the failed renewal returned no error")
	}
	clk.Step(time.Second)
	if f.held() {
		t.Error("a failed renewal extended the fence")
	}

	f, _, _ = newTestFence()
	if err := renew(t, f, "me"); err != nil {
		t.Fatal(err)
	}
	// Released on shutdown (LeaderElectionReleaseOnCancel): an empty holder.
	if err := renew(t, f, ""); err != nil {
		t.Fatal(err)
	}
	if f.held() {
		t.Error("held after giving the lease up")
	}
}

func TestNoFenceWithoutLeaderElection(t *testing.T) {
	var f *LeaseFence
	if !f.held() {
		t.Error("a nil fence (no leader election) does not hold")
	}
}

// A replica frozen past its lease must not run the passes queued for it when it thaws.
func TestGuardedPassWaitsWhileTheLeaseIsNotHeld(t *testing.T) {
	f, _, clk := newTestFence()
	if err := renew(t, f, "me"); err != nil {
		t.Fatal(err)
	}
	ran := false
	next := reconcilerFunc(func(context.Context, reconcile.Request) (ctrl.Result, error) {
		ran = true
		return ctrl.Result{}, nil
	})
	g := newGuardedReconciler(next, caughtUpHandover(), time.Minute, clk)
	g.fence = f
	clk.Step(fenceRenewDeadline + time.Second)
	res, err := g.Reconcile(context.Background(), setRequest)
	if err != nil || ran || res.RequeueAfter != handoverRetry {
		t.Errorf("frozen past the deadline: ran=%t result=%+v err=%v, want no pass and a retry after %s", ran, res, err, handoverRetry)
	}
	if err := renew(t, f, "me"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Reconcile(context.Background(), setRequest); err != nil || !ran {
		t.Errorf("renewed: ran=%t err=%v, want the pass", ran, err)
	}
}

// A pass frozen between its plan and its writes must not carry the plan out once thawed.
func TestApplyWritesNothingOnceTheLeaseIsNotHeld(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "set-uid"}}
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "agent", Image: "agent:1"}}
	old := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "old", UID: "uid"}}
	c := fakeReader(old)
	r := NewReconciler(c, nil, c, events.NewFakeRecorder(10), clock.RealClock{})
	f, _, clk := newTestFence()
	r.fence = f
	if err := renew(t, f, "me"); err != nil {
		t.Fatal(err)
	}
	clk.Step(fenceRenewDeadline)

	err := r.apply(context.Background(), set, "hash", planner.Plan{
		Deletes: []planner.Deletion{{Pod: old, Node: "node-0", Reason: planner.DeleteOutdated}}, Creates: []string{"node-a"}})
	if !errors.Is(err, errLeaseNotHeld) {
		t.Errorf("apply = %v, want errLeaseNotHeld", err)
	}
	var pods corev1.PodList
	if err := c.List(context.Background(), &pods); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 || pods.Items[0].Name != "old" {
		t.Errorf("pods after apply = %v, want only old, untouched", podNamesOf(pods.Items))
	}
}

func podNamesOf(pods []corev1.Pod) []string {
	names := make([]string, 0, len(pods))
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return names
}

// A pass of many creates stops creating once the fence closes in the middle of it: each create goes
// out while the replica surely leads, not only the first.
func TestCreatesStopWhenTheLeaseIsLostMidPass(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "set-uid"}}
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "agent", Image: "agent:1"}}
	f, _, clk := newTestFence()
	if err := renew(t, f, "me"); err != nil {
		t.Fatal(err)
	}
	cc := &createCounter{start: slowStartFirstWindow, refuse: func(node string) bool {
		if node == "node-010" {
			clk.Step(fenceRenewDeadline) // The replica froze here.
		}
		return false
	}}
	r := NewReconciler(cc.client(), nil, nil, events.NewFakeRecorder(10), clock.RealClock{})
	r.fence = f
	err := r.createNodePods(context.Background(), set, "hash", nodeNames(1000), nil)
	if !errors.Is(err, errLeaseNotHeld) {
		t.Errorf("createNodePods = %v, want errLeaseNotHeld", err)
	}
	if got := cc.calls.Load(); got > 11+slowStartFirstWindow+10 {
		t.Errorf("%d creates after the lease was lost at the 11th, want only those already in flight", got)
	}
}
