package main

import (
	"flag"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFlagDefaults(t *testing.T) {
	o, err := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.kubeAPIQPS >= 0 {
		t.Errorf("kube-api-qps = %v, want negative (no client-side limit, controller-runtime's default)", o.kubeAPIQPS)
	}
	if o.kubeAPIBurst != 0 || o.maxConcurrentReconciles != 2 || !o.metricsSecure || o.leaderElect || o.probeAddr != ":8081" || o.pprofAddr != "" {
		t.Errorf("unexpected defaults: %+v", o)
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), []string{
		"--kube-api-qps=20", "--kube-api-burst=30", "--max-concurrent-reconciles=8", "--leader-elect", "--metrics-bind-address=:8443",
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.kubeAPIQPS != 20 || o.kubeAPIBurst != 30 || o.maxConcurrentReconciles != 8 || !o.leaderElect || o.metricsAddr != ":8443" {
		t.Errorf("flags not parsed: %+v", o)
	}
}

func TestStripNodeKeepsWhatPlacementReads(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"gpu": "true"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Conditions:   []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Images:       []corev1.ContainerImage{{Names: []string{"registry.k8s.io/pause:3.10"}}},
			VolumesInUse: []corev1.UniqueVolumeName{"v"},
		},
	}
	out, err := stripNode(node)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Node)
	if got.Status.Images != nil || got.Status.VolumesInUse != nil || got.ManagedFields != nil {
		t.Errorf("not stripped: %+v", got)
	}
	if got.Labels["gpu"] != "true" || len(got.Spec.Taints) != 1 || len(got.Status.Conditions) != 1 {
		t.Errorf("stripped too much: %+v", got)
	}
}
