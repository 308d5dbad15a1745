package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"io"
	"testing"
	"time"
)

func sample() []Entry {
	return []Entry{
		{Name: "b/file", Mode: 0o755, Data: []byte("b")},
		{Name: "a", Mode: 0o644, Data: []byte("a")},
		{Name: "b", Dir: true, Mode: 0o755, UID: 7, GID: 8},
	}
}

// TestArchivesAreReproducible writes each format twice, with the entries in two orders, and expects the
// same bytes, sorted entries and the one modification time.
func TestArchivesAreReproducible(t *testing.T) {
	mtime := time.Unix(1700000000, 0).UTC()
	reversed := sample()
	for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
		reversed[i], reversed[j] = reversed[j], reversed[i]
	}
	for name, write := range map[string]func(io.Writer, []Entry, time.Time) error{
		"tar": WriteTar, "tar.gz": WriteTarGz, "zip": WriteZip,
	} {
		var first, second bytes.Buffer
		if err := write(&first, sample(), mtime); err != nil {
			t.Fatal(err)
		}
		if err := write(&second, reversed, mtime); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Errorf("%s: two writes of the same entries differ", name)
		}
	}
}

// TestWriteTar checks the tar entries' order, time and owners.
func TestWriteTar(t *testing.T) {
	mtime := time.Unix(1700000000, 0).UTC()
	var buf bytes.Buffer
	if err := WriteTar(&buf, sample(), mtime); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if !hdr.ModTime.Equal(mtime) {
			t.Errorf("%s: modified %v, want %v", hdr.Name, hdr.ModTime, mtime)
		}
		if hdr.Name == "b/" && (hdr.Uid != 7 || hdr.Gid != 8) {
			t.Errorf("b/: owner %d:%d, want 7:8", hdr.Uid, hdr.Gid)
		}
	}
	if want := []string{"a", "b/", "b/file"}; len(names) != 3 || names[0] != want[0] || names[1] != want[1] ||
		names[2] != want[2] {
		t.Errorf("tar entries %q, want %q", names, want)
	}
}

// TestWriteZip checks the zip entries' order and modes.
func TestWriteZip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteZip(&buf, sample(), time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if got := zr.File[2].Mode().Perm(); zr.File[2].Name != "b/file" || got != 0o755 {
		t.Errorf("zip entry %s mode %v, want b/file 0755", zr.File[2].Name, got)
	}
}

// TestEpoch reads SOURCE_DATE_EPOCH.
func TestEpoch(t *testing.T) {
	if got, err := Epoch(""); err != nil || got.Unix() != 0 {
		t.Errorf("empty: %v, %v", got, err)
	}
	if got, err := Epoch("1700000000"); err != nil || got.Unix() != 1700000000 {
		t.Errorf("1700000000: %v, %v", got, err)
	}
	if _, err := Epoch("yesterday"); err == nil {
		t.Error("a word was taken for a time")
	}
}
