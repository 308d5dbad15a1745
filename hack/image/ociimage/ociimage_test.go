package ociimage

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// fakeOptions stands in for the real binaries: the image's bytes depend on them only as content.
func fakeOptions(created time.Time) Options {
	return Options{
		Binaries: map[string][]byte{
			"linux/arm64": []byte("\x7fELF arm64 manager"),
			"linux/amd64": []byte("\x7fELF amd64 manager"),
		},
		Created: created,
		Labels:  map[string]string{"org.opencontainers.image.version": "v0.0.0-test"},
	}
}

func digestOf(t *testing.T, opts Options) v1.Hash {
	t.Helper()
	idx, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := WriteLayout(filepath.Join(t.TempDir(), "oci"), idx, "example.test/nas:dev")
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

// TestBuildIsReproducible builds the same inputs twice, into two layouts, and expects one digest; a
// different binary or creation time must change it (else the digest would not identify the content).
func TestBuildIsReproducible(t *testing.T) {
	epoch := time.Unix(1700000000, 0).UTC()
	first := digestOf(t, fakeOptions(epoch))
	second := digestOf(t, fakeOptions(epoch))
	if first != second {
		t.Fatalf("two builds of the same inputs: digests %s and %s", first, second)
	}

	otherTime := digestOf(t, fakeOptions(epoch.Add(time.Second)))
	if otherTime == first {
		t.Errorf("another creation time kept the digest %s", first)
	}
	otherBinary := fakeOptions(epoch)
	otherBinary.Binaries["linux/amd64"] = []byte("\x7fELF another amd64 manager")
	if digestOf(t, otherBinary) == first {
		t.Errorf("another binary kept the digest %s", first)
	}
}

// TestImageIsTheDockerfiles checks what the Dockerfile promises: the entrypoint, the non-root user, one
// image per platform, and the binary back out of the layout byte for byte.
func TestImageIsTheDockerfiles(t *testing.T) {
	opts := fakeOptions(time.Unix(0, 0).UTC())
	idx, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if _, err := WriteLayout(dir, idx, "example.test/nas:dev"); err != nil {
		t.Fatal(err)
	}
	for platform, binary := range opts.Binaries {
		img, err := PlatformImage(dir, platform)
		if err != nil {
			t.Fatalf("%s: %v", platform, err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.OS + "/" + cfg.Architecture; got != platform {
			t.Errorf("%s: the config says %s", platform, got)
		}
		if len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != BinaryPath || cfg.Config.User != User {
			t.Errorf("%s: entrypoint %q, user %q; want [%s] and %s", platform, cfg.Config.Entrypoint,
				cfg.Config.User, BinaryPath, User)
		}
		got, err := ExtractFile(dir, platform, BinaryPath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, binary) {
			t.Errorf("%s: extracted %q, built from %q", platform, got, binary)
		}
		if _, err := ExtractFile(dir, platform, "/bin/sh"); err == nil {
			t.Errorf("%s: the image has a shell", platform)
		}
	}
	if _, err := PlatformImage(dir, "linux/s390x"); err == nil {
		t.Error("an image for a platform that was not built")
	}
}

// TestWriteDockerTarball writes the host image as a loadable tarball.
func TestWriteDockerTarball(t *testing.T) {
	img, err := Image(v1.Platform{OS: "linux", Architecture: "amd64"}, []byte("bin"), time.Unix(0, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteDockerTarball(filepath.Join(t.TempDir(), "image.tar"), "example.test/nas:dev", img); err != nil {
		t.Fatal(err)
	}
	if err := WriteDockerTarball(filepath.Join(t.TempDir(), "image.tar"), "Not A Reference", img); err == nil {
		t.Error("an invalid reference was accepted")
	}
}
