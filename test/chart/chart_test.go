// Package chart_test checks that charts/nodeagentset renders what config/ renders (`make test-helm`,
// `make verify`): with the default values, the chart's objects are config/default's, named after the
// release, labelled by Helm instead of kustomize. A change to config/ that the chart does not follow
// fails here.
package chart_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// root is the repository, from test/chart.
const root = "../.."

// chartDir is the chart under test.
var chartDir = filepath.Join(root, "charts", "nodeagentset")

// helmBinary is the helm that `make test-helm` builds (bin/helm-<version>).
func helmBinary(t *testing.T) string {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		t.Fatal("HELM is not set: run `make test-helm`, which builds helm and sets it")
	}
	return helm
}

// helmTemplate renders the chart with the release nodeagentset in nodeagentset-system, CRDs included.
func helmTemplate(t *testing.T, values ...string) []*unstructured.Unstructured {
	t.Helper()
	args := make([]string, 0, 6+2*len(values))
	args = append(args, "template", "nodeagentset", chartDir, "--namespace", "nodeagentset-system", "--include-crds")
	for _, v := range values {
		args = append(args, "--set", v)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return decode(t, stdout.Bytes())
}

// kustomize renders a kustomization of config/ as `kubectl kustomize` does.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, dir))
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	out, err := resMap.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

func decode(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		obj := map[string]any{}
		if err := dec.Decode(&obj); err != nil {
			if err.Error() == "EOF" {
				return objs
			}
			t.Fatalf("decoding rendered objects: %v", err)
		}
		if len(obj) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: obj})
		}
	}
}

func key(u *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
}

func byKey(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	m := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		m[key(u)] = u
	}
	return m
}

// helmOnlyLabels are the labels the chart adds to config/'s: Helm's, and the name that config/rbac's
// generated role.yaml lacks.
var helmOnlyLabels = []string{"app.kubernetes.io/instance", "app.kubernetes.io/version", "helm.sh/chart",
	"app.kubernetes.io/name"}

// TestDefaultValuesRenderConfigDefault compares every object of config/default with the chart's of the
// same kind and name: equal, except that the chart's labels say Helm manages it and name the release.
func TestDefaultValuesRenderConfigDefault(t *testing.T) {
	want := byKey(kustomize(t, "config/default"))
	// config/default ships the Namespace and the image controller:latest (make deploy sets the image).
	got := byKey(helmTemplate(t, "namespace.create=true", "image.repository=controller", "image.tag=latest"))
	if len(want) < 10 {
		t.Fatalf("config/default rendered %d objects: expected many more", len(want))
	}

	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, g := want[k], got[k]
		if g == nil {
			t.Errorf("%s: in config/default, not in the chart", k)
			continue
		}
		if w.GetKind() != "CustomResourceDefinition" {
			// Helm installs crds/ as they are, a copy of config/crd/bases: without labels.
			checkLabels(t, k, w.GetLabels(), g.GetLabels())
		}
		w, g = w.DeepCopy(), g.DeepCopy()
		w.SetLabels(nil)
		g.SetLabels(nil)
		if diff := cmp.Diff(w.Object, g.Object); diff != "" {
			t.Errorf("%s: the chart differs from config/default (-config/default +chart):\n%s", k, diff)
		}
	}
	for k := range got {
		if want[k] == nil {
			t.Errorf("%s: in the chart, not in config/default", k)
		}
	}
}

// checkLabels wants config/default's labels on the chart's object, less kustomize's managed-by, and
// Helm's besides.
func checkLabels(t *testing.T, k string, wantLabels, gotLabels map[string]string) {
	t.Helper()
	for name, value := range wantLabels {
		if name == "app.kubernetes.io/managed-by" {
			continue
		}
		if gotLabels[name] != value {
			t.Errorf("%s: label %s=%q, config/default has %q", k, name, gotLabels[name], value)
		}
	}
	if gotLabels["app.kubernetes.io/managed-by"] != "Helm" || gotLabels["app.kubernetes.io/instance"] != "nodeagentset" {
		t.Errorf("%s: labels %v do not name the Helm release", k, gotLabels)
	}
	for _, name := range append(helmOnlyLabels, "app.kubernetes.io/managed-by") {
		delete(gotLabels, name)
		delete(wantLabels, name)
	}
	for name := range gotLabels {
		if _, ok := wantLabels[name]; !ok {
			t.Errorf("%s: label %s is not config/default's", k, name)
		}
	}
}

