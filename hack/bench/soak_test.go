package main

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

func soakNode(name string, subset bool) corev1.Node {
	l := map[string]string{"kubernetes.io/hostname": name}
	if subset {
		l[soakSubsetLabel] = "true"
	}
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

func soakPod(set, node, rev string, ready bool) corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: set + "-" + node, Namespace: soakNamespace,
			Labels: map[string]string{"app": "soak-" + set, appsv1.ControllerRevisionHashLabelKey: rev}},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
	}
}

func soakSetWithStatus(s soakSet, rev string) nasv1alpha1.NodeAgentSet {
	o := s.object()
	o.Generation = 2
	o.Status.ObservedGeneration, o.Status.UpdateRevision = 2, rev
	return *o
}

func TestCheckConverged(t *testing.T) {
	plain, subset := soakSets[0], soakSets[2]
	nodes := []corev1.Node{soakNode("a", true), soakNode("b", false)}
	sets := []nasv1alpha1.NodeAgentSet{soakSetWithStatus(plain, "r2"), soakSetWithStatus(subset, "s2")}
	good := []corev1.Pod{soakPod("plain", "a", "r2", true), soakPod("plain", "b", "r2", true), soakPod("subset", "a", "s2", true)}
	if err := checkConverged(sets, nodes, good); err != nil {
		t.Fatalf("converged sets: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(sets []nasv1alpha1.NodeAgentSet, pods []corev1.Pod) []corev1.Pod
		want string
	}{
		{"a node without a pod", func(_ []nasv1alpha1.NodeAgentSet, p []corev1.Pod) []corev1.Pod { return p[1:] },
			"plain: 1 of 2 eligible nodes without exactly one Ready pod"},
		{"a pod of the old revision", func(_ []nasv1alpha1.NodeAgentSet, p []corev1.Pod) []corev1.Pod {
			p[0] = soakPod("plain", "a", "r1", true)
			return p
		}, "1 pods not Ready or of an older revision"},
		{"a pod not Ready", func(_ []nasv1alpha1.NodeAgentSet, p []corev1.Pod) []corev1.Pod {
			p[2] = soakPod("subset", "a", "s2", false)
			return p
		}, "subset: 1 of 1 eligible nodes"},
		{"two pods on a node", func(_ []nasv1alpha1.NodeAgentSet, p []corev1.Pod) []corev1.Pod {
			extra := soakPod("plain", "a", "r2", true)
			extra.Name += "-x"
			return append(p, extra)
		}, "plain: 1 of 2 eligible nodes"},
		{"a pod on a node out of the subset", func(_ []nasv1alpha1.NodeAgentSet, p []corev1.Pod) []corev1.Pod {
			return append(p, soakPod("subset", "b", "s2", true))
		}, "1 pods on other nodes (subset-b on b)"},
		{"a pod on a deleted node", func(_ []nasv1alpha1.NodeAgentSet, p []corev1.Pod) []corev1.Pod {
			return append(p, soakPod("plain", "gone", "r2", true))
		}, "1 pods on other nodes (plain-gone on gone)"},
		{"status of an older generation", func(s []nasv1alpha1.NodeAgentSet, p []corev1.Pod) []corev1.Pod {
			s[0].Generation = 3
			return p
		}, "plain: status of generation 2, want 3"},
	} {
		s := []nasv1alpha1.NodeAgentSet{soakSetWithStatus(plain, "r2"), soakSetWithStatus(subset, "s2")}
		pods := tc.mod(s, append([]corev1.Pod(nil), good...))
		err := checkConverged(s, nodes, pods)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

func TestStatusWritesIn(t *testing.T) {
	line := func(resource, subresource, verb string, n int) string {
		return fmt.Sprintf(`apiserver_request_total{code="200",component="apiserver",group="apps.nodeagentset.io",`+
			`resource=%q,scope="resource",subresource=%q,verb=%q,version="v1alpha1"} %d`, resource, subresource, verb, n)
	}
	metrics := strings.Join([]string{
		"# HELP apiserver_request_total Counter of apiserver requests.",
		line("nodeagentsets", "status", "PATCH", 40),
		line("nodeagentsets", "status", "PUT", 2),
		line("nodeagentsets", "status", "GET", 7),
		line("nodeagentsets", "", "PATCH", 9),
		line("pods", "status", "PATCH", 1000),
	}, "\n")
	if got := statusWritesIn(metrics); got != 42 {
		t.Errorf("status writes %v, want 42 (the PATCH and PUT of nodeagentsets/status only)", got)
	}
}
