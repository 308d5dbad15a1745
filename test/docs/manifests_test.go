package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// managerDir holds the manager's Deployment and what ships with it.
const managerDir = "config/manager"

// criticalPriorityClasses are the classes that managed platforms limit to kube-system unless a
// ResourceQuota in the namespace selects them (docs/install.md).
var criticalPriorityClasses = []string{"system-cluster-critical", "system-node-critical"}

// TestCriticalPriorityShipsWithItsQuota: a manager that asks for a critical priority class outside
// kube-system is refused on GKE and other managed platforms unless its namespace has a ResourceQuota
// whose scope selects that class; config/manager must ship one with the Deployment.
func TestCriticalPriorityShipsWithItsQuota(t *testing.T) {
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	readYAML(t, filepath.Join(managerDir, "kustomization.yaml"), &kustomization)
	class := ""
	for _, doc := range documents(t, filepath.Join(managerDir, "manager.yaml")) {
		var deployment appsv1.Deployment
		if unmarshal(t, doc, &deployment); deployment.Kind == "Deployment" {
			class = deployment.Spec.Template.Spec.PriorityClassName
		}
	}
	if !slices.Contains(criticalPriorityClasses, class) {
		t.Skipf("the manager's priority class %q needs no quota", class)
	}
	for _, name := range kustomization.Resources {
		for _, doc := range documents(t, filepath.Join(managerDir, name)) {
			var quota corev1.ResourceQuota
			if unmarshal(t, doc, &quota); quota.Kind == "ResourceQuota" && selectsClass(&quota, class) {
				return
			}
		}
	}
	t.Errorf("%s/manager.yaml asks for priority class %s, but no ResourceQuota of %s/kustomization.yaml selects it",
		managerDir, class, managerDir)
}

// selectsClass: the quota's scope selects pods of the priority class.
func selectsClass(quota *corev1.ResourceQuota, class string) bool {
	if quota.Spec.ScopeSelector == nil {
		return false
	}
	for _, req := range quota.Spec.ScopeSelector.MatchExpressions {
		if req.ScopeName == corev1.ResourceQuotaScopePriorityClass && req.Operator == corev1.ScopeSelectorOpIn &&
			slices.Contains(req.Values, class) {
			return true
		}
	}
	return false
}

// documents splits a YAML file into its documents.
func documents(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1)
}

func unmarshal(t *testing.T, doc string, into any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(doc), into); err != nil {
		t.Fatal(err)
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
