package main

import (
	"testing"

	"sigs.k8s.io/yaml"
)

// TestKrewManifest fills hack/krew/nas.yaml's placeholders: every archive is a platform with its URI and
// sha256, and windows runs the .exe.
func TestKrewManifest(t *testing.T) {
	archives := map[string]string{"linux/amd64": "kubectl-nas_linux_amd64.tar.gz", "windows/arm64": "kubectl-nas_windows_arm64.zip"}
	sums := map[string]string{"kubectl-nas_linux_amd64.tar.gz": "aa", "kubectl-nas_windows_arm64.zip": "bb"}
	out, err := krewManifest("../krew/nas.yaml", "v1.2.3", "https://example.test/v1.2.3/", archives, sums)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Metadata struct{ Name string }
		Spec     struct {
			Version          string
			ShortDescription string `json:"shortDescription"`
			Platforms        []struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				}
				URI, Sha256, Bin string
			}
		}
	}
	if err := yaml.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if m.Metadata.Name != "nas" || m.Spec.Version != "v1.2.3" || m.Spec.ShortDescription == "" || len(m.Spec.Platforms) != 2 {
		t.Fatalf("manifest:\n%s", out)
	}
	linux, windows := m.Spec.Platforms[0], m.Spec.Platforms[1]
	if linux.URI != "https://example.test/v1.2.3/kubectl-nas_linux_amd64.tar.gz" || linux.Sha256 != "aa" || linux.Bin != "kubectl-nas" ||
		linux.Selector.MatchLabels["os"] != "linux" || linux.Selector.MatchLabels["arch"] != "amd64" {
		t.Errorf("linux/amd64: %+v", linux)
	}
	if windows.Bin != "kubectl-nas.exe" || windows.Sha256 != "bb" || windows.Selector.MatchLabels["arch"] != "arm64" {
		t.Errorf("windows/arm64: %+v", windows)
	}
	if _, err := krewManifest("../krew/nas.yaml", "v1.2.3", "https://example.test", archives, map[string]string{}); err == nil {
		t.Error("an archive without a checksum was listed")
	}
}
