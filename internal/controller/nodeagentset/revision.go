package nodeagentset

// ControllerRevisions, rules 35-42 of the upstream DaemonSet controller: one revision per distinct
// template, holding the template as a patch that can be re-applied as is; the current revision's
// controller-revision-hash label is the hash every new pod carries.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// indexRevisionController: UID of the NodeAgentSet controlling a ControllerRevision.
const indexRevisionController = "nodeagentset.io/revision-controller-uid"

// Annotations on the current revision that date the rollout: when the revision became current or the
// set's spec last changed (the generation it was stamped for), the start of the progress deadline.
const (
	annotationRolloutStartedAt  = "apps.nodeagentset.io/rollout-started-at"
	annotationRolloutGeneration = "apps.nodeagentset.io/rollout-generation"
)

// errNamespaceTerminating: the set's namespace is being deleted, so nothing can be created in it and
// the set itself is about to go. Not an error worth a retry.
var errNamespaceTerminating = errors.New("namespace is terminating")

// revisions is a set's history after a sync: the current revision and the older ones.
type revisions struct {
	current *appsv1.ControllerRevision
	old     []*appsv1.ControllerRevision
}

// hash is the controller-revision-hash of the current revision.
func (h revisions) hash() string {
	return h.current.Labels[nasv1alpha1.ControllerRevisionHashLabel]
}

// rolloutStartedAt is when the current rollout began, zero if unknown.
func (h revisions) rolloutStartedAt() time.Time {
	t, err := time.Parse(time.RFC3339, h.current.Annotations[annotationRolloutStartedAt])
	if err != nil {
		return h.current.CreationTimestamp.Time
	}
	return t
}

// stampRollout dates a rollout on the revision's annotations; false when it is already stamped for
// this generation.
func stampRollout(cr *appsv1.ControllerRevision, generation int64, now time.Time) bool {
	gen := strconv.FormatInt(generation, 10)
	if cr.Annotations[annotationRolloutGeneration] == gen {
		return false
	}
	if cr.Annotations == nil {
		cr.Annotations = map[string]string{}
	}
	cr.Annotations[annotationRolloutGeneration] = gen
	cr.Annotations[annotationRolloutStartedAt] = now.UTC().Format(time.RFC3339)
	return true
}

// templatePatch is the revision data of a set: {"spec":{"template":{...,"$patch":"replace"}}}, which
// restores the template when applied to the set as a strategic merge patch, with the set's
// nodeOverrides next to the template when it has any (a revision without them means none). json.Marshal
// sorts map keys, so equal specs give equal bytes.
func templatePatch(set *nasv1alpha1.NodeAgentSet) ([]byte, error) {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&set.Spec.Template)
	if err != nil {
		return nil, err
	}
	raw["$patch"] = "replace"
	spec := map[string]any{"template": raw}
	if len(set.Spec.NodeOverrides) > 0 {
		overrides, err := json.Marshal(set.Spec.NodeOverrides)
		if err != nil {
			return nil, err
		}
		var list []any
		if err := json.Unmarshal(overrides, &list); err != nil {
			return nil, err
		}
		spec["nodeOverrides"] = list
	}
	return json.Marshal(map[string]any{"spec": spec})
}

// splitHistory sorts claimed revisions into those whose data equals the set's template (current
// candidates) and the rest.
func splitHistory(all []*appsv1.ControllerRevision, patch []byte) (current, old []*appsv1.ControllerRevision) {
	for _, cr := range all {
		if bytes.Equal(cr.Data.Raw, patch) {
			current = append(current, cr)
		} else {
			old = append(old, cr)
		}
	}
	return current, old
}

// maxRevision is the highest revision number, 0 for none.
func maxRevision(crs []*appsv1.ControllerRevision) int64 {
	var m int64
	for _, cr := range crs {
		m = max(m, cr.Revision)
	}
	return m
}

