package planner

// Per-node overrides (docs/design/node-overrides.md): the pod of a node is the template with the first
// matching spec.nodeOverrides entry applied, and resources sized from the node's allocatable.
//
// Invariants:
//   - Without overrides, nothing here changes a pod, a hash or a decision: the revision hash is
//     TemplateHash of the template, and pods carry no override labels.
//   - Rendering is a function of the template, the overrides and the node's labels and allocatable:
//     the same inputs give the same pod and the same spec hash (env entries new to the template are
//     appended sorted by name, so a reordered override list gives the same pod).
//   - A pod that carries a spec hash is updated exactly when it equals its node's spec hash now.

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math/big"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/rand"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// Labels a pod of a set with overrides carries.
const (
	// OverrideLabel names the override the pod was built from; empty when no override matched.
	OverrideLabel = "apps.nodeagentset.io/override"
	// PodSpecHashLabel is the hash of the pod's rendered template (override applied, shares resolved).
	PodSpecHashLabel = "apps.nodeagentset.io/pod-spec-hash"
)

// RevisionHash names a revision of the set: TemplateHash of the template when there are no overrides
// (today's hash, byte for byte), otherwise FNV-32a over the template's and the overrides' JSON, with
// the collision count mixed in when set.
func RevisionHash(set *nasv1alpha1.NodeAgentSet) string {
	if len(set.Spec.NodeOverrides) == 0 {
		return TemplateHash(&set.Spec.Template, set.Status.CollisionCount)
	}
	h := fnv.New32a()
	raw, err := json.Marshal(&set.Spec.Template)
	if err != nil {
		raw = []byte(set.Spec.Template.String())
	}
	_, _ = h.Write(raw)
	if raw, err = json.Marshal(set.Spec.NodeOverrides); err == nil {
		_, _ = h.Write(raw)
	}
	if cc := set.Status.CollisionCount; cc != nil {
		buf := make([]byte, 8)
		binary.LittleEndian.PutUint32(buf, uint32(*cc))
		_, _ = h.Write(buf)
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// NodeOverride is what a node's pod is built from.
type NodeOverride struct {
	// Name is the override applied; empty when none matched.
	Name string
	// SpecHash is TemplateHash of Template: the content hash of what the node should run.
	SpecHash string
	// Template is the rendered template, shared between nodes with equal renderings: never modify it.
	Template *corev1.PodTemplateSpec
	// Misses are the overrides tried before Name (all of them when none matched), with why each did
	// not match.
	Misses []OverrideMiss
}

// OverrideMiss is an override whose selector did not match the node: its first failing requirement.
type OverrideMiss struct {
	Name string
	// Key, Operator and Values are the requirement; a matchLabels entry is Key In [value].
	Key      string
	Operator metav1.LabelSelectorOperator
	Values   []string
	// Invalid is the selector's parse error, when it could not be evaluated.
	Invalid string
}

// Requests returns the requests of the rendered pod's containers (init containers first), by container.
func (o NodeOverride) Requests() []ContainerRequests {
	if o.Template == nil {
		return nil
	}
	var out []ContainerRequests
	for _, list := range [][]corev1.Container{o.Template.Spec.InitContainers, o.Template.Spec.Containers} {
		for i := range list {
			out = append(out, ContainerRequests{Container: list[i].Name, Requests: list[i].Resources.Requests})
		}
	}
	return out
}

// ContainerRequests are one container's requests.
type ContainerRequests struct {
	Container string
	Requests  corev1.ResourceList
}

// overrider renders the template for nodes, caching equal renderings within one pass.
type overrider struct {
	set       *nasv1alpha1.NodeAgentSet
	selectors []labels.Selector
	errs      []string
	cache     map[string]*NodeOverride
}

func newOverrider(set *nasv1alpha1.NodeAgentSet) *overrider {
	o := &overrider{set: set, cache: map[string]*NodeOverride{}}
	for i := range set.Spec.NodeOverrides {
		sel, err := metav1.LabelSelectorAsSelector(&set.Spec.NodeOverrides[i].NodeSelector)
		msg := ""
		if err != nil {
			sel, msg = labels.Nothing(), err.Error()
		}
		o.selectors = append(o.selectors, sel)
		o.errs = append(o.errs, msg)
	}
	return o
}

// RenderForNode is the override a node gets, with its rendered template and spec hash.
func RenderForNode(set *nasv1alpha1.NodeAgentSet, node *corev1.Node) NodeOverride {
	return newOverrider(set).forNode(node)
}

// match is the index of the first override whose selector matches the node, and the override; -1
// and nil when none does.
func (o *overrider) match(node *corev1.Node) (int, *nasv1alpha1.NodeOverride) {
	for i := range o.set.Spec.NodeOverrides {
		if o.selectors[i].Matches(labels.Set(node.Labels)) {
			return i, &o.set.Spec.NodeOverrides[i]
		}
	}
	return -1, nil
}

// forNode picks the first matching override and renders it for the node.
func (o *overrider) forNode(node *corev1.Node) NodeOverride {
	idx, ov := o.match(node)
	misses := make([]OverrideMiss, 0, max(idx, 0))
	for i := range o.set.Spec.NodeOverrides {
		if i == idx {
			break
		}
		misses = append(misses, o.miss(i, node))
	}
	shares := resolveShares(ov, node)
	key := strconv.Itoa(idx) + "|" + shares.key()
	r, ok := o.cache[key]
	if !ok {
		tmpl := o.set.Spec.Template.DeepCopy()
		applyOverride(tmpl, ov, shares)
		r = &NodeOverride{Template: tmpl, SpecHash: TemplateHash(tmpl, nil)}
		if ov != nil {
			r.Name = ov.Name
		}
		o.cache[key] = r
	}
	out := *r
	out.Misses = misses
	return out
}

// miss explains why override i does not match the node: its first failing requirement.
func (o *overrider) miss(i int, node *corev1.Node) OverrideMiss {
	ov := &o.set.Spec.NodeOverrides[i]
	m := OverrideMiss{Name: ov.Name, Invalid: o.errs[i]}
	if m.Invalid != "" {
		return m
	}
	keys := make([]string, 0, len(ov.NodeSelector.MatchLabels))
	for k := range ov.NodeSelector.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v, ok := node.Labels[k]; !ok || v != ov.NodeSelector.MatchLabels[k] {
			m.Key, m.Operator, m.Values = k, metav1.LabelSelectorOpIn, []string{ov.NodeSelector.MatchLabels[k]}
			return m
		}
	}
	for _, e := range ov.NodeSelector.MatchExpressions {
		sel, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{e}})
		if err == nil && !sel.Matches(labels.Set(node.Labels)) {
			m.Key, m.Operator, m.Values = e.Key, e.Operator, e.Values
			return m
		}
	}
	return m
}

