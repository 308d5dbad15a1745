package planner

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

// TestSortByName checks sortByName against a plain sort of the names (some side by side in one
// string, some read from their views), over names that share long prefixes, differ only past their
// first 8 bytes after the shared prefix, end early, or are empty.
func TestSortByName(t *testing.T) {
	rng := rand.New(rand.NewSource(20))
	shapes := []func(i int) string{
		func(i int) string { return fmt.Sprintf("node-%d", rng.Intn(100000)) },
		func(i int) string { return fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", rng.Intn(256), rng.Intn(256)) },
		func(i int) string {
			return fmt.Sprintf("gke-prod-pool-%d-aaaaaaaaaaaa-%04x", rng.Intn(3), rng.Intn(65536))
		},
		func(i int) string { return "n" + string(rune('a'+rng.Intn(3))) + fmt.Sprint(rng.Intn(5))[:rng.Intn(2)] },
		func(i int) string { return []string{"", "a", "aa", "a\x00", "b", "ab"}[rng.Intn(6)] },
	}
	for round := range 300 {
		n := rng.Intn(600)
		// Some views come with their names side by side, as newWorld gives them; the rest, the more
		// views, without.
		views := make([]nodeView, n)
		var more []*nodeView
		var names strings.Builder
		want := make([]string, 0, n)
		for i := range views {
			name := shapes[rng.Intn(len(shapes))](i)
			if round%2 == 0 {
				name = shapes[round%len(shapes)](i)
			}
			want = append(want, name)
			if rng.Intn(10) == 0 {
				more = append(more, &nodeView{name: name})
				continue
			}
			views[i-len(more)] = nodeView{name: name}
			names.WriteString(name)
		}
		views = views[:n-len(more)]
		slices.Sort(want)
		got := make([]string, 0, n)
		for _, v := range sortByName(views, names.String(), more) {
			got = append(got, v.name)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: sortByName = %q, want %q", round, got, want)
		}
	}
}