// pickCurrent keeps the duplicate current revision with the highest number (the last one on ties, as
// upstream) and returns the others for deletion (rule 40).
func pickCurrent(current []*appsv1.ControllerRevision) (keep *appsv1.ControllerRevision, dups []*appsv1.ControllerRevision) {
	for _, cr := range current {
		if keep == nil || cr.Revision >= keep.Revision {
			if keep != nil {
				dups = append(dups, keep)
			}
			keep = cr
		} else {
			dups = append(dups, cr)
		}
	}
	return keep, dups
}

// revisionsToPrune picks the old revisions to delete (rule 42): the oldest first, down to
// revisionHistoryLimit, never one whose hash a pod of the set still carries.
func revisionsToPrune(old []*appsv1.ControllerRevision, limit int32, pods []*corev1.Pod) []*appsv1.ControllerRevision {
	toKill := len(old) - int(limit)
	if toKill <= 0 {
		return nil
	}
	inUse := map[string]bool{}
	for _, pod := range pods {
		if h := pod.Labels[nasv1alpha1.ControllerRevisionHashLabel]; h != "" {
			inUse[h] = true
		}
	}
	sorted := append([]*appsv1.ControllerRevision(nil), old...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Revision < sorted[j].Revision })
	var out []*appsv1.ControllerRevision
	for _, cr := range sorted {
		if len(out) == toKill {
			break
		}
		if inUse[cr.Labels[nasv1alpha1.ControllerRevisionHashLabel]] {
			continue
		}
		out = append(out, cr)
	}
	return out
}

// newRevision builds the revision of the set's current template and overrides (rule 37), stamped as the start of a
// rollout.
func newRevision(set *nasv1alpha1.NodeAgentSet, patch []byte, revision int64, now time.Time) *appsv1.ControllerRevision {
	hash := planner.RevisionHash(set)
	lbls := maps.Clone(set.Spec.Template.Labels)
	if lbls == nil {
		lbls = map[string]string{}
	}
	lbls[nasv1alpha1.ControllerRevisionHashLabel] = hash
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            set.Name + "-" + hash,
			Namespace:       set.Namespace,
			Labels:          lbls,
			Annotations:     maps.Clone(set.Annotations),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, nasv1alpha1.GroupVersion.WithKind("NodeAgentSet"))},
		},
		Data:     runtime.RawExtension{Raw: patch},
		Revision: revision,
	}
	stampRollout(cr, set.Generation, now)
	return cr
}

// syncRevisions brings the set's history in line with its template (rules 35-41): claims matching
// revisions, finds or creates the current one, removes duplicates of it (relabelling pods that carry
// a duplicate's hash), and gives it the highest number, so a rollback reuses the old revision and
// its hash. pods are the set's claimed pods.
func (r *Reconciler) syncRevisions(ctx context.Context, set *nasv1alpha1.NodeAgentSet, pods []*corev1.Pod) (*revisions, error) {
	all, err := r.claimRevisions(ctx, set)
	if err != nil {
		return nil, err
	}
	patch, err := templatePatch(set)
	if err != nil {
		return nil, fmt.Errorf("encoding the template: %w", err)
	}
	current, old := splitHistory(all, patch)
	next := maxRevision(old) + 1

	var cur *appsv1.ControllerRevision
	if len(current) == 0 {
		if cur, err = r.createRevision(ctx, set, patch, next); err != nil {
			return nil, err
		}
	} else {
		keep, dups := pickCurrent(current)
		if err := r.dropDuplicateRevisions(ctx, keep, dups, pods); err != nil {
			return nil, err
		}
		if cur, err = r.ensureRevisionMeta(ctx, set, keep, next); err != nil {
			return nil, err
		}
	}
	return &revisions{current: cur, old: old}, nil
}

