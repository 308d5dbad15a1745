package plugin

import "testing"

func TestMentions(t *testing.T) {
	for _, tt := range []struct {
		msg, node string
		want      bool
	}{
		{"failed on node worker-1", "worker-1", true},
		{"worker-1: failed", "worker-1", true},
		{"failed on worker-10", "worker-1", false},
		{"failed on worker-10 and worker-1.", "worker-1", true},
		{"failed on worker-1.example.com", "worker-1", false},
		{"failed on worker-10 and worker-1, retrying", "worker-1", true},
		{"failed on my-worker-1", "worker-1", false},
	} {
		if got := mentions(tt.msg, tt.node); got != tt.want {
			t.Errorf("mentions(%q, %q) = %v", tt.msg, tt.node, got)
		}
	}
}
