package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// Names of the NodeAgentSet resource, as kubectl prints them.
var (
	setGVR  = nasv1alpha1.GroupVersion.WithResource("nodeagentsets")
	setGVK  = nasv1alpha1.GroupVersion.WithKind("NodeAgentSet")
	setNoun = "node agent set"
)

// ChangeCauseAnnotation is the annotation kubectl rollout history shows; the controller copies the
// set's annotations onto each revision when it creates it.
const ChangeCauseAnnotation = "kubernetes.io/change-cause"

// RestartedAtAnnotation is the template annotation kubectl rollout restart sets.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// objectName is kubectl's name printer form: nodeagentset.apps.nodeagentset.io/NAME.
func objectName(name string) string {
	return fmt.Sprintf("nodeagentset.%s/%s", setGVK.Group, name)
}

// resourceName is the resource form of kubectl's per-object errors: nodeagentsets.apps.nodeagentset.io.
func resourceName() string {
	return setGVR.Resource + "." + setGVR.Group
}

// getSet reads a NodeAgentSet; a missing set is the API server's NotFound error.
func (c *clients) getSet(ctx context.Context, name string) (*nasv1alpha1.NodeAgentSet, error) {
	u, err := c.dynamic.Resource(setGVR).Namespace(c.namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return setFromUnstructured(u)
}

func setFromUnstructured(u *unstructured.Unstructured) (*nasv1alpha1.NodeAgentSet, error) {
	set := &nasv1alpha1.NodeAgentSet{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, set); err != nil {
		return nil, fmt.Errorf("decoding %s %s: %w", setGVK.Kind, u.GetName(), err)
	}
	set.SetGroupVersionKind(setGVK)
	return set, nil
}

// history returns the ControllerRevisions of a set, as kubectl finds a DaemonSet's: those in its
// namespace that match its selector and are controlled by it, sorted by revision.
func (c *clients) history(ctx context.Context, set *nasv1alpha1.NodeAgentSet) ([]*appsv1.ControllerRevision, error) {
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("failed to create selector for %s %s: %v", setGVK.Kind, set.Name, err)
	}
	list, err := c.apps.ControllerRevisions(set.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, fmt.Errorf("unable to find history controlled by %s %s: %v", setGVK.Kind, set.Name, err)
	}
	var out []*appsv1.ControllerRevision
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], set) {
			out = append(out, &list.Items[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	return out, nil
}

// applyRevision returns the set as it was at a revision: the revision's data, a strategic merge patch
// {"spec":{"template":{...,"$patch":"replace"}}}, applied to the set, as kubectl does for DaemonSets.
func applyRevision(set *nasv1alpha1.NodeAgentSet, cr *appsv1.ControllerRevision) (*nasv1alpha1.NodeAgentSet, error) {
	raw, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	patched, err := strategicpatch.StrategicMergePatch(raw, cr.Data.Raw, &nasv1alpha1.NodeAgentSet{})
	if err != nil {
		return nil, err
	}
	out := &nasv1alpha1.NodeAgentSet{}
	if err := json.Unmarshal(patched, out); err != nil {
		return nil, err
	}
	var data struct {
		Spec map[string]json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(cr.Data.Raw, &data); err == nil {
		if _, ok := data.Spec["nodeOverrides"]; !ok {
			// A revision without nodeOverrides is one of a set without them.
			out.Spec.NodeOverrides = nil
		}
	}
	out.SetGroupVersionKind(setGVK)
	return out, nil
}

// templatePatch is the revision data of the set's current template, encoded as kubectl's
// getDaemonSetPatch encodes a DaemonSet's, with the set's nodeOverrides next to the template when it
// has any, as the controller encodes it.
func templatePatch(set *nasv1alpha1.NodeAgentSet) ([]byte, error) {
	raw, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	spec, _ := obj["spec"].(map[string]any)
	template, _ := spec["template"].(map[string]any)
	if template == nil {
		template = map[string]any{}
	}
	template["$patch"] = "replace"
	out := map[string]any{"template": template}
	if overrides, ok := spec["nodeOverrides"]; ok && len(set.Spec.NodeOverrides) > 0 {
		out["nodeOverrides"] = overrides
	}
	return json.Marshal(map[string]any{"spec": out})
}

// matchesRevision reports whether the set's template is the revision's: byte-equal data, as kubectl
// checks, or (for data encoded differently) a semantically equal template.
func matchesRevision(set *nasv1alpha1.NodeAgentSet, cr *appsv1.ControllerRevision) (bool, error) {
	patch, err := templatePatch(set)
	if err != nil {
		return false, err
	}
	if bytes.Equal(patch, cr.Data.Raw) {
		return true, nil
	}
	applied, err := applyRevision(set, cr)
	if err != nil {
		return false, err
	}
	return apiequality.Semantic.DeepEqual(applied.Spec.Template, set.Spec.Template) &&
		apiequality.Semantic.DeepEqual(applied.Spec.NodeOverrides, set.Spec.NodeOverrides), nil
}

// findRevision returns the revision numbered n; when several share the number, the last one listed
// wins, as in kubectl.
func findRevision(history []*appsv1.ControllerRevision, n int64) *appsv1.ControllerRevision {
	var found *appsv1.ControllerRevision
	for _, cr := range history {
		if cr.Revision == n {
			found = cr
		}
	}
	return found
}

// currentHash is the controller-revision-hash of the set's current template: the hash of the revision
// whose template matches, else status.updateRevision.
func currentHash(set *nasv1alpha1.NodeAgentSet, history []*appsv1.ControllerRevision) string {
	for i := len(history) - 1; i >= 0; i-- {
		if ok, err := matchesRevision(set, history[i]); err == nil && ok {
			if h := history[i].Labels[nasv1alpha1.ControllerRevisionHashLabel]; h != "" {
				return h
			}
		}
	}
	return set.Status.UpdateRevision
}

// revisionNumbers maps each revision hash to its revision number.
func revisionNumbers(history []*appsv1.ControllerRevision) map[string]int64 {
	out := make(map[string]int64, len(history))
	for _, cr := range history {
		if h := cr.Labels[nasv1alpha1.ControllerRevisionHashLabel]; h != "" {
			out[h] = cr.Revision
		}
	}
	return out
}

// setPods returns the set's pods: those in its namespace matching its selector that it controls, plus
// orphans the controller would adopt.
func (c *clients) setPods(ctx context.Context, set *nasv1alpha1.NodeAgentSet) ([]*corev1.Pod, error) {
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		return nil, err
	}
	list, err := c.core.Pods(set.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, err
	}
	var out []*corev1.Pod
	for i := range list.Items {
		pod := &list.Items[i]
		if ref := metav1.GetControllerOf(pod); ref == nil || ref.UID == set.UID {
			out = append(out, pod)
		}
	}
	return out, nil
}