// TestMonitoringRendersConfigPrometheus compares the ServiceMonitor and the PrometheusRule, off by
// default, with config/prometheus's.
func TestMonitoringRendersConfigPrometheus(t *testing.T) {
	want := map[string]*unstructured.Unstructured{}
	for _, u := range kustomize(t, "config/prometheus") {
		want[u.GetKind()] = u
	}
	got := map[string]*unstructured.Unstructured{}
	for _, u := range helmTemplate(t, "metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true") {
		got[u.GetKind()] = u
	}
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
		if want[kind] == nil || got[kind] == nil {
			t.Errorf("%s: config/prometheus has %v, the chart %v", kind, want[kind] != nil, got[kind] != nil)
			continue
		}
		if diff := cmp.Diff(want[kind].Object["spec"], got[kind].Object["spec"]); diff != "" {
			t.Errorf("%s: the chart's spec differs from config/prometheus's (-config +chart):\n%s", kind, diff)
		}
	}

	for _, u := range helmTemplate(t) {
		if kind := u.GetKind(); kind == "ServiceMonitor" || kind == "PrometheusRule" {
			t.Errorf("%s rendered with the default values: it needs the Prometheus Operator's CRDs", kind)
		}
	}
}

// deploymentOf returns the manager's Deployment of a rendering.
func deploymentOf(t *testing.T, objs []*unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == "Deployment" {
			return u
		}
	}
	t.Fatal("no Deployment rendered")
	return nil
}

// TestValuesReachTheManager sets the values a platform team sets and reads them back from the Deployment.
func TestValuesReachTheManager(t *testing.T) {
	d := deploymentOf(t, helmTemplate(t,
		"image.tag=v1.2.3", "image.digest=sha256:0123", "replicas=3",
		"leaderElection.leaseDuration=30s", "leaderElection.renewDeadline=20s", "leaderElection.retryPeriod=4s",
		"kubeAPI.qps=50", "kubeAPI.burst=100", "readinessGate.taintPrefixes={readiness.example.com/,net.example.com/ready-}",
		"resources.limits.memory=1Gi",
	))
	replicas, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas")
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	manager := containers[0].(map[string]any)
	args := fmt.Sprint(manager["args"])
	limits, _, _ := unstructured.NestedString(manager, "resources", "limits", "memory")
	if fmt.Sprint(replicas) != "3" || manager["image"] != "ghcr.io/nodeagentset/nodeagentset:v1.2.3@sha256:0123" || limits != "1Gi" {
		t.Errorf("replicas %v, image %v, memory limit %s", replicas, manager["image"], limits)
	}
	for _, flag := range []string{
		"--leader-elect", "--leader-elect-lease-duration=30s", "--leader-elect-renew-deadline=20s",
		"--leader-elect-retry-period=4s", "--kube-api-qps=50", "--kube-api-burst=100",
		"--readiness-gate-taint-prefixes=readiness.example.com/,net.example.com/ready-",
	} {
		if !strings.Contains(args, flag+" ") && !strings.HasSuffix(args, flag+"]") {
			t.Errorf("args %s lack %s", args, flag)
		}
	}

	d = deploymentOf(t, helmTemplate(t, "leaderElection.enabled=false", "metrics.enabled=false"))
	containers, _, _ = unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	args = fmt.Sprint(containers[0].(map[string]any)["args"])
	if strings.Contains(args, "--leader-elect") || !strings.Contains(args, "--metrics-bind-address=0") {
		t.Errorf("leader election and metrics off: args %s", args)
	}
}
