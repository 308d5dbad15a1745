package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/nodeagentset/nodeagentset/internal/controller/nodeagentset"
)

func TestFlagDefaults(t *testing.T) {
	o, err := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.kubeAPIQPS >= 0 {
		t.Errorf("kube-api-qps = %v, want negative (no client-side limit, controller-runtime's default)", o.kubeAPIQPS)
	}
	m := o.manager
	if o.kubeAPIBurst != 0 || m.MaxConcurrentReconciles != 2 || !m.MetricsSecure || m.LeaderElection ||
		m.HealthProbeBindAddress != ":8081" || m.PprofBindAddress != "" || o.memoryLimit != 0 ||
		m.ReconcileTimeout != nodeagentset.DefaultReconcileTimeout {
		t.Errorf("unexpected defaults: %+v", o)
	}
	// Upstream's leader election defaults (kube-controller-manager's --leader-elect-*).
	if m.LeaseDuration != 15*time.Second || m.RenewDeadline != 10*time.Second || m.RetryPeriod != 2*time.Second {
		t.Errorf("leader election timings = %s/%s/%s, want 15s/10s/2s", m.LeaseDuration, m.RenewDeadline, m.RetryPeriod)
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), []string{
		"--kube-api-qps=20", "--kube-api-burst=30", "--max-concurrent-reconciles=8", "--leader-elect", "--metrics-bind-address=:8443",
		"--memory-limit-bytes=536870912", "--reconcile-timeout=2m",
		"--leader-elect-lease-duration=30s", "--leader-elect-renew-deadline=20s", "--leader-elect-retry-period=4s",
	})
	if err != nil {
		t.Fatal(err)
	}
	m := o.manager
	if o.kubeAPIQPS != 20 || o.kubeAPIBurst != 30 || m.MaxConcurrentReconciles != 8 || !m.LeaderElection ||
		m.MetricsBindAddress != ":8443" || o.memoryLimit != 536870912 || m.ReconcileTimeout.Minutes() != 2 {
		t.Errorf("flags not parsed: %+v", o)
	}
	if m.LeaseDuration != 30*time.Second || m.RenewDeadline != 20*time.Second || m.RetryPeriod != 4*time.Second {
		t.Errorf("leader election timings = %s/%s/%s, want 30s/20s/4s", m.LeaseDuration, m.RenewDeadline, m.RetryPeriod)
	}
	// They reach the manager's options.
	mo := nodeagentset.ManagerOptions(m)
	if mo.LeaseDuration == nil || *mo.LeaseDuration != 30*time.Second || mo.RenewDeadline == nil || *mo.RenewDeadline != 20*time.Second ||
		mo.RetryPeriod == nil || *mo.RetryPeriod != 4*time.Second || !mo.LeaderElectionReleaseOnCancel {
		t.Errorf("manager options: lease %v, renew %v, retry %v, release on cancel %t", mo.LeaseDuration, mo.RenewDeadline, mo.RetryPeriod,
			mo.LeaderElectionReleaseOnCancel)
	}
}

func TestLeaderElectionFlagsRejected(t *testing.T) {
	for name, args := range map[string][]string{
		"renew deadline not shorter than the lease": {"--leader-elect-lease-duration=10s", "--leader-elect-renew-deadline=10s"},
		"renew deadline within the jittered retry":  {"--leader-elect-renew-deadline=2s", "--leader-elect-retry-period=2s"},
		"retry period zero":                         {"--leader-elect-retry-period=0s"},
	} {
		t.Run(name, func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			if _, err := parseFlags(fs, args); err == nil || !strings.Contains(err.Error(), "--leader-elect-") {
				t.Errorf("parseFlags(%v) = %v, want an error naming the flag", args, err)
			}
		})
	}
}

// The flags are refused exactly when client-go's leader elector would refuse the timings, which it
// finds out only once the manager starts.
func TestLeaderElectionFlagsAsTheElectorJudgesThem(t *testing.T) {
	tenths := []time.Duration{0, 1, 2, 10, 12, 15, 20, 24, 25, 30}
	durations := make([]time.Duration, 0, len(tenths))
	for _, d := range tenths {
		durations = append(durations, d*time.Second/10)
	}
	for _, lease := range durations {
		for _, renew := range durations {
			for _, retry := range durations {
				args := []string{fmt.Sprintf("--leader-elect-lease-duration=%s", lease),
					fmt.Sprintf("--leader-elect-renew-deadline=%s", renew), fmt.Sprintf("--leader-elect-retry-period=%s", retry)}
				_, err := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), args)
				_, electorErr := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
					Lock:          &resourcelock.LeaseLock{LockConfig: resourcelock.ResourceLockConfig{Identity: "test"}},
					LeaseDuration: lease, RenewDeadline: renew, RetryPeriod: retry,
					Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: func(context.Context) {}, OnStoppedLeading: func() {}},
				})
				if (err == nil) != (electorErr == nil) {
					t.Errorf("%v: parseFlags: %v; the leader elector: %v", args, err, electorErr)
				}
			}
		}
	}
}

func TestReadinessGatePrefixesFlag(t *testing.T) {
	o, err := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), []string{
		"--readiness-gate-taint-prefixes=readiness.nodeagentset.io/, readiness.k8s.io/",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.manager.ReadinessGateTaintPrefixes; len(got) != 2 || got[0] != "readiness.nodeagentset.io/" || got[1] != "readiness.k8s.io/" {
		t.Errorf("prefixes = %q", got)
	}
	if _, err := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), []string{"--readiness-gate-taint-prefixes=,"}); err == nil {
		t.Error("an empty prefix list was accepted")
	}
}
