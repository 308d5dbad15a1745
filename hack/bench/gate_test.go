package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestPrintGate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	g := &gateTracker{
		readyAt:   map[string]time.Time{"a": t0.Add(time.Second), "b": t0.Add(2 * time.Second)},
		liftedAt:  map[string]time.Time{"a": t0.Add(1200 * time.Millisecond), "b": t0.Add(2500 * time.Millisecond)},
		gateWrite: 2,
	}
	var out strings.Builder
	if err := printGate(&out, 2, t0, g); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| every agent available (the floor) | 2.0 |", "| every gate lifted | 2.5 |", "| gap | 0.5 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	g.liftedAt["b"] = t0.Add(time.Second)
	if err := printGate(io.Discard, 2, t0, g); err == nil {
		t.Error("a gate lifted before its agent was Ready passed")
	}
	g.liftedAt["b"], g.gateWrite = t0.Add(3*time.Second), 3
	if err := printGate(io.Discard, 2, t0, g); err == nil {
		t.Error("three gate writes for two nodes passed")
	}
}