// shares are the resolved allocatable shares of one override on one node: per container, the
// requests and limits to merge.
type shares map[string]*corev1.ResourceRequirements

// key is a deterministic string of the resolved quantities, for the rendering cache.
func (s shares) key() string {
	if len(s) == 0 {
		return ""
	}
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		writeList(&b, "r", s[n].Requests)
		writeList(&b, "l", s[n].Limits)
		b.WriteByte(';')
	}
	return b.String()
}

func writeList(b *strings.Builder, tag string, l corev1.ResourceList) {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for _, k := range keys {
		q := l[corev1.ResourceName(k)]
		b.WriteString("," + tag + ":" + k + "=" + q.String())
	}
}

// resolveShares computes the allocatable shares of the override's containers on the node.
func resolveShares(ov *nasv1alpha1.NodeOverride, node *corev1.Node) shares {
	if ov == nil {
		return nil
	}
	var out shares
	for i := range ov.Containers {
		c := &ov.Containers[i]
		if c.ResourcesFromAllocatable == nil {
			continue
		}
		if out == nil {
			out = shares{}
		}
		out[c.Name] = AllocatableResources(c.ResourcesFromAllocatable, node.Status.Allocatable)
	}
	return out
}

// AllocatableResources resolves a share against a node's allocatable: each percentage of the
// allocatable quantity, rounded down to the resource's unit (at least one unit when the percentage is
// above 0), clamped to min and max. A resource the node does not report is left out unless min gives
// it. A limit below its request is raised to the request.
func AllocatableResources(s *nasv1alpha1.AllocatableShare, allocatable corev1.ResourceList) *corev1.ResourceRequirements {
	out := &corev1.ResourceRequirements{
		Requests: shareList(s.Requests, s, allocatable),
		Limits:   shareList(s.Limits, s, allocatable),
	}
	for name, limit := range out.Limits {
		if req, ok := out.Requests[name]; ok && limit.Cmp(req) < 0 {
			out.Limits[name] = req.DeepCopy()
		}
	}
	if len(out.Requests) == 0 {
		out.Requests = nil
	}
	if len(out.Limits) == 0 {
		out.Limits = nil
	}
	return out
}

