// Command image builds the manager's multi-platform OCI image without a container engine (`make image`),
// and takes a file back out of it (docs/design/release.md):
//
//	go run ./hack/image build --out bin/image --platforms linux/amd64,linux/arm64 \
//	    --repository ghcr.io/nodeagentset/nodeagentset --tag v0.1.0
//	go run ./hack/image extract --layout bin/image/oci --platform linux/amd64 --file /manager --out bin/manager
//
// build compiles ./cmd for each platform (CGO_ENABLED=0, -trimpath, no build id), writes the OCI layout
// <out>/oci (index.json names the index repository:tag), the layout as one tarball <out>/oci.tar, the
// host's platform as a `docker load` tarball <out>/image-<os>-<arch>.tar, and the index digest to
// <out>/digest and the full reference (repository:tag@digest) to <out>/reference, then prints the
// digest. SOURCE_DATE_EPOCH (the commit time, or 0) is the image's creation time and every file's
// modification time.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/nodeagentset/nodeagentset/hack/image/ociimage"
	"github.com/nodeagentset/nodeagentset/hack/internal/archive"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// run dispatches the subcommand.
func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: image build|extract [flags]")
	}
	switch args[0] {
	case "build":
		return runBuild(args[1:])
	case "extract":
		return runExtract(args[1:])
	default:
		return fmt.Errorf("unknown subcommand %q: build or extract", args[0])
	}
}

// buildOptions are build's flags.
type buildOptions struct {
	out        string
	platforms  string
	repository string
	tag        string
	pkg        string
	epoch      string
	revision   string
}

// runBuild builds the image and writes its layout and tarballs.
func runBuild(args []string) error {
	var o buildOptions
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.StringVar(&o.out, "out", "bin/image", "output directory (replaced)")
	fs.StringVar(&o.platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated os/arch list")
	fs.StringVar(&o.repository, "repository", "ghcr.io/nodeagentset/nodeagentset", "image repository")
	fs.StringVar(&o.tag, "tag", "dev", "image tag (the version)")
	fs.StringVar(&o.pkg, "package", "./cmd", "the manager's main package")
	fs.StringVar(&o.epoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"),
		"creation time in seconds since 1970 (default $SOURCE_DATE_EPOCH, else 0)")
	fs.StringVar(&o.revision, "revision", "", "the commit, for the org.opencontainers.image.revision label")
	if err := fs.Parse(args); err != nil {
		return err
	}
	created, err := archive.Epoch(o.epoch)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "nodeagentset-image-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	binaries := map[string][]byte{}
	for _, platform := range strings.Split(o.platforms, ",") {
		bin, err := compile(o.pkg, platform, tmp)
		if err != nil {
			return err
		}
		binaries[platform] = bin
	}
	labels := map[string]string{
		"org.opencontainers.image.title":    "nodeagentset",
		"org.opencontainers.image.source":   "https://github.com/nodeagentset/nodeagentset",
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.version":  o.tag,
		"org.opencontainers.image.created":  created.Format("2006-01-02T15:04:05Z"),
	}
	if o.revision != "" {
		labels["org.opencontainers.image.revision"] = o.revision
	}
	idx, err := ociimage.Build(ociimage.Options{Binaries: binaries, Created: created, Labels: labels})
	if err != nil {
		return err
	}
	ref := o.repository + ":" + o.tag
	layoutDir := filepath.Join(o.out, "oci")
	digest, err := ociimage.WriteLayout(layoutDir, idx, ref)
	if err != nil {
		return err
	}
	if err := writeLayoutTarball(layoutDir, filepath.Join(o.out, "oci.tar"), created); err != nil {
		return err
	}
	// The host's architecture as a tarball that a container engine loads.
	if _, ok := binaries["linux/"+runtime.GOARCH]; ok {
		img, err := ociimage.PlatformImage(layoutDir, "linux/"+runtime.GOARCH)
		if err != nil {
			return err
		}
		file := filepath.Join(o.out, "image-linux-"+runtime.GOARCH+".tar")
		if err := ociimage.WriteDockerTarball(file, ref, img); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(o.out, "digest"), []byte(digest.String()+"\n"), 0o644); err != nil {
		return err
	}
	full := ref + "@" + digest.String()
	if err := os.WriteFile(filepath.Join(o.out, "reference"), []byte(full+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("image %s\nindex digest %s\nOCI layout %s (and %s)\n", full, digest, layoutDir,
		filepath.Join(o.out, "oci.tar"))
	return nil
}

// compile builds the static manager binary of one platform ("linux/arm64") and returns it. The flags make
// the binary a function of the source and the Go version alone: no paths, no build id, no VCS stamp,
// and the baseline instruction set whatever GOAMD64 or GOARM64 the caller's environment sets.
func compile(pkg, platform, dir string) ([]byte, error) {
	goos, goarch, ok := strings.Cut(platform, "/")
	if !ok || goos != "linux" {
		return nil, fmt.Errorf("platform %q: want linux/<arch>", platform)
	}
	out := filepath.Join(dir, "manager-"+goos+"-"+goarch)
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch,
		"GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stdout = os.Stderr
	cmd.Stderr = &stderr
	fmt.Fprintf(os.Stderr, "building %s for %s\n", pkg, platform)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build for %s: %w\n%s", platform, err, stderr.String())
	}
	return os.ReadFile(out)
}

// writeLayoutTarball writes the OCI layout as one reproducible tarball (`skopeo copy oci-archive:...`,
// `crane push`, the release's asset).
func writeLayoutTarball(layoutDir, file string, mtime time.Time) error {
	entries, err := archive.DirEntries(layoutDir, "")
	if err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := archive.WriteTar(f, entries, mtime); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// runExtract writes one file of one platform's image in an OCI layout to --out (mode 0755).
func runExtract(args []string) error {
	fs := flag.NewFlagSet("extract", flag.ContinueOnError)
	layoutDir := fs.String("layout", "bin/image/oci", "the OCI layout")
	platform := fs.String("platform", "linux/"+runtime.GOARCH, "the image's platform")
	file := fs.String("file", ociimage.BinaryPath, "the file to take out")
	out := fs.String("out", "", "where to write it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("extract needs --out")
	}
	data, err := ociimage.ExtractFile(*layoutDir, *platform, *file)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, data, 0o755)
}
