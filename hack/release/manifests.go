package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/mod/semver"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/nodeagentset/nodeagentset/hack/internal/archive"
)

// chartDir is the chart that the release packages.
const chartDir = "charts/nodeagentset"

// renderInstallYAML renders a kustomization (config/default) as `kubectl kustomize` does, with the
// manager container's image set to imageRef.
func renderInstallYAML(dir, imageRef string) ([]byte, error) {
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	pinned := 0
	for _, r := range resMap.Resources() {
		if r.GetKind() != "Deployment" {
			continue
		}
		container, err := r.Pipe(kyaml.Lookup("spec", "template", "spec", "containers", "[name=manager]"))
		if err != nil || container == nil {
			continue
		}
		if err := container.PipeE(kyaml.SetField("image", kyaml.NewStringRNode(imageRef))); err != nil {
			return nil, err
		}
		pinned++
	}
	if pinned != 1 {
		return nil, fmt.Errorf("kustomize %s: %d manager containers, want 1", dir, pinned)
	}
	return resMap.AsYaml()
}

// writeInstallYAML writes config/default for the release's image.
func writeInstallYAML(file, imageRef string) error {
	out, err := renderInstallYAML("config/default", imageRef)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("# NodeAgentSet, image %s: config/default rendered by `make release`.\n"+
		"# kubectl apply --server-side -f install.yaml (the CRD is too large for client-side apply).\n", imageRef)
	return os.WriteFile(file, append([]byte(header), out...), 0o644)
}

// chartVersion is the chart's SemVer 2 version of a release version: v0.1.0 gives 0.1.0; what is not
// SemVer (a bare commit from git describe) becomes a pre-release of 0.0.0.
func chartVersion(version string) string {
	v := "v" + strings.TrimPrefix(version, "v")
	if semver.IsValid(v) && semver.Canonical(v) == strings.SplitN(v, "+", 2)[0] {
		return strings.TrimPrefix(v, "v")
	}
	return "0.0.0-" + regexp.MustCompile(`[^0-9A-Za-z-]+`).ReplaceAllString(strings.TrimPrefix(version, "v"), "-")
}

// replaceLine replaces the one line that matches pattern, or fails.
func replaceLine(file string, data []byte, pattern, line string) ([]byte, error) {
	re := regexp.MustCompile("(?m)" + pattern)
	if n := len(re.FindAll(data, -1)); n != 1 {
		return nil, fmt.Errorf("%s: %d lines match %q, want 1", file, n, pattern)
	}
	return re.ReplaceAllLiteral(data, []byte(line)), nil
}

// chartEntries returns the chart's files for a release: Chart.yaml's version and appVersion, and
// values.yaml's image tag and digest, set to the release's.
func chartEntries(dir, version, imageRef string) ([]archive.Entry, error) {
	_, digest, ok := strings.Cut(imageRef, "@")
	if !ok {
		return nil, fmt.Errorf("image %s has no digest", imageRef)
	}
	entries, err := archive.DirEntries(dir, filepath.Base(dir))
	if err != nil {
		return nil, err
	}
	base := filepath.Base(dir) + "/"
	for i := range entries {
		e := &entries[i]
		switch e.Name {
		case base + "Chart.yaml":
			if e.Data, err = replaceLine(e.Name, e.Data, `^version: .*$`, "version: "+chartVersion(version)); err != nil {
				return nil, err
			}
			e.Data, err = replaceLine(e.Name, e.Data, `^appVersion: .*$`, fmt.Sprintf("appVersion: %q", version))
		case base + "values.yaml":
			if e.Data, err = replaceLine(e.Name, e.Data, `^  tag: .*$`, fmt.Sprintf("  tag: %q", version)); err != nil {
				return nil, err
			}
			e.Data, err = replaceLine(e.Name, e.Data, `^  digest: .*$`, fmt.Sprintf("  digest: %q", digest))
		}
		if err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// packageChart writes the chart as `helm package` does (a gzipped tar of <name>/...), reproducibly, and
// returns the file.
func packageChart(out, version, imageRef string, mtime time.Time) (string, error) {
	entries, err := chartEntries(chartDir, version, imageRef)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := archive.WriteTarGz(&buf, entries, mtime); err != nil {
		return "", err
	}
	file := filepath.Join(out, fmt.Sprintf("%s-%s.tgz", filepath.Base(chartDir), chartVersion(version)))
	return file, os.WriteFile(file, buf.Bytes(), 0o644)
}
