package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"golang.org/x/mod/modfile"
)

// TestToolVersionsMatchTheToolsModule: the Makefile names helm and promtool's binaries by version
// (bin/helm-<HELM_VERSION>), but builds them from hack/tools/go.mod's requirements. When the two drift,
// a cached binary of the old version would keep its new name: the versions must agree.
func TestToolVersionsMatchTheToolsModule(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "hack", "tools", "go.mod")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modfile.Parse(path, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	required := map[string]string{}
	for _, r := range mod.Require {
		required[r.Mod.Path] = r.Mod.Version
	}
	for variable, module := range map[string]string{
		"HELM_VERSION":     "helm.sh/helm/v4",
		"PROMTOOL_VERSION": "github.com/prometheus/prometheus",
	} {
		m := regexp.MustCompile(`(?m)^` + variable + ` \?= (\S+)$`).FindSubmatch(makefile)
		if m == nil {
			t.Errorf("the Makefile sets no %s", variable)
			continue
		}
		if got := required[module]; got != string(m[1]) {
			t.Errorf("the Makefile's %s is %s, hack/tools/go.mod requires %s %s", variable, m[1], module, got)
		}
	}
}
