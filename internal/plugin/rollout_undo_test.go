package plugin

import "testing"

func TestParseDryRun(t *testing.T) {
	for in, want := range map[string]dryRun{
		"none": dryRunNone, "client": dryRunClient, "server": dryRunServer, dryRunUnset: dryRunClient, "true": dryRunClient, "false": dryRunNone,
	} {
		if got, err := parseDryRun(in); err != nil || got != want {
			t.Errorf("parseDryRun(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseDryRun("later"); err == nil || err.Error() != `Invalid dry-run value (later). Must be "none", "server", or "client".` {
		t.Errorf("parseDryRun(later) error = %v", err)
	}
	if dryRunClient.suffix() != " (dry run)" || dryRunServer.suffix() != " (server dry run)" || dryRunNone.suffix() != "" {
		t.Error("dry-run suffixes differ from kubectl's")
	}
}
