// Package archive writes tar, tar.gz and zip archives reproducibly: entries sorted by name, one fixed
// modification time, owner and group fixed per entry, no user or group names, so that the same files
// give the same bytes on every machine (docs/design/release.md).
package archive

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Entry is one file or directory of an archive.
type Entry struct {
	// Name is the slash-separated path inside the archive, without a leading slash; a directory's
	// name may end with a slash.
	Name string
	// Dir makes the entry a directory (Data is then ignored).
	Dir bool
	// Mode holds the permission bits (and the sticky bit for a directory such as /tmp).
	Mode fs.FileMode
	// UID and GID own the entry (tar only: zip has no owners).
	UID, GID int
	// Data is a file's content.
	Data []byte
}

// Epoch returns the time of a SOURCE_DATE_EPOCH value (seconds since 1970, UTC); an empty value is the
// epoch itself.
func Epoch(value string) (time.Time, error) {
	if value == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	seconds, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds: %w", value, err)
	}
	return time.Unix(seconds, 0).UTC(), nil
}

// sorted returns the entries ordered by name, with directories' names ending in a slash.
func sorted(entries []Entry) []Entry {
	out := make([]Entry, len(entries))
	copy(out, entries)
	for i := range out {
		out[i].Name = strings.TrimPrefix(out[i].Name, "/")
		if out[i].Dir && !strings.HasSuffix(out[i].Name, "/") {
			out[i].Name += "/"
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// WriteTar writes the entries as a tar stream (PAX format where needed, otherwise USTAR), every entry
// modified at mtime.
func WriteTar(w io.Writer, entries []Entry, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, e := range sorted(entries) {
		hdr := &tar.Header{
			Name:    e.Name,
			Mode:    int64(e.Mode.Perm()),
			Uid:     e.UID,
			Gid:     e.GID,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.Mode&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		if e.Dir {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar header of %s: %w", e.Name, err)
		}
		if !e.Dir {
			if _, err := tw.Write(e.Data); err != nil {
				return fmt.Errorf("tar entry %s: %w", e.Name, err)
			}
		}
	}
	return tw.Close()
}

// WriteTarGz writes the entries as a gzip-compressed tar stream; the gzip header carries no name and
// no time.
func WriteTarGz(w io.Writer, entries []Entry, mtime time.Time) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	if err := WriteTar(gz, entries, mtime); err != nil {
		return err
	}
	return gz.Close()
}

// WriteZip writes the entries as a zip archive, every entry modified at mtime.
func WriteZip(w io.Writer, entries []Entry, mtime time.Time) error {
	zw := zip.NewWriter(w)
	for _, e := range sorted(entries) {
		hdr := &zip.FileHeader{Name: e.Name, Method: zip.Deflate, Modified: mtime}
		mode := e.Mode.Perm()
		if e.Dir {
			mode |= fs.ModeDir
			hdr.Method = zip.Store
		}
		hdr.SetMode(mode)
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return fmt.Errorf("zip entry %s: %w", e.Name, err)
		}
		if !e.Dir {
			if _, err := fw.Write(e.Data); err != nil {
				return fmt.Errorf("zip entry %s: %w", e.Name, err)
			}
		}
	}
	return zw.Close()
}

// DirEntries reads a directory tree into entries named relative to prefix (e.g. "oci"), owned by
// root, files 0644 and directories 0755: the modes and owners of the files on disk do not leak in.
func DirEntries(dir, prefix string) ([]Entry, error) {
	var entries []Entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		if name == "." || name == "" {
			return nil
		}
		if d.IsDir() {
			entries = append(entries, Entry{Name: name, Dir: true, Mode: 0o755})
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		entries = append(entries, Entry{Name: name, Mode: 0o644, Data: data})
		return nil
	})
	return entries, err
}
