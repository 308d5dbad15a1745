package plugin

import (
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

func TestErrorMessage(t *testing.T) {
	notFound := apierrors.NewNotFound(setGVR.GroupResource(), "x")
	tests := []struct {
		err  error
		want string
	}{
		{notFound, `Error from server (NotFound): nodeagentsets.apps.nodeagentset.io "x" not found`},
		{errors.New("boom"), "error: boom"},
		{errors.New("error: already prefixed"), "error: already prefixed"},
		{apierrors.NewUnauthorized("token expired"), "error: You must be logged in to the server (token expired)"},
	}
	for _, tt := range tests {
		if got := errorMessage(tt.err); got != tt.want {
			t.Errorf("errorMessage(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
