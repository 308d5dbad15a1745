package nodeagentset

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

func TestManagerOptions(t *testing.T) {
	opts := ManagerOptions(Config{LeaderElection: true, LeaseDuration: 4 * time.Second})
	if c := opts.Client.Cache; c == nil || c.EnableReadYourWritesConsistency == nil || !*c.EnableReadYourWritesConsistency {
		t.Errorf("reads must be able to wait for the controller's own writes (the read barrier)")
	}
	if !opts.LeaderElection || opts.LeaderElectionID != LeaderElectionID || !opts.LeaderElectionReleaseOnCancel {
		t.Errorf("leader election: %v %q release=%v", opts.LeaderElection, opts.LeaderElectionID, opts.LeaderElectionReleaseOnCancel)
	}
	if opts.LeaseDuration == nil || *opts.LeaseDuration != 4*time.Second || opts.RenewDeadline != nil {
		t.Errorf("lease durations: set ones must pass, zero ones keep controller-runtime's defaults")
	}
	if opts.Metrics.BindAddress != "0" || opts.HealthProbeBindAddress != "0" {
		t.Errorf("empty addresses must disable the endpoints, got %q and %q", opts.Metrics.BindAddress, opts.HealthProbeBindAddress)
	}
}

func TestManagerOptionsCache(t *testing.T) {
	opts := ManagerOptions(Config{})
	kinds := []struct{ group, kind string }{{"", "Pod"}, {"", "Node"}, {"apps", "ControllerRevision"}, {nasv1alpha1.GroupVersion.Group, "NodeAgentSet"}}
	for _, gvk := range kinds {
		found := false
		for k := range opts.Scheme.AllKnownTypes() {
			found = found || (k.Group == gvk.group && k.Kind == gvk.kind)
		}
		if !found {
			t.Errorf("the scheme does not know %s/%s", gvk.group, gvk.kind)
		}
	}
	transforms := map[string]bool{}
	for obj, by := range opts.Cache.ByObject {
		switch obj.(type) {
		case *corev1.Pod:
			transforms["Pod"] = by.Transform != nil
		case *corev1.Node:
			transforms["Node"] = by.Transform != nil
		case *appsv1.ControllerRevision:
			transforms["ControllerRevision"] = by.Transform != nil
		}
	}
	for _, kind := range []string{"Pod", "Node", "ControllerRevision"} {
		if !transforms[kind] {
			t.Errorf("cached %ss are not stripped", kind)
		}
	}
	if opts.Cache.DefaultTransform == nil {
		t.Errorf("the other kinds keep their managedFields")
	}
}

func TestSoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		hard   int64
		env    string
		want   int64
		wantOK bool
	}{
		{hard: 512 << 20, want: 512 << 20 / 10 * 9, wantOK: true},
		{hard: 0},
		{hard: 512 << 20, env: "400MiB"},
	} {
		got, ok := SoftMemoryLimit(tc.hard, tc.env)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("SoftMemoryLimit(%d, %q) = %d, %v; want %d, %v", tc.hard, tc.env, got, ok, tc.want, tc.wantOK)
		}
	}
}