func shareList(percents map[corev1.ResourceName]nasv1alpha1.Percentage, s *nasv1alpha1.AllocatableShare,
	allocatable corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, p := range percents {
		q, ok := shareOf(name, string(p), allocatable)
		if lo, has := bound(s.Min, name); has && (!ok || q.Cmp(lo) < 0) {
			q, ok = lo, true
		}
		if !ok {
			continue
		}
		if hi, has := bound(s.Max, name); has && q.Cmp(hi) > 0 {
			q = hi
		}
		out[name] = q
	}
	return out
}

// bound is the quantity of min or max for a resource; false when it is not set or does not parse
// (the schema refuses that).
func bound(l map[corev1.ResourceName]nasv1alpha1.QuantityString, name corev1.ResourceName) (resource.Quantity, bool) {
	v, ok := l[name]
	if !ok {
		return resource.Quantity{}, false
	}
	q, err := resource.ParseQuantity(string(v))
	return q, err == nil
}

// shareOf is p percent of the node's allocatable quantity of name, rounded down to the resource's
// unit; false when the node does not report the resource or p does not parse.
func shareOf(name corev1.ResourceName, p string, allocatable corev1.ResourceList) (resource.Quantity, bool) {
	alloc, ok := allocatable[name]
	if !ok {
		return resource.Quantity{}, false
	}
	pct, ok := new(big.Rat).SetString(strings.TrimSuffix(p, "%"))
	if !ok || pct.Sign() < 0 {
		return resource.Quantity{}, false
	}
	unit, milli, format := unitOf(name)
	base := alloc.Value()
	if milli {
		base = alloc.MilliValue()
	}
	share := new(big.Rat).Mul(new(big.Rat).SetInt64(base), pct)
	share.Quo(share, big.NewRat(100, 1))
	units := new(big.Int).Quo(share.Num(), share.Denom())
	units.Quo(units, big.NewInt(unit))
	if units.Sign() == 0 && pct.Sign() > 0 {
		units.SetInt64(1)
	}
	n := units.Int64() * unit
	if milli {
		return *resource.NewMilliQuantity(n, format), true
	}
	return *resource.NewQuantity(n, format), true
}

// mi is one mebibyte.
const mi = 1 << 20

// unitOf is the rounding unit of a resource (in millis for cpu), whether it is counted in millis, and
// how its quantities are written.
func unitOf(name corev1.ResourceName) (unit int64, milli bool, format resource.Format) {
	switch {
	case name == corev1.ResourceCPU:
		return 1, true, resource.DecimalSI
	case name == corev1.ResourceMemory, name == corev1.ResourceEphemeralStorage,
		strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix):
		return mi, false, resource.BinarySI
	default:
		return 1, false, resource.DecimalSI
	}
}

// applyOverride changes tmpl as the override says, with the resolved shares.
func applyOverride(tmpl *corev1.PodTemplateSpec, ov *nasv1alpha1.NodeOverride, sh shares) {
	if ov == nil {
		return
	}
	for i := range ov.Containers {
		co := &ov.Containers[i]
		c := findContainer(&tmpl.Spec, co.Name)
		if c == nil {
			// The schema refuses it; a stored object from before the rule changes nothing.
			continue
		}
		if co.Image != "" {
			c.Image = co.Image
		}
		c.Env = mergeEnv(c.Env, co.Env)
		if co.Resources != nil {
			mergeResources(&c.Resources, co.Resources)
		}
		if r := sh[co.Name]; r != nil {
			mergeResources(&c.Resources, r)
		}
	}
}

func findContainer(spec *corev1.PodSpec, name string) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == name {
			return &spec.InitContainers[i]
		}
	}
	return nil
}

// mergeEnv replaces the template's variables the override names, in place, and appends the others
// sorted by name.
func mergeEnv(base, over []corev1.EnvVar) []corev1.EnvVar {
	if len(over) == 0 {
		return base
	}
	byName := make(map[string]corev1.EnvVar, len(over))
	for _, e := range over {
		byName[e.Name] = e
	}
	out := make([]corev1.EnvVar, 0, len(base)+len(over))
	for _, e := range base {
		if o, ok := byName[e.Name]; ok {
			out = append(out, *o.DeepCopy())
			delete(byName, e.Name)
			continue
		}
		out = append(out, e)
	}
	added := make([]string, 0, len(byName))
	for name := range byName {
		added = append(added, name)
	}
	sort.Strings(added)
	for _, name := range added {
		e := byName[name]
		out = append(out, *e.DeepCopy())
	}
	return out
}