// claimRevisions returns the revisions of the set: those it controls whose labels match its
// selector, released otherwise, plus matching orphans, adopted.
func (r *Reconciler) claimRevisions(ctx context.Context, set *nasv1alpha1.NodeAgentSet) ([]*appsv1.ControllerRevision, error) {
	var owned appsv1.ControllerRevisionList
	if err := r.Client.List(ctx, &owned, client.InNamespace(set.Namespace), client.MatchingFields{indexRevisionController: string(set.UID)}); err != nil {
		return nil, fmt.Errorf("listing revisions: %w", err)
	}
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		return nil, err
	}
	var matching appsv1.ControllerRevisionList
	if err := r.Client.List(ctx, &matching, client.InNamespace(set.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing revisions: %w", err)
	}
	var out []*appsv1.ControllerRevision
	for i := range owned.Items {
		cr := &owned.Items[i]
		if sel.Matches(labels.Set(cr.Labels)) {
			out = append(out, cr)
			continue
		}
		if err := r.patchOwner(ctx, cr, releasePatch(set.UID, cr.UID)); err != nil {
			return nil, err
		}
	}
	for i := range matching.Items {
		cr := &matching.Items[i]
		if metav1.GetControllerOf(cr) != nil || cr.DeletionTimestamp != nil {
			continue
		}
		patch, err := adoptPatch(set, cr.UID)
		if err != nil {
			return nil, err
		}
		if err := r.patchOwner(ctx, cr, patch); err != nil {
			return nil, err
		}
		out = append(out, cr)
	}
	return out, nil
}

func (r *Reconciler) patchOwner(ctx context.Context, obj client.Object, patch []byte) error {
	err := r.Client.Patch(ctx, obj, client.RawPatch(types.StrategicMergePatchType, patch))
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("changing the owner of %s: %w", obj.GetName(), err)
	}
	return nil
}

// createRevision creates the current revision. A name taken by a revision with other data is a hash
// collision: the set's collisionCount goes up and the next pass hashes again (rule 38).
func (r *Reconciler) createRevision(ctx context.Context, set *nasv1alpha1.NodeAgentSet, patch []byte, revision int64) (*appsv1.ControllerRevision, error) {
	cr := newRevision(set, patch, revision, r.Clock.Now())
	err := r.Client.Create(ctx, cr)
	if err == nil {
		log.FromContext(ctx).V(2).Info("Created revision", "revision", cr.Name, "number", revision)
		return cr, nil
	}
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		return nil, errNamespaceTerminating
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating revision %s: %w", cr.Name, err)
	}
	existing := &appsv1.ControllerRevision{}
	if getErr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cr), existing); getErr != nil {
		return nil, fmt.Errorf("reading revision %s: %w", cr.Name, getErr)
	}
	if bytes.Equal(existing.Data.Raw, patch) && metav1.IsControlledBy(existing, set) {
		return existing, nil
	}
	if err := r.bumpCollisionCount(ctx, set); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("revision name %s is taken by other data: collisionCount raised, hashing again", cr.Name)
}

// bumpCollisionCount raises status.collisionCount by one, guarded by the resourceVersion the pass
// read, so two passes never both count the same collision.
func (r *Reconciler) bumpCollisionCount(ctx context.Context, set *nasv1alpha1.NodeAgentSet) error {
	count := int32(1)
	if set.Status.CollisionCount != nil {
		count = *set.Status.CollisionCount + 1
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": set.ResourceVersion},
		"status":   map[string]any{"collisionCount": count},
	})
	if err != nil {
		return err
	}
	if err := r.Client.Status().Patch(ctx, set.DeepCopy(), client.RawPatch(types.MergePatchType, patch), client.FieldOwner(ControllerName)); err != nil {
		return fmt.Errorf("raising collisionCount: %w", err)
	}
	return nil
}

