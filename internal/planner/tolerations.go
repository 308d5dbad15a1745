package planner

import (
	corev1 "k8s.io/api/core/v1"
)

// automaticTolerations are the tolerations every agent pod gets, in upstream's order (rule 15): the
// agent keeps running through node conditions that would evict or repel ordinary pods.
var automaticTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// hostNetworkToleration is added only for hostNetwork templates: such agents do not need the pod
// network, and a CNI agent is what makes the network available.
var hostNetworkToleration = corev1.Toleration{
	Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule,
}

// WithAutomaticTolerations returns the user's tolerations merged with the automatic ones. Every user
// toleration with the same key, operator, value and effect is replaced by the automatic one (dropping
// any tolerationSeconds); every other user toleration keeps its place. The input is not modified.
func WithAutomaticTolerations(user []corev1.Toleration, hostNetwork bool) []corev1.Toleration {
	auto := automaticTolerations
	if hostNetwork {
		auto = append(append(make([]corev1.Toleration, 0, len(auto)+1), auto...), hostNetworkToleration)
	}
	out := make([]corev1.Toleration, 0, len(user)+len(auto))
	out = append(out, user...)
	for _, t := range auto {
		replaced := false
		for i := range out {
			if sameToleration(out[i], t) {
				// No break: upstream's AddOrUpdateTolerationInPodSpec replaces every match, so a
				// duplicate user toleration cannot smuggle a tolerationSeconds past the replacement.
				out[i] = t
				replaced = true
			}
		}
		if !replaced {
			out = append(out, t)
		}
	}
	return out
}

func sameToleration(a, b corev1.Toleration) bool {
	return a.Key == b.Key && a.Operator == b.Operator && a.Value == b.Value && a.Effect == b.Effect
}