// mergeResources merges requests and limits by resource name.
func mergeResources(dst *corev1.ResourceRequirements, src *corev1.ResourceRequirements) {
	dst.Requests = mergeList(dst.Requests, src.Requests)
	dst.Limits = mergeList(dst.Limits, src.Limits)
}

func mergeList(dst, src corev1.ResourceList) corev1.ResourceList {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = corev1.ResourceList{}
	}
	for k, v := range src {
		dst[k] = v.DeepCopy()
	}
	return dst
}

// renderOverrides gives each eligible node what it should run when the set has overrides, or when one
// of its pods carries a spec hash (a set whose overrides were all removed), and applies the updated
// rule: a pod with a spec hash is updated exactly when it equals the node's; one that is but carries
// an older revision hash is relabelled (in this pass's view at once, so it counts as updated).
func (w *world) renderOverrides() {
	active := len(w.in.Set.Spec.NodeOverrides) > 0
	var o *overrider
	for _, v := range w.nodes {
		if v.node == nil || (!v.placement.ShouldRun && !v.placement.ShouldContinueRunning) {
			continue
		}
		if !active && !v.specHash {
			continue
		}
		if o == nil {
			o = newOverrider(w.in.Set)
		}
		v.override = &nodeOverride{want: o.forNode(v.node), stale: make([]bool, len(v.pods))}
		want := &v.override.want
		for i, pod := range v.pods {
			spec, ok := pod.Labels[PodSpecHashLabel]
			if !ok {
				continue
			}
			if spec != want.SpecHash {
				v.override.stale[i] = true
				continue
			}
			if w.in.Hash != "" && v.facts[i].hash != w.in.Hash && !isTerminating(pod) {
				w.relabels = append(w.relabels, Relabel{Pod: pod, Node: v.name})
				v.facts[i].hash = w.in.Hash
			}
		}
	}
}

// relabelsKept drops the relabels of pods the plan deletes: a label written on a pod being deleted
// is a wasted write (a canary's held node may lose the pod a relabel made of the revision under test).
func relabelsKept(relabels []Relabel, deletes []Deletion) []Relabel {
	if len(relabels) == 0 || len(deletes) == 0 {
		return relabels
	}
	deleted := make(map[*corev1.Pod]bool, len(deletes))
	for _, d := range deletes {
		deleted[d.Pod] = true
	}
	out := make([]Relabel, 0, len(relabels))
	for _, r := range relabels {
		if !deleted[r.Pod] {
			out = append(out, r)
		}
	}
	return out
}

// exportOverrides puts the nodes' overrides, the relabels and the extra template checks in the plan.
func (w *world) exportOverrides(p *Plan) {
	p.Relabels = relabelsKept(w.relabels, p.Deletes)
	if len(w.in.Set.Spec.NodeOverrides) == 0 {
		return
	}
	p.Overrides = map[string]NodeOverride{}
	for _, v := range w.nodes {
		if v.override != nil {
			p.Overrides[v.name] = v.override.want
		}
	}
	if p.CheckTemplateOn == "" {
		return
	}
	seen := map[string]bool{p.Overrides[p.CheckTemplateOn].Name: true}
	for _, v := range w.nodes {
		if v.override == nil || !v.placement.ShouldRun || seen[v.override.want.Name] {
			continue
		}
		seen[v.override.want.Name] = true
		p.CheckOverridesOn = append(p.CheckOverridesOn, v.name)
	}
}

// OverrideChanged reports whether a node's change (its labels, its allocatable) changes the pod the set
// renders for it: another override matches, or a share resolves to other quantities. It renders
// nothing, so event handlers can call it for every node update. False for a set without overrides.
func OverrideChanged(set *nasv1alpha1.NodeAgentSet, oldNode, node *corev1.Node) bool {
	if len(set.Spec.NodeOverrides) == 0 {
		return false
	}
	o := newOverrider(set)
	return o.key(oldNode) != o.key(node)
}

// key names what the node's pod is rendered from: the override's index and the resolved shares.
func (o *overrider) key(node *corev1.Node) string {
	idx, ov := o.match(node)
	return strconv.Itoa(idx) + "|" + resolveShares(ov, node).key()
}
