package docs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// unitTestTrees are the directories whose test files must each sit beside the file they test. The
// suites under test/ (integration, e2e, these checks) are out of scope: they are named by scenario,
// not by a source file.
var unitTestTrees = []string{"api", "cmd", "internal", "hack"}

// supportTestFiles are the test files allowed without a source file of their stem: a package's one
// file of shared test helpers, and a Ginkgo suite's entry point.
var supportTestFiles = map[string]bool{"fixtures_test.go": true, "suite_test.go": true}

// TestEachTestFileSitsBesideItsSource fails when a foo_test.go under api/, cmd/, internal/ or hack/
// has no foo.go in its directory (STYLE.md, principle 9: files are named by concern and each has its
// _test.go). Move such tests beside the code they exercise, or their helpers into fixtures_test.go.
func TestEachTestFileSitsBesideItsSource(t *testing.T) {
	var checked int
	for _, tree := range unitTestTrees {
		err := filepath.WalkDir(filepath.Join(root, tree), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				// The go tool ignores testdata and hidden directories; so does this check.
				if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			name := d.Name()
			if !strings.HasSuffix(name, "_test.go") || supportTestFiles[name] {
				return nil
			}
			checked++
			source := strings.TrimSuffix(name, "_test.go") + ".go"
			_, err = os.Stat(filepath.Join(filepath.Dir(path), source))
			if errors.Is(err, fs.ErrNotExist) {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s has no %s beside it: move its tests next to the file they test", filepath.ToSlash(rel), source)
				return nil
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The repository has dozens of unit test files: finding few means the scan is broken.
	if checked < 20 {
		t.Fatalf("checked %d test files: expected many more, is the scan broken?", checked)
	}
}
