package plugin

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestHistoryTable(t *testing.T) {
	history := []*appsv1.ControllerRevision{
		rev("a", 1, "first"), rev("b", 2, ""), rev("c", 2, "second, last listed"), rev("d", 10, "tenth"),
	}
	got := historyTable(history)
	want := "REVISION  CHANGE-CAUSE\n" +
		"1         first\n" +
		"2         second, last listed\n" +
		"10        tenth\n"
	if got != want {
		t.Errorf("historyTable =\n%s\nwant\n%s", got, want)
	}
	if found := findRevision(history, 2); found == nil || found.Name != "c" {
		t.Errorf("findRevision(2) = %v, want c (the last listed)", found)
	}
	if target := rollbackTarget(history, 0); target == nil || target.Name != "c" {
		t.Errorf("rollbackTarget(0) = %v, want the second-highest revision", target)
	}
	if rollbackTarget(history[:1], 0) != nil || rollbackTarget(history, 3) != nil {
		t.Error("rollbackTarget found a revision that does not exist")
	}
	if text, err := historyText(nil, nil, 0); err != nil || text != "No rollout history found." {
		t.Errorf("historyText without history = %q, %v", text, err)
	}
}

func rev(name string, n int64, cause string) *appsv1.ControllerRevision {
	cr := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: name}, Revision: n}
	if cause != "" {
		cr.Annotations = map[string]string{ChangeCauseAnnotation: cause}
	}
	return cr
}
