// Package docs_test checks conventions the repository writes down: that the rule numbers cited in it
// resolve to a written rule, and that each unit test file sits beside the file it tests.
package docs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// root is the repository, seen from this package's directory.
const root = "../.."

const (
	// rulesPage states the upstream DaemonSet rules in our words, one "### N. title" heading each.
	rulesPage = "docs/design/upstream-rules.md"
	// validationPage numbers the API server's checks of a NodeAgentSet in a table of its own, "| N |".
	validationPage = "docs/validation.md"
)

var (
	// citation matches "rule 23", "Rules 21-27", "rules 46, 47", "rules 5, 6 and 8", "rule 5/6".
	citation = regexp.MustCompile(`(?i)\brules? (\d+(?:(?:\s*[-–/]\s*|,\s*(?:and\s+)?|\s+and\s+)\d+)*)`)
	number   = regexp.MustCompile(`\d+`)
	// rulesHeading and validationRow are how the two pages define their numbers.
	rulesHeading  = regexp.MustCompile(`(?m)^### (\d+)\. \S`)
	validationRow = regexp.MustCompile(`(?m)^\| (\d+) \|`)
)

// citedNumbers expands the numbers of one citation: "35-42" is 35 to 42, "5, 6 and 8" is 5, 6, 8.
func citedNumbers(list string) []int {
	var out []int
	parts := number.FindAllStringIndex(list, -1)
	for i, p := range parts {
		n, _ := strconv.Atoi(list[p[0]:p[1]])
		if i > 0 && strings.ContainsAny(list[parts[i-1][1]:p[0]], "-–") {
			for k := out[len(out)-1] + 1; k < n; k++ {
				out = append(out, k)
			}
		}
		out = append(out, n)
	}
	return out
}

// cite is one cited rule number and where.
type cite struct {
	where  string // file:line
	number int
	// validation is true when the number is one of validationPage's, not an upstream rule.
	validation bool
}

// citesValidationTable says whether a citation in file, preceded on its line by before, numbers
// validationPage's table: everything in that page and in the validation suite, and any citation
// written right after the page's name ("docs/validation.md rule 8").
func citesValidationTable(file, before string) bool {
	if file == validationPage || strings.HasPrefix(file, "test/integration/validation/") {
		return true
	}
	before = strings.TrimRight(before, " `(")
	return strings.HasSuffix(before, "validation.md") || strings.HasSuffix(before, "validation.md`")
}

// citations lists every rule number cited in the Go files and in docs/ (Markdown).
func citations(t *testing.T) []cite {
	t.Helper()
	var out []cite
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "bin" || rel == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		isGo := strings.HasSuffix(rel, ".go")
		isDoc := strings.HasPrefix(rel, "docs/") && strings.HasSuffix(rel, ".md")
		if !isGo && !isDoc {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(raw), "\n") {
			for _, m := range citation.FindAllStringSubmatchIndex(line, -1) {
				validation := citesValidationTable(rel, line[:m[0]])
				for _, n := range citedNumbers(line[m[2]:m[3]]) {
					out = append(out, cite{where: rel + ":" + strconv.Itoa(i+1), number: n, validation: validation})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// defined reads the numbers a page defines, failing on a number defined twice.
func defined(t *testing.T, page string, def *regexp.Regexp) map[int]bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, page))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for _, m := range def.FindAllStringSubmatch(string(raw), -1) {
		n, _ := strconv.Atoi(m[1])
		if out[n] && page == rulesPage {
			t.Errorf("%s: rule %d has two headings", page, n)
		}
		out[n] = true
	}
	if len(out) == 0 {
		t.Fatalf("%s defines no number: has its format changed?", page)
	}
	return out
}

// TestCitedRulesAreWritten fails when a comment or a page cites a rule number that the page it refers
// to does not define: upstream rules need a "### N." heading in docs/design/upstream-rules.md, the
// validation suite's numbers a row of docs/validation.md's table.
func TestCitedRulesAreWritten(t *testing.T) {
	rules := defined(t, rulesPage, rulesHeading)
	checks := defined(t, validationPage, validationRow)
	cites := citations(t)
	// The repository cites dozens of rules in both numberings: finding few means the scan is broken.
	var upstream, validation int
	for _, c := range cites {
		if c.validation {
			validation++
			if !checks[c.number] {
				t.Errorf("%s cites rule %d, which %s's table does not have", c.where, c.number, validationPage)
			}
			continue
		}
		upstream++
		if !rules[c.number] {
			t.Errorf("%s cites rule %d, which has no \"### %d.\" heading in %s", c.where, c.number, c.number, rulesPage)
		}
	}
	if upstream < 30 || validation < 10 {
		t.Fatalf("found %d upstream and %d validation citations: expected many more, is the scan broken?", upstream, validation)
	}
}

func TestCitedNumbers(t *testing.T) {
	for _, tt := range []struct {
		text string
		want []int
	}{
		{"rule 23: duplicates", []int{23}},
		{"rules 35-42 of the upstream", []int{35, 36, 37, 38, 39, 40, 41, 42}},
		{"rules 46, 47)", []int{46, 47}},
		{"rules 5, 6 and 8", []int{5, 6, 8}},
		{"rules 11 and 12: template", []int{11, 12}},
		{"rule 5/6: fill", []int{5, 6}},
		{"Rule 1: selector", []int{1}},
	} {
		m := citation.FindStringSubmatch(tt.text)
		if m == nil {
			t.Errorf("%q: no citation found", tt.text)
			continue
		}
		if got := citedNumbers(m[1]); !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %v, want %v", tt.text, got, tt.want)
		}
	}
}
