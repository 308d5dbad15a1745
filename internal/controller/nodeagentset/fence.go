package nodeagentset

import (
	"context"
	"errors"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/leaderelection"
)

// errLeaseNotHeld: this replica has not renewed its lease recently enough to be sure it still leads.
var errLeaseNotHeld = errors.New("the leader lease was not renewed within the renew deadline: this replica may no longer lead")

// LeaseFence stops a replica from writing once it cannot be sure it still leads (docs/design/chaos.md,
// "The fence"). The leader elector notices a lost lease only when a renewal fails, up to a renew
// deadline after the lease expired: a replica frozen past its lease (a stopped process, a VM paused,
// a long GC pause) wakes up believing it leads, with a cache as old as the freeze, while another
// replica has taken over, and for those seconds both write: two pods on a node, a rollout beyond its
// budget. The fence is the lease lock the elector uses, wrapped: it notes when this replica last renewed
// the lease (the time before the request, as the lease records it), and forgets it when the lease is
// seen held by someone else or given up. A pass writes only while that renewal is younger than the
// renew deadline, which is shorter than the lease: no other replica can have taken over.
type LeaseFence struct {
	renewDeadline time.Duration
	clock         clock.PassiveClock

	mu      sync.Mutex
	inner   resourcelock.Interface
	renewed time.Time // zero: not leading, or no longer sure.
}

var _ resourcelock.Interface = &LeaseFence{}

func newLeaseFence(inner resourcelock.Interface, renewDeadline time.Duration, clk clock.PassiveClock) *LeaseFence {
	return &LeaseFence{inner: inner, renewDeadline: renewDeadline, clock: clk}
}

// held says whether this replica renewed its lease less than the renew deadline ago. A nil fence
// (no leader election) always holds.
func (f *LeaseFence) held() bool {
	if f == nil {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.renewed.IsZero() && f.clock.Since(f.renewed) < f.renewDeadline
}

func (f *LeaseFence) lock() resourcelock.Interface {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inner
}

// Get reads the lease; held by another replica, the fence closes.
func (f *LeaseFence) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	inner := f.lock()
	rec, raw, err := inner.Get(ctx)
	if err == nil && rec.HolderIdentity != inner.Identity() {
		f.mu.Lock()
		f.renewed = time.Time{}
		f.mu.Unlock()
	}
	return rec, raw, err
}

// Create takes the lease.
func (f *LeaseFence) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return f.write(ctx, ler, f.lock().Create)
}

// Update renews the lease, takes it over, or gives it up (an empty holder).
func (f *LeaseFence) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return f.write(ctx, ler, f.lock().Update)
}

func (f *LeaseFence) write(ctx context.Context, ler resourcelock.LeaderElectionRecord,
	op func(context.Context, resourcelock.LeaderElectionRecord) error) error {
	attempt := f.clock.Now()
	err := op(ctx, ler)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case ler.HolderIdentity != f.inner.Identity():
		f.renewed = time.Time{}
	case err == nil:
		f.renewed = attempt
	}
	return err
}

// RecordEvent records the elector's events on the lease.
func (f *LeaseFence) RecordEvent(s string) { f.lock().RecordEvent(s) }

// Identity is this replica's identity as a lease holder.
func (f *LeaseFence) Identity() string { return f.lock().Identity() }

// Describe names the lease.
func (f *LeaseFence) Describe() string { return f.lock().Describe() }

// NewManager builds the manager of cfg (ManagerOptions) on restConfig. With leader election its lease
// lock is controller-runtime's own, behind a LeaseFence: put it in Config.Fence for SetupWithManager.
func NewManager(restConfig *rest.Config, cfg Config) (ctrl.Manager, *LeaseFence, error) {
	opts := ManagerOptions(cfg)
	if !cfg.LeaderElection {
		mgr, err := ctrl.NewManager(restConfig, opts)
		return mgr, nil, err
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	renewDeadline := defaultRenewDeadline
	if cfg.RenewDeadline != 0 {
		renewDeadline = cfg.RenewDeadline
	}
	// The lock records its events through the manager, which needs the lock first: the fence gets its
	// lock once the manager exists, before the manager starts the elector.
	fence := newLeaseFence(nil, renewDeadline, clk)
	opts.LeaderElectionResourceLockInterface = fence
	mgr, err := ctrl.NewManager(restConfig, opts)
	if err != nil {
		return nil, nil, err
	}
	inner, err := leaderelection.NewResourceLock(restConfig, mgr, leaderelection.Options{
		LeaderElection:          true,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: cfg.LeaderElectionNamespace,
		RenewDeadline:           renewDeadline,
	})
	if err != nil {
		return nil, nil, err
	}
	fence.mu.Lock()
	fence.inner = inner
	fence.mu.Unlock()
	return mgr, fence, nil
}

// defaultRenewDeadline is controller-runtime's renew deadline when none is set.
const defaultRenewDeadline = 10 * time.Second
