package main

import (
	"strings"
	"testing"
)

const testImage = "ghcr.io/nodeagentset/nodeagentset:v1.2.3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestChartVersion(t *testing.T) {
	for version, want := range map[string]string{
		"v0.1.0":              "0.1.0",
		"0.1.0":               "0.1.0",
		"v1.2.3-rc.1":         "1.2.3-rc.1",
		"v0.1.0-3-gabc1234":   "0.1.0-3-gabc1234",
		"03b9713":             "0.0.0-03b9713",
		"03b9713-dirty":       "0.0.0-03b9713-dirty",
		"v0.1.0-3-gabc-dirty": "0.1.0-3-gabc-dirty",
		"feature/x_y":         "0.0.0-feature-x-y",
		"v1.2":                "0.0.0-1-2",
	} {
		if got := chartVersion(version); got != want {
			t.Errorf("chartVersion(%q) = %q, want %q", version, got, want)
		}
	}
}

// TestRenderInstallYAML renders config/default with the release's image on the manager, and nothing
// else changed: the CRD and the RBAC are there.
func TestRenderInstallYAML(t *testing.T) {
	out, err := renderInstallYAML("../../config/default", testImage)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.Contains(s, "image: "+testImage+"\n") || strings.Contains(s, "controller:latest") {
		t.Errorf("install.yaml does not run %s:\n%s", testImage, grepLines(s, "image:"))
	}
	for _, want := range []string{"kind: CustomResourceDefinition", "kind: ClusterRole", "kind: Deployment", "name: nodeagentset-system"} {
		if !strings.Contains(s, want) {
			t.Errorf("install.yaml has no %q", want)
		}
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestChartEntries pins the packaged chart's version, appVersion, image tag and digest to the release's.
func TestChartEntries(t *testing.T) {
	entries, err := chartEntries("../../charts/nodeagentset", "v1.2.3", testImage)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		files[e.Name] = string(e.Data)
	}
	chart, values := files["nodeagentset/Chart.yaml"], files["nodeagentset/values.yaml"]
	for _, want := range []string{"\nversion: 1.2.3\n", "\nappVersion: \"v1.2.3\"\n"} {
		if !strings.Contains(chart, want) {
			t.Errorf("Chart.yaml lacks %q:\n%s", want, chart)
		}
	}
	for _, want := range []string{"\n  tag: \"v1.2.3\"\n", "\n  digest: \"sha256:0123456789abcdef"} {
		if !strings.Contains(values, want) {
			t.Errorf("values.yaml lacks %q", want)
		}
	}
	if files["nodeagentset/templates/deployment.yaml"] == "" || files["nodeagentset/crds/apps.nodeagentset.io_nodeagentsets.yaml"] == "" {
		t.Error("the package lacks the templates or the CRD")
	}
	if _, err := chartEntries("../../charts/nodeagentset", "v1.2.3", "ghcr.io/x:v1"); err == nil {
		t.Error("an image without a digest was packaged")
	}
}
