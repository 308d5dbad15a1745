// Command release builds a release's assets into one directory (`make release`, docs/design/release.md):
//
//	nodeagentset-image.oci.tar             the manager's multi-arch image (OCI layout; from `make image`)
//	install.yaml                           config/default rendered, the image pinned to tag@digest
//	nodeagentset-<chart version>.tgz       the Helm chart, its image pinned the same way
//	kubectl-nas_<os>_<arch>.tar.gz|.zip    the kubectl plugin for linux, darwin and windows on amd64 and arm64
//	SHA256SUMS                             the sha256 of each of the above
//	krew/nas.yaml                          hack/krew/nas.yaml with the version, URIs and sha256 filled in
//
// Every archive is written with sorted entries and SOURCE_DATE_EPOCH as every mtime, and every binary is
// built without paths, build ids or VCS stamps: running it twice on one commit gives the same bytes.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nodeagentset/nodeagentset/hack/internal/archive"
)

// options are the command line.
type options struct {
	version     string
	out         string
	imageDir    string
	helm        string
	epoch       string
	downloadURL string
	platforms   string
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var o options
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.StringVar(&o.version, "version", "", "the release's version, e.g. v0.1.0 (the image's tag)")
	fs.StringVar(&o.out, "out", "dist", "output directory (replaced)")
	fs.StringVar(&o.imageDir, "image-dir", "bin/image", "what `make image` wrote (oci.tar, reference)")
	fs.StringVar(&o.helm, "helm", "", "helm, to lint the packaged chart")
	fs.StringVar(&o.epoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "every archive's mtime")
	fs.StringVar(&o.downloadURL, "download-url", "https://github.com/nodeagentset/nodeagentset/releases/download/{version}",
		"where the release's assets are published ({version} is replaced)")
	fs.StringVar(&o.platforms, "plugin-platforms", "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64,windows/arm64",
		"the kubectl plugin's platforms")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.version == "" {
		return errors.New("--version is required")
	}
	mtime, err := archive.Epoch(o.epoch)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(o.out); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(o.out, "krew"), 0o755); err != nil {
		return err
	}

	imageRef, err := copyImage(o)
	if err != nil {
		return err
	}
	license, err := os.ReadFile("LICENSE")
	if err != nil {
		return err
	}
	plugins := map[string]string{}
	for _, platform := range strings.Split(o.platforms, ",") {
		name, err := pluginArchive(o.out, platform, license, mtime)
		if err != nil {
			return err
		}
		plugins[platform] = name
	}
	if err := writeInstallYAML(filepath.Join(o.out, "install.yaml"), imageRef); err != nil {
		return err
	}
	chartFile, err := packageChart(o.out, o.version, imageRef, mtime)
	if err != nil {
		return err
	}
	if o.helm != "" {
		if err := runCmd(nil, o.helm, "lint", "--strict", chartFile); err != nil {
			return fmt.Errorf("the packaged chart: %w", err)
		}
	}
	sums, err := writeChecksums(o.out)
	if err != nil {
		return err
	}
	manifest, err := krewManifest("hack/krew/nas.yaml", o.version, strings.ReplaceAll(o.downloadURL, "{version}", o.version),
		plugins, sums)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "krew", "nas.yaml"), manifest, 0o644); err != nil {
		return err
	}
	fmt.Printf("release %s in %s\nimage %s\n", o.version, o.out, imageRef)
	return nil
}

// copyImage copies the OCI layout tarball of `make image` into the release and returns the image's
// reference (repository:tag@digest).
func copyImage(o options) (string, error) {
	ref, err := os.ReadFile(filepath.Join(o.imageDir, "reference"))
	if err != nil {
		return "", fmt.Errorf("no image: run `make image` first: %w", err)
	}
	imageRef := strings.TrimSpace(string(ref))
	if !strings.Contains(imageRef, ":"+o.version+"@sha256:") {
		return "", fmt.Errorf("the image in %s is %s, not version %s: run `make image VERSION=%s`", o.imageDir, imageRef,
			o.version, o.version)
	}
	data, err := os.ReadFile(filepath.Join(o.imageDir, "oci.tar"))
	if err != nil {
		return "", err
	}
	return imageRef, os.WriteFile(filepath.Join(o.out, "nodeagentset-image.oci.tar"), data, 0o644)
}

// pluginArchive builds kubectl-nas for one platform and writes its archive (a zip for windows, else a
// tar.gz) with the binary and the LICENSE at its root; it returns the archive's file name.
func pluginArchive(out, platform string, license []byte, mtime time.Time) (string, error) {
	goos, goarch, ok := strings.Cut(platform, "/")
	if !ok {
		return "", fmt.Errorf("platform %q: want os/arch", platform)
	}
	bin := "kubectl-nas"
	if goos == "windows" {
		bin += ".exe"
	}
	tmp, err := os.MkdirTemp("", "kubectl-nas-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	fmt.Fprintf(os.Stderr, "building kubectl-nas for %s\n", platform)
	env := []string{"CGO_ENABLED=0", "GOOS=" + goos, "GOARCH=" + goarch, "GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS="}
	if err := runCmd(env, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=",
		"-o", filepath.Join(tmp, bin), "./cmd/kubectl-nas"); err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(tmp, bin))
	if err != nil {
		return "", err
	}
	entries := []archive.Entry{{Name: bin, Mode: 0o755, Data: data}, {Name: "LICENSE", Mode: 0o644, Data: license}}
	var buf bytes.Buffer
	name := fmt.Sprintf("kubectl-nas_%s_%s", goos, goarch)
	if goos == "windows" {
		name += ".zip"
		err = archive.WriteZip(&buf, entries, mtime)
	} else {
		name += ".tar.gz"
		err = archive.WriteTarGz(&buf, entries, mtime)
	}
	if err != nil {
		return "", err
	}
	return name, os.WriteFile(filepath.Join(out, name), buf.Bytes(), 0o644)
}

// writeChecksums writes SHA256SUMS (sha256sum's format) of the release's files and returns the sums by
// file name.
func writeChecksums(out string) (map[string]string, error) {
	entries, err := os.ReadDir(out)
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		sums[e.Name()] = hex.EncodeToString(sum[:])
		names = append(names, e.Name())
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	return sums, os.WriteFile(filepath.Join(out, "SHA256SUMS"), []byte(b.String()), 0o644)
}

// runCmd runs a command in the repository with extra environment; its output goes to stderr.
func runCmd(env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}
