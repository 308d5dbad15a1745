// Package ociimage builds the manager's OCI image without a container engine and takes files back out
// of it (docs/design/release.md).
//
// The image is what the Dockerfile builds, from scratch layers instead of distroless/static: one layer
// with the static binary at /manager, /etc/passwd and /etc/group naming the nonroot user 65532, its home
// directory and /tmp; the entrypoint ["/manager"], the user 65532:65532, no shell. Every byte is a
// function of the binaries, the creation time and the labels: the same commit gives the same digest.
package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nodeagentset/nodeagentset/hack/internal/archive"
)

const (
	// BinaryPath is where the manager's binary sits in the image, and the image's entrypoint.
	BinaryPath = "/manager"
	// User is the unprivileged user and group the manager runs as: distroless's "nonroot".
	User = "65532:65532"
	// RefNameAnnotation names an image in an OCI layout's index.json.
	RefNameAnnotation = "org.opencontainers.image.ref.name"
)

// nonrootUID is User's user and group id.
const nonrootUID = 65532

// Options describes the image to build.
type Options struct {
	// Binaries maps a platform ("linux/amd64") to the manager's static binary for it.
	Binaries map[string][]byte
	// Created is the image's creation time and every file's modification time: SOURCE_DATE_EPOCH.
	Created time.Time
	// Labels are the image configuration's labels (org.opencontainers.image.*).
	Labels map[string]string
}

// Build returns the multi-platform image index of the manager, one image per binary.
func Build(opts Options) (v1.ImageIndex, error) {
	if len(opts.Binaries) == 0 {
		return nil, errors.New("no binaries to build an image from")
	}
	platforms := make([]string, 0, len(opts.Binaries))
	for p := range opts.Binaries {
		platforms = append(platforms, p)
	}
	// The index lists the platforms in a fixed order, whatever the map's.
	slices.Sort(platforms)
	var idx v1.ImageIndex = empty.Index
	for _, p := range platforms {
		platform, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", p, err)
		}
		img, err := Image(*platform, opts.Binaries[p], opts.Created, opts.Labels)
		if err != nil {
			return nil, fmt.Errorf("image for %s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: platform},
		})
	}
	return idx, nil
}

// Image returns the manager's image for one platform.
func Image(platform v1.Platform, binary []byte, created time.Time, labels map[string]string) (v1.Image, error) {
	var layerTar bytes.Buffer
	if err := archive.WriteTar(&layerTar, rootFS(binary), created); err != nil {
		return nil, err
	}
	content := layerTar.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(content)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "hack/image: the static manager binary, /etc/passwd and /etc/group",
			Comment:   "equivalent to the Dockerfile's distroless/static:nonroot image",
		},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS = platform.OS
	cfg.Architecture = platform.Architecture
	cfg.Variant = platform.Variant
	cfg.Created = v1.Time{Time: created}
	cfg.Config = v1.Config{
		Entrypoint: []string{BinaryPath},
		User:       User,
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Labels:     labels,
	}
	return mutate.ConfigFile(img, cfg)
}

// rootFS is the image's one layer: what distroless/static:nonroot gives a static binary, less the CA
// certificates and time zones the manager does not read (in a cluster it trusts the ServiceAccount's CA).
func rootFS(binary []byte) []archive.Entry {
	return []archive.Entry{
		{Name: "etc", Dir: true, Mode: 0o755},
		{Name: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{Name: "etc/passwd", Mode: 0o644, Data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{Name: "home", Dir: true, Mode: 0o755},
		{Name: "home/nonroot", Dir: true, Mode: 0o700, UID: nonrootUID, GID: nonrootUID},
		{Name: strings.TrimPrefix(BinaryPath, "/"), Mode: 0o755, Data: binary},
		{Name: "tmp", Dir: true, Mode: 0o777 | os.ModeSticky},
	}
}

// WriteLayout writes the index into an OCI image layout at dir (replacing what was there), named ref in
// index.json, and returns the index's digest.
func WriteLayout(dir string, idx v1.ImageIndex, ref string) (v1.Hash, error) {
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefNameAnnotation: ref})); err != nil {
		return v1.Hash{}, err
	}
	return idx.Digest()
}

// PlatformImage returns the image of one platform ("linux/amd64") in the OCI layout at dir.
func PlatformImage(dir, platform string) (v1.Image, error) {
	want, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	root, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	img, err := findImage(root, *want)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	return img, nil
}

// findImage descends the index (and the indexes it lists) to the image of the platform.
func findImage(idx v1.ImageIndex, want v1.Platform) (v1.Image, error) {
	manifest, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, desc := range manifest.Manifests {
		switch {
		case desc.MediaType.IsIndex():
			child, err := idx.ImageIndex(desc.Digest)
			if err != nil {
				return nil, err
			}
			if img, err := findImage(child, want); err == nil {
				return img, nil
			}
		case desc.MediaType.IsImage() && desc.Platform != nil && desc.Platform.Satisfies(want):
			return idx.Image(desc.Digest)
		}
	}
	return nil, fmt.Errorf("no image for platform %s", want.String())
}

// ExtractFile returns the content of one file (e.g. BinaryPath) of the platform's image in the OCI layout
// at dir: the end-to-end tests run the binary that the image ships.
func ExtractFile(dir, platform, file string) ([]byte, error) {
	img, err := PlatformImage(dir, platform)
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	inLayer := strings.TrimPrefix(path.Clean("/"+file), "/")
	// The topmost layer that has the file wins.
	for i := len(layers) - 1; i >= 0; i-- {
		data, found, err := fileInLayer(layers[i], inLayer)
		if err != nil {
			return nil, err
		}
		if found {
			return data, nil
		}
	}
	return nil, fmt.Errorf("no file %s in the %s image of %s", file, platform, dir)
}

// fileInLayer reads one regular file out of a layer.
func fileInLayer(layer v1.Layer, file string) ([]byte, bool, error) {
	rc, err := layer.Uncompressed()
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		if strings.TrimPrefix(path.Clean("/"+hdr.Name), "/") == file && hdr.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			return data, true, err
		}
	}
}

// WriteDockerTarball writes one platform's image as a tarball that `docker load` and `podman load` take,
// tagged ref (repository:tag).
func WriteDockerTarball(file, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(file, tag, img)
}
