package planner

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func exists(key string, effect corev1.TaintEffect) corev1.Toleration {
	return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect}
}

// autoTolerations is rule 15's list, in upstream's order.
var autoTolerations = []corev1.Toleration{
	exists("node.kubernetes.io/not-ready", corev1.TaintEffectNoExecute),
	exists("node.kubernetes.io/unreachable", corev1.TaintEffectNoExecute),
	exists("node.kubernetes.io/disk-pressure", corev1.TaintEffectNoSchedule),
	exists("node.kubernetes.io/memory-pressure", corev1.TaintEffectNoSchedule),
	exists("node.kubernetes.io/pid-pressure", corev1.TaintEffectNoSchedule),
	exists("node.kubernetes.io/unschedulable", corev1.TaintEffectNoSchedule),
}

var networkUnavailable = exists("node.kubernetes.io/network-unavailable", corev1.TaintEffectNoSchedule)

// TestWithAutomaticTolerations is upstream's AddOrUpdateDaemonPodTolerations (rule 15): the automatic
// tolerations are appended in order; a user toleration with the same key, operator, value and effect is
// replaced in place (dropping tolerationSeconds); every other user toleration keeps its place.
func TestWithAutomaticTolerations(t *testing.T) {
	gpu := corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	notReadyFor := func(s int64) corev1.Toleration {
		tol := exists("node.kubernetes.io/not-ready", corev1.TaintEffectNoExecute)
		tol.TolerationSeconds = ptr.To(s)
		return tol
	}
	tests := []struct {
		name        string
		user        []corev1.Toleration
		hostNetwork bool
		want        []corev1.Toleration
	}{
		{name: "no user tolerations", want: autoTolerations},
		{
			name: "hostNetwork adds network-unavailable last", hostNetwork: true,
			want: concat(autoTolerations, []corev1.Toleration{networkUnavailable}),
		},
		{
			name: "user tolerations come first, in their order",
			user: []corev1.Toleration{gpu, exists("b", "")},
			want: concat([]corev1.Toleration{gpu, exists("b", "")}, autoTolerations),
		},
		{
			name: "same key, operator, value and effect: replaced in place, tolerationSeconds dropped",
			user: []corev1.Toleration{gpu, notReadyFor(300)},
			want: concat([]corev1.Toleration{gpu, autoTolerations[0]}, autoTolerations[1:]),
		},
		{
			name: "every matching user toleration is replaced, not only the first",
			user: []corev1.Toleration{notReadyFor(10), gpu, notReadyFor(20)},
			want: concat([]corev1.Toleration{autoTolerations[0], gpu, autoTolerations[0]}, autoTolerations[1:]),
		},
		{
			name: "same key with another effect is kept and the automatic one appended",
			user: []corev1.Toleration{exists("node.kubernetes.io/not-ready", corev1.TaintEffectNoSchedule)},
			want: concat([]corev1.Toleration{exists("node.kubernetes.io/not-ready", corev1.TaintEffectNoSchedule)}, autoTolerations),
		},
		{
			name: "same key with operator Equal is kept and the automatic one appended",
			user: []corev1.Toleration{{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpEqual, Effect: corev1.TaintEffectNoExecute}},
			want: concat([]corev1.Toleration{{
				Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpEqual, Effect: corev1.TaintEffectNoExecute,
			}}, autoTolerations),
		},
		{
			name: "an empty-key Exists toleration is not merged with the automatic ones",
			user: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			want: concat([]corev1.Toleration{{Operator: corev1.TolerationOpExists}}, autoTolerations),
		},
		{
			name: "user network-unavailable toleration with hostNetwork is replaced in place",
			user: []corev1.Toleration{{
				Key: "node.kubernetes.io/network-unavailable", Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: ptr.To[int64](5),
			}, gpu},
			hostNetwork: true,
			want:        concat([]corev1.Toleration{networkUnavailable, gpu}, autoTolerations),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []corev1.Toleration
			for _, tol := range tt.user {
				before = append(before, *tol.DeepCopy())
			}
			got := WithAutomaticTolerations(tt.user, tt.hostNetwork)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("WithAutomaticTolerations()\n got  %+v\n want %+v", got, tt.want)
			}
			if !reflect.DeepEqual(tt.user, before) {
				t.Errorf("WithAutomaticTolerations modified its input: %+v", tt.user)
			}
		})
	}
}
