package main

import (
	"flag"
	"testing"

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
}

func TestFlags(t *testing.T) {
	o, err := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), []string{
		"--kube-api-qps=20", "--kube-api-burst=30", "--max-concurrent-reconciles=8", "--leader-elect", "--metrics-bind-address=:8443",
		"--memory-limit-bytes=536870912", "--reconcile-timeout=2m",
	})
	if err != nil {
		t.Fatal(err)
	}
	m := o.manager
	if o.kubeAPIQPS != 20 || o.kubeAPIBurst != 30 || m.MaxConcurrentReconciles != 8 || !m.LeaderElection ||
		m.MetricsBindAddress != ":8443" || o.memoryLimit != 536870912 || m.ReconcileTimeout.Minutes() != 2 {
		t.Errorf("flags not parsed: %+v", o)
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