// dropDuplicateRevisions relabels pods that carry a duplicate's hash with the kept revision's hash,
// then deletes the duplicates (rule 40). A relabelled pod replaces its entry in pods, so the plan of
// this same pass sees it as updated (otherwise the rolling update would replace a pod whose only
// change is its label); the cache's object is never modified.
func (r *Reconciler) dropDuplicateRevisions(ctx context.Context, keep *appsv1.ControllerRevision, dups []*appsv1.ControllerRevision, pods []*corev1.Pod) error {
	if len(dups) == 0 {
		return nil
	}
	hash := keep.Labels[nasv1alpha1.ControllerRevisionHashLabel]
	dupHashes := make(map[string]bool, len(dups))
	for _, d := range dups {
		dupHashes[d.Labels[nasv1alpha1.ControllerRevisionHashLabel]] = true
	}
	delete(dupHashes, hash)
	for i, pod := range pods {
		if !dupHashes[pod.Labels[nasv1alpha1.ControllerRevisionHashLabel]] {
			continue
		}
		relabelled := pod.DeepCopy()
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, nasv1alpha1.ControllerRevisionHashLabel, hash)
		err := r.Client.Patch(ctx, relabelled, client.RawPatch(types.MergePatchType, []byte(patch)))
		switch {
		case err == nil:
			pods[i] = relabelled
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("relabelling pod %s: %w", pod.Name, err)
		}
	}
	for _, d := range dups {
		if err := r.Client.Delete(ctx, d); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting duplicate revision %s: %w", d.Name, err)
		}
	}
	return nil
}

// ensureRevisionMeta gives the current revision the hash label (named after the revision when
// missing, rule 39), the highest number (rule 41: a rollback renumbers the reused revision), and the
// date of the rollout when the set's spec changed since it was stamped.
func (r *Reconciler) ensureRevisionMeta(
	ctx context.Context, set *nasv1alpha1.NodeAgentSet, cr *appsv1.ControllerRevision, next int64,
) (*appsv1.ControllerRevision, error) {
	updated := cr.DeepCopy()
	changed := stampRollout(updated, set.Generation, r.Clock.Now())
	if _, ok := updated.Labels[nasv1alpha1.ControllerRevisionHashLabel]; !ok {
		if updated.Labels == nil {
			updated.Labels = map[string]string{}
		}
		updated.Labels[nasv1alpha1.ControllerRevisionHashLabel] = cr.Name
		changed = true
	}
	if cr.Revision < next {
		updated.Revision = next
		changed = true
	}
	if !changed {
		return cr, nil
	}
	if err := r.Client.Update(ctx, updated); err != nil {
		return nil, fmt.Errorf("updating revision %s: %w", cr.Name, err)
	}
	return updated, nil
}

// cleanupHistory deletes old revisions beyond revisionHistoryLimit that no pod uses (rule 42).
func (r *Reconciler) cleanupHistory(ctx context.Context, set *nasv1alpha1.NodeAgentSet, history *revisions, pods []*corev1.Pod) error {
	limit := int32(10)
	if set.Spec.RevisionHistoryLimit != nil {
		limit = *set.Spec.RevisionHistoryLimit
	}
	for _, cr := range revisionsToPrune(history.old, limit, pods) {
		if err := r.Client.Delete(ctx, cr, client.Preconditions{UID: &cr.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting old revision %s: %w", cr.Name, err)
		}
	}
	return nil
}

// adoptPatch and releasePatch are the strategic merge patches that set or remove the set as
// controller; the UID makes sure they land on the object that was looked at.
func adoptPatch(set *nasv1alpha1.NodeAgentSet, uid types.UID) ([]byte, error) {
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{*metav1.NewControllerRef(set, nasv1alpha1.GroupVersion.WithKind("NodeAgentSet"))},
		"uid":             uid,
	}})
}

func releasePatch(setUID, uid types.UID) []byte {
	return fmt.Appendf(nil, `{"metadata":{"ownerReferences":[{"$patch":"delete","uid":%q}],"uid":%q}}`, setUID, uid)
}
