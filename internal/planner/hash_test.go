package planner

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestTemplateHashIsDeterministic(t *testing.T) {
	a := newSet().Spec.Template
	b := *a.DeepCopy()
	// The same labels inserted in another order.
	b.Labels = map[string]string{}
	for _, k := range []string{"type", "name"} {
		b.Labels[k] = a.Labels[k]
	}
	before := a.DeepCopy()
	h := TemplateHash(&a, nil)
	for i := 0; i < 10; i++ {
		if got := TemplateHash(&a, nil); got != h {
			t.Fatalf("hash %d is %q, first was %q", i, got, h)
		}
	}
	if got := TemplateHash(&b, nil); got != h {
		t.Errorf("an equal template hashes to %q, want %q", got, h)
	}
	if !reflect.DeepEqual(&a, before) {
		t.Errorf("TemplateHash modified the template")
	}
	if h == "" || strings.Trim(h, "bcdfghjklmnpqrstvwxz2456789") != "" {
		t.Errorf("hash %q is empty or uses characters outside the safe alphabet", h)
	}
}

func TestTemplateHashChangesWithTemplate(t *testing.T) {
	base := newSet().Spec.Template
	baseHash := TemplateHash(&base, nil)
	changes := map[string]func(*corev1.PodTemplateSpec){
		"image": func(t *corev1.PodTemplateSpec) { t.Spec.Containers[0].Image = "foo/bar:2" },
		"env": func(t *corev1.PodTemplateSpec) {
			t.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "VERSION", Value: "2"}}
		},
		"label": func(t *corev1.PodTemplateSpec) { t.Labels["extra"] = "x" },
		"annotation": func(t *corev1.PodTemplateSpec) {
			t.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": "now"}
		},
		"toleration": func(t *corev1.PodTemplateSpec) {
			t.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		},
		"nodeSelector":   func(t *corev1.PodTemplateSpec) { t.Spec.NodeSelector = map[string]string{"a": "b"} },
		"grace period":   func(t *corev1.PodTemplateSpec) { t.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1) },
		"host network":   func(t *corev1.PodTemplateSpec) { t.Spec.HostNetwork = true },
		"container name": func(t *corev1.PodTemplateSpec) { t.Spec.Containers[0].Name = "other" },
	}
	seen := map[string]string{baseHash: "base"}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			tmpl := base.DeepCopy()
			change(tmpl)
			h := TemplateHash(tmpl, nil)
			if prev, dup := seen[h]; dup {
				t.Errorf("hash %q of %q equals the hash of %q", h, name, prev)
			}
			seen[h] = name
		})
	}
}

func TestTemplateHashChangesWithCollisionCount(t *testing.T) {
	tmpl := newSet().Spec.Template
	hashes := map[string]string{}
	for name, count := range map[string]*int32{"nil": nil, "0": ptr.To[int32](0), "1": ptr.To[int32](1), "2": ptr.To[int32](2), "256": ptr.To[int32](256)} {
		h := TemplateHash(&tmpl, count)
		if prev, dup := hashes[h]; dup {
			t.Errorf("collisionCount %s hashes like collisionCount %s: %q", name, prev, h)
		}
		hashes[h] = name
		if again := TemplateHash(&tmpl, ptrCopy(count)); again != h {
			t.Errorf("collisionCount %s: %q then %q", name, h, again)
		}
	}
}

func ptrCopy(p *int32) *int32 {
	if p == nil {
		return nil
	}
	return ptr.To(*p)
}
