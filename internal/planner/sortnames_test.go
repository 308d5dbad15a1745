package planner

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
)

// TestSortByName checks sortByName against a plain sort of the names, over names that share long
// prefixes, differ only past their first 8 bytes after the shared prefix, end early, or are empty.
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
		keys := make([]viewKey, n)
		for i := range keys {
			name := shapes[rng.Intn(len(shapes))](i)
			if round%2 == 0 {
				name = shapes[round%len(shapes)](i)
			}
			keys[i] = viewKey{name: name, v: &nodeView{name: name}}
		}
		want := make([]string, n)
		for i, k := range keys {
			want[i] = k.name
		}
		slices.Sort(want)
		got := make([]string, 0, n)
		for _, v := range sortByName(keys) {
			got = append(got, v.name)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: sortByName = %q, want %q", round, got, want)
		}
	}
}
