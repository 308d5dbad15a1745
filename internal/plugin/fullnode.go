package plugin

import (
	"fmt"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
)

// nodeFull explains an agent pod the scheduler cannot place because the node is full: for each
// resource it lacks (and each it requests), the pod's request against the node's free allocatable
// (allocatable less the requests of the pods on the node), then how to make room.
func (e *explainer) nodeFull(pod *corev1.Pod) {
	r := e.r
	e.detail("Agent pod %s is pending: the node is full (the scheduler says: %s).", pod.Name, r.reason.Message)
	if r.nodePodsForbidden {
		e.detail("You may not list the pods of every namespace: the requests of the node's other pods are left out below.")
	}
	for _, line := range resourceLines(pod, r.node, r.nodePods, r.reason.Resources) {
		e.detail("%s", line)
	}
	if pc := pod.Spec.PriorityClassName; pc != "" {
		e.detail("The agent runs with PriorityClass %s; a higher one, such as system-node-critical, lets the scheduler preempt more pods.", pc)
	} else {
		e.detail("Give the agent a PriorityClass such as system-node-critical (spec.template.spec.priorityClassName): the scheduler " +
			"then preempts lower-priority pods to make room. Or lower the agent's requests.")
	}
}

// resourceLines compares, per resource, what the agent pod requests with what the node has free:
// "cpu: the agent requests 500m; the node has 2 allocatable, 1900m requested by 12 pods: 100m free".
// lacking are the resources the scheduler names; those the pod requests follow.
func resourceLines(pod *corev1.Pod, node *corev1.Node, nodePods []*corev1.Pod, lacking []string) []string {
	requests := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	used := corev1.ResourceList{}
	running := 0
	for _, p := range nodePods {
		if p.UID == pod.UID || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		running++
		for name, q := range resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{}) {
			sum := used[name]
			sum.Add(q)
			used[name] = sum
		}
	}
	names := append([]string(nil), lacking...)
	requested := make([]string, 0, len(requests))
	for name := range requests {
		requested = append(requested, string(name))
	}
	sort.Strings(requested)
	for _, name := range requested {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	var out []string
	for _, name := range names {
		res := corev1.ResourceName(name)
		if res == corev1.ResourcePods {
			out = append(out, fmt.Sprintf("pods: the node allows %s pods and runs %d.", quantity(node.Status.Allocatable, res), running))
			continue
		}
		alloc, ok := node.Status.Allocatable[res]
		if !ok {
			out = append(out, fmt.Sprintf("%s: the agent requests %s; the node has none allocatable.", name, quantity(requests, res)))
			continue
		}
		free := alloc.DeepCopy()
		free.Sub(used[res])
		u := used[res]
		out = append(out, fmt.Sprintf("%s: the agent requests %s; the node has %s allocatable, %s requested by %d pods: %s free.",
			name, quantity(requests, res), alloc.String(), u.String(), running, free.String()))
	}
	return out
}

func quantity(list corev1.ResourceList, name corev1.ResourceName) string {
	q, ok := list[name]
	if !ok {
		return "0"
	}
	return q.String()
}
