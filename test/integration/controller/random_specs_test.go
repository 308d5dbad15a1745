package controller

import (
	"fmt"
	"math"
	"math/rand"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/controller/nodeagentset"
)

// The random specifications: a seeded generator mutates a valid set into valid and broken ones, every
// field of the API at random, and each goes through the API server. A broken one must be refused as
// Invalid, naming a field it broke; a valid one must be accepted, and the controller must then handle
// it: no panic, observedGeneration reaches the generation with conditions, and once settled the
// controller writes (almost) nothing for it. The seed is printed; NAS_RANDOM_SEED replays a run.
const (
	defaultRandomSeed = 20
	randomSpecs       = 60
	// quietWindow is how long a settled set is watched for writes, and maxQuietWrites how many writes
	// of the controller it may cause meanwhile (a requeue at a deadline writes its status once).
	quietWindow    = 5 * time.Second
	maxQuietWrites = 3
	// settleQuiet is how long the controller must not have written for a set for it to count as settled.
	settleQuiet = 2 * time.Second
)

// writeCounter counts the write requests of a client, by namespace (namespaced objects) or by node
// name (nodes).
type writeCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func newWriteCounter() *writeCounter { return &writeCounter{counts: map[string]int{}} }

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodGet {
			if key := writeKey(req.URL.Path); key != "" {
				w.mu.Lock()
				w.counts[key]++
				w.mu.Unlock()
			}
		}
		return rt.RoundTrip(req)
	})
}

// writeKey is the namespace of a namespaced path, or the node of a node's path.
func writeKey(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "namespaces" || parts[i] == "nodes" {
			return parts[i+1]
		}
	}
	return ""
}

// of sums the counts of the keys that start with prefix.
func (w *writeCounter) of(prefixes ...string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for key, c := range w.counts {
		for _, p := range prefixes {
			if key == p || strings.HasPrefix(key, p+"-") {
				n += c
			}
		}
	}
	return n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// reconcilePanics is how many panics controller-runtime recovered in the controller's reconciles.
func reconcilePanics() float64 {
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_panics_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelValue(m, "controller") == nodeagentset.ControllerName {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// randomSpec is one generated set: its spec as JSON, what it changed, and the fields the API server
// must name when it refuses it (none: it must be accepted).
type randomSpec struct {
	spec    map[string]any
	changes []string
	badOn   []string
	gate    string
}

// fieldGen sets one part of the spec at random and returns the fields it broke.
type fieldGen func(g *specGen, spec map[string]any) []string

type specGen struct {
	r       *rand.Rand
	changes []string
	gate    string
}

func (g *specGen) pick(choices ...any) any { return choices[g.r.Intn(len(choices))] }

func (g *specGen) chance(p float64) bool { return g.r.Float64() < p }

func (g *specGen) note(format string, args ...any) {
	g.changes = append(g.changes, fmt.Sprintf(format, args...))
}

func child(m map[string]any, key string) map[string]any {
	c, ok := m[key].(map[string]any)
	if !ok {
		c = map[string]any{}
		m[key] = c
	}
	return c
}

// intOrPercent answers whether v is a valid int-or-percent (min is the least integer) and whether it
// is zero.
func intOrPercent(v any, minimum int) (valid, zero bool) {
	switch x := v.(type) {
	case int:
		return x >= minimum && x <= math.MaxInt32, x == 0
	case string:
		if !strings.HasSuffix(x, "%") {
			return false, false
		}
		n, err := strconv.Atoi(strings.TrimSuffix(x, "%"))
		valid = err == nil && n >= max(minimum, 0) && n <= 100 && strconv.Itoa(n)+"%" == x
		return valid, n == 0
	}
	return false, false
}

const (
	fRollingUpdate = "spec.updateStrategy.rollingUpdate"
	fTemplateSpec  = "spec.template.spec"
)

func genUpdateStrategy(g *specGen, spec map[string]any) []string {
	var bad []string
	us := map[string]any{}
	typ := g.pick(nil, nil, "RollingUpdate", "OnDelete", "rollingUpdate", "Recreate")
	if typ != nil {
		us["type"] = typ
		if typ != "RollingUpdate" && typ != "OnDelete" {
			bad = append(bad, "spec.updateStrategy.type")
		}
	}
	if g.chance(0.2) {
		g.note("updateStrategy %v", us)
		spec["updateStrategy"] = us
		return bad
	}
	ru := map[string]any{}
	bad = append(bad, genBudget(g, ru)...)
	bad = append(bad, genRolloutControls(g, ru)...)
	if g.chance(0.4) {
		canary, canaryBad := genCanary(g)
		ru["canary"] = canary
		bad = append(bad, canaryBad...)
		if typ != nil && typ != "RollingUpdate" {
			bad = append(bad, "spec.updateStrategy")
		}
	}
	us["rollingUpdate"] = ru
	spec["updateStrategy"] = us
	g.note("updateStrategy %v", us)
	return bad
}

// genBudget sets maxUnavailable and maxSurge of rollingUpdate ru.
func genBudget(g *specGen, ru map[string]any) []string {
	var bad []string
	budget := []any{nil, nil, 0, 1, 2, 100000, 2147483647, 3000000000, "0%", "1%", "50%", "100%", -1, "101%", "5", "05%", "abc", "-1%", "1.5%", true}
	mu, ms := g.pick(budget...), g.pick(budget...)
	muValid, muZero := intOrPercent(mu, 0)
	msValid, msZero := intOrPercent(ms, 0)
	if mu != nil {
		ru["maxUnavailable"] = mu
		if !muValid {
			bad = append(bad, fRollingUpdate+".maxUnavailable")
		}
	}
	if ms != nil {
		ru["maxSurge"] = ms
		if !msValid {
			bad = append(bad, fRollingUpdate+".maxSurge")
		}
	}
	if _, isBool := mu.(bool); !isBool {
		if _, isBool := ms.(bool); !isBool {
			muNonZero := mu != nil && !muZero
			msNonZero := ms != nil && !msZero
			if muNonZero && msNonZero || mu != nil && muZero && !msNonZero {
				bad = append(bad, fRollingUpdate)
			}
		}
	}
	return bad
}

// genRolloutControls sets partition, paused and unhealthyNodePolicy of rollingUpdate ru.
func genRolloutControls(g *specGen, ru map[string]any) []string {
	var bad []string
	if p := g.pick(nil, 0, 1, 3, 1000, 2147483647, 5000000000, "0%", "50%", "100%", -1, "200%", "x"); p != nil {
		ru["partition"] = p
		if ok, _ := intOrPercent(p, 0); !ok {
			bad = append(bad, fRollingUpdate+".partition")
		}
	}
	if p := g.pick(nil, nil, true, false, "yes"); p != nil {
		ru["paused"] = p
		if p == "yes" {
			bad = append(bad, fRollingUpdate+".paused")
		}
	}
	if p := g.pick(nil, "Count", "Skip", "skip"); p != nil {
		ru["unhealthyNodePolicy"] = p
		if p == "skip" {
			bad = append(bad, fRollingUpdate+".unhealthyNodePolicy")
		}
	}
	return bad
}

func genCanary(g *specGen) (map[string]any, []string) {
	const f = fRollingUpdate + ".canary"
	var bad []string
	c := map[string]any{}
	if n := g.pick(nil, 1, 2, 100, 2147483647, "50%", "100%", 0, -1, 2147483648, "0%", "101%"); n != nil {
		c["nodes"] = n
		if ok, _ := intOrPercent(n, 1); !ok {
			bad = append(bad, f+".nodes")
		}
	}
	if d := g.pick(nil, "0s", "1s", "10m", "1h30m", "1.5h", "500ms", "99999h", "99999h99999h99999h99999h99999h9h",
		"100000000h", "99999h99999h99999h99999h99999h99h", "0.0000000001s", "10", "1d", "-1s"); d != nil {
		c["duration"] = d
		if !regexp.MustCompile(`^([0-9]{1,5}(\.[0-9]{1,9})?(ms|s|m|h))+$`).MatchString(d.(string)) || len(d.(string)) > 32 {
			bad = append(bad, f+".duration")
		}
	}
	if m := g.pick(nil, 0, 1, 2147483647, -1, 2147483648); m != nil {
		c["maxRestarts"] = m
		if m == -1 || m == 2147483648 {
			bad = append(bad, f+".maxRestarts")
		}
	}
	if o := g.pick(nil, "Pause", "Rollback", "pause"); o != nil {
		c["onFailure"] = o
		if o == "pause" {
			bad = append(bad, f+".onFailure")
		}
	}
	if a := g.pick(nil, true, false); a != nil {
		c["autoPromote"] = a
	}
	if s := g.pick(nil, map[string]any{}, map[string]any{"matchLabels": map[string]any{"zone": "a"}},
		map[string]any{"matchExpressions": []any{map[string]any{"key": "zone", "operator": "Foo"}}}); s != nil {
		c["nodeSelector"] = s
	}
	return c, bad
}

// genInt32 sets an integer field from values; the values below minimum, or not integers, are broken.
func genInt32(field string, minimum int, values ...any) fieldGen {
	return func(g *specGen, spec map[string]any) []string {
		v := g.pick(values...)
		if v == nil {
			return nil
		}
		spec[field] = v
		g.note("%s %v", field, v)
		if i, ok := v.(int); !ok || i < minimum || i > math.MaxInt32 {
			return []string{"spec." + field}
		}
		return nil
	}
}

func genReadinessGate(g *specGen, spec map[string]any) []string {
	const f = "spec.nodeReadinessGate"
	if g.chance(0.5) {
		return nil
	}
	var bad []string
	gate := map[string]any{}
	key := g.pick("readiness.nodeagentset.io/agent", "readiness.nodeagentset.io/agent", "example.com/agent", "agent",
		"", "-bad", "a/b/c", "UPPER.com/x", strings.Repeat("k", 64))
	gate["taintKey"] = key
	switch key {
	case "", "-bad", "a/b/c", "UPPER.com/x", strings.Repeat("k", 64):
		bad = append(bad, f+".taintKey")
	default:
		g.gate = key.(string)
	}
	mode := g.pick(nil, "Bootstrap", "Continuous", "continuous")
	if mode != nil {
		gate["mode"] = mode
		if mode == "continuous" {
			bad = append(bad, f+".mode")
		}
	}
	if e := g.pick(nil, "NoSchedule", "NoExecute", "PreferNoSchedule"); e != nil {
		gate["effect"] = e
		if e == "PreferNoSchedule" {
			bad = append(bad, f+".effect")
		} else if mode == "Continuous" && e == "NoExecute" {
			bad = append(bad, f+".effect")
		}
	}
	if s := g.pick(nil, 0, 1, 2147483647, -1, 2147483648); s != nil {
		gate["gracePeriodSeconds"] = s
		if s == -1 || s == 2147483648 {
			bad = append(bad, f+".gracePeriodSeconds")
		} else if mode != "Continuous" {
			bad = append(bad, f+".gracePeriodSeconds")
		}
	}
	if m := g.pick(nil, 0, 1, "10%", "100%", 2147483647, -1, "200%", 2147483648); m != nil {
		gate["maxTaintedNodes"] = m
		if ok, _ := intOrPercent(m, 0); !ok || mode != "Continuous" {
			bad = append(bad, f+".maxTaintedNodes")
		}
	}
	spec["nodeReadinessGate"] = gate
	g.note("nodeReadinessGate %v", gate)
	return bad
}

// genSelector adds a requirement to the selector and a label to the template, matching or not.
func genSelector(g *specGen, spec map[string]any) []string {
	const fSelector, fLabels = "spec.selector", "spec.template.metadata.labels"
	selector := child(spec, "selector")
	labels := child(child(child(spec, "template"), "metadata"), "labels")
	many := make([]any, 9)
	for i := range many {
		many[i] = fmt.Sprintf("v%d", i)
	}
	type choice struct {
		req    map[string]any
		label  any
		badOn  string
		labels map[string]any
	}
	choices := []choice{
		{req: map[string]any{"key": "tier", "operator": "In", "values": []any{"a", "b"}}, label: "a"},
		{req: map[string]any{"key": "tier", "operator": "In", "values": []any{"a", "b"}}, label: "c", badOn: fLabels},
		{req: map[string]any{"key": "tier", "operator": "NotIn", "values": []any{"a"}}, label: "b"},
		{req: map[string]any{"key": "tier", "operator": "NotIn", "values": []any{"a"}}, label: "a", badOn: fLabels},
		{req: map[string]any{"key": "tier", "operator": "Exists"}, label: "x"},
		{req: map[string]any{"key": "tier", "operator": "Exists"}, badOn: fLabels},
		{req: map[string]any{"key": "tier", "operator": "DoesNotExist"}},
		{req: map[string]any{"key": "tier", "operator": "DoesNotExist"}, label: "x", badOn: fLabels},
		{req: map[string]any{"key": "tier", "operator": "Foo", "values": []any{"a"}}, label: "a", badOn: fSelector},
		{req: map[string]any{"key": "tier", "operator": "In"}, label: "a", badOn: fSelector},
		{req: map[string]any{"key": "tier", "operator": "Exists", "values": []any{"a"}}, label: "a", badOn: fSelector},
		// Accepted by the schema, wrong at run time: more than 8 values, none the label's.
		{req: map[string]any{"key": "tier", "operator": "In", "values": many}, label: "zz"},
		// Accepted by the schema: a key that is no label key.
		{req: map[string]any{"key": "bad key!", "operator": "Exists"}, label: "x"},
		{labels: map[string]any{"other": "x"}},
	}
	c := choices[g.r.Intn(len(choices))]
	if c.req != nil {
		selector["matchExpressions"] = []any{c.req}
		key := c.req["key"].(string)
		if c.label != nil {
			labels[key] = c.label
		}
	}
	for k, v := range c.labels {
		labels[k] = v
	}
	if g.chance(0.1) {
		// A matchLabels value the template does not have.
		child(selector, "matchLabels")["app"] = "other"
		g.note("selector app=other")
		c.badOn = fLabels
	}
	g.note("selector %v, template labels %v", selector, labels)
	if c.badOn == "" {
		return nil
	}
	return []string{c.badOn}
}

func genTemplate(g *specGen, spec map[string]any) []string {
	var bad []string
	pod := child(child(spec, "template"), "spec")
	containers := pod["containers"].([]any)
	agent := containers[0].(map[string]any)
	switch g.pick("none", "none", "restartPolicy", "activeDeadline", "noContainers", "hostPort", "badHostPort",
		"tolerations", "badToleration", "dupContainer", "initSameName", "noImage", "sidecar", "noNode", "priority") {
	case "restartPolicy":
		p := g.pick("Always", "OnFailure", "Never")
		pod["restartPolicy"] = p
		if p != "Always" {
			bad = append(bad, fTemplateSpec+".restartPolicy")
		}
	case "activeDeadline":
		pod["activeDeadlineSeconds"] = 60
		bad = append(bad, fTemplateSpec+".activeDeadlineSeconds")
	case "noContainers":
		pod["containers"] = []any{}
		bad = append(bad, fTemplateSpec+".containers")
	case "hostPort":
		agent["ports"] = []any{map[string]any{"containerPort": 9100, "hostPort": 9100}}
	case "badHostPort":
		agent["ports"] = []any{map[string]any{"containerPort": 9100, "hostPort": 70000}}
	case "tolerations":
		pod["tolerations"] = []any{map[string]any{"operator": "Exists"}}
	case "badToleration":
		pod["tolerations"] = []any{map[string]any{"key": "x", "operator": "Bogus"}}
	case "dupContainer":
		pod["containers"] = append(containers, map[string]any{"name": "agent", "image": "registry.k8s.io/pause:3.10"})
		bad = append(bad, fTemplateSpec+".containers")
	case "initSameName":
		pod["initContainers"] = []any{map[string]any{"name": "agent", "image": "registry.k8s.io/pause:3.10"}}
	case "noImage":
		delete(agent, "image")
	case "sidecar":
		pod["containers"] = append(containers, map[string]any{"name": "sidecar", "image": "registry.k8s.io/pause:3.10"})
	case "noNode":
		child(pod, "nodeSelector")["pool"] = "none"
	case "priority":
		pod["priorityClassName"] = "does-not-exist"
	default:
		return nil
	}
	g.note("template %v", pod)
	return bad
}

func genNodeOverrides(g *specGen, spec map[string]any) []string {
	const f = "spec.nodeOverrides"
	if g.chance(0.6) {
		return nil
	}
	var bad []string
	var overrides []any
	names := map[string]bool{}
	for i := range g.r.Intn(3) + 1 {
		o := map[string]any{}
		name := g.pick("gpu", "zone-a", "big", "Bad_Name").(string)
		o["name"] = name
		if name == "Bad_Name" {
			bad = append(bad, fmt.Sprintf("%s[%d].name", f, i))
		} else if names[name] {
			bad = append(bad, f)
		}
		names[name] = true
		o["nodeSelector"] = g.pick(map[string]any{}, map[string]any{"matchLabels": map[string]any{"zone": "a"}},
			map[string]any{"matchExpressions": []any{map[string]any{"key": "zone", "operator": "Foo"}}})
		cf := fmt.Sprintf("%s[%d].containers[0]", f, i)
		c := map[string]any{"name": g.pick("agent", "agent", "nope")}
		if c["name"] == "nope" {
			bad = append(bad, f)
		}
		switch g.pick("image", "env", "resources", "share", "both", "badShare", "minAboveMax", "badMin") {
		case "image":
			c["image"] = "registry.k8s.io/pause:3.9"
		case "env":
			c["env"] = []any{map[string]any{"name": "B", "value": "1"}, map[string]any{"name": "A", "value": "$(B)"}}
		case "resources":
			c["resources"] = map[string]any{"requests": map[string]any{"cpu": "10m"}}
		case "share":
			c["resourcesFromAllocatable"] = map[string]any{
				"requests": map[string]any{"cpu": "1%", "memory": "0.5%"}, "limits": map[string]any{"cpu": "100%"},
				"min": map[string]any{"cpu": "10m"}, "max": map[string]any{"cpu": "2"},
			}
		case "both":
			c["resources"] = map[string]any{"requests": map[string]any{"cpu": "10m"}}
			c["resourcesFromAllocatable"] = map[string]any{"requests": map[string]any{"cpu": "1%"}}
			bad = append(bad, cf)
		case "badShare":
			c["resourcesFromAllocatable"] = map[string]any{"requests": map[string]any{"cpu": "150%"}}
			bad = append(bad, cf+".resourcesFromAllocatable.requests")
		case "minAboveMax":
			c["resourcesFromAllocatable"] = map[string]any{"min": map[string]any{"cpu": "2"}, "max": map[string]any{"cpu": "1"}}
			bad = append(bad, cf+".resourcesFromAllocatable")
		case "badMin":
			c["resourcesFromAllocatable"] = map[string]any{"min": map[string]any{"cpu": "lots"}}
			bad = append(bad, cf+".resourcesFromAllocatable.min")
		}
		o["containers"] = []any{c}
		overrides = append(overrides, o)
	}
	spec["nodeOverrides"] = overrides
	g.note("nodeOverrides %v", overrides)
	return bad
}

// selectorGen is the index of genSelector in fieldGens: an update leaves the selector alone.
const selectorGen = 5

var fieldGens = []fieldGen{
	genUpdateStrategy,
	genInt32("minReadySeconds", 0, nil, nil, 0, 1, 3600, 2147483647, -1, "5", 2147483648),
	genInt32("revisionHistoryLimit", 0, nil, nil, 0, 1, 10, 2147483647, -1, 1<<40),
	genInt32("progressDeadlineSeconds", 1, nil, nil, 1, 600, 2147483647, 0, -5, 2147483648),
	genReadinessGate,
	genSelector, // At index selectorGen.
	genTemplate,
	genNodeOverrides,
}

// baseSpec is a valid set named name: it selects app=name and runs on the nodes labelled scenario=label.
func baseSpec(name, label string) map[string]any {
	return map[string]any{
		"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
		"template": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": name}},
			"spec": map[string]any{
				"nodeSelector":                  map[string]any{"scenario": label},
				"terminationGracePeriodSeconds": 0,
				"containers":                    []any{map[string]any{"name": "agent", "image": "registry.k8s.io/pause:3.10"}},
			},
		},
	}
}

// generate makes one spec: valid (every part valid) or broken (at least one part broken).
func generate(r *rand.Rand, name, label string, valid bool) randomSpec {
	return generateFrom(r, baseSpec(name, label), fieldGens, valid)
}

// generateUpdate makes a valid spec to replace old's: everything drawn again but the selector and the
// template's labels (the selector is immutable), and the template always changes.
func generateUpdate(r *rand.Rand, old randomSpec, name, label string) randomSpec {
	base := baseSpec(name, label)
	base["selector"] = deepCopyJSON(old.spec)["selector"]
	template := old.spec["template"].(map[string]any)
	child(child(base, "template"), "metadata")["labels"] = runtimeDeepCopy(template["metadata"].(map[string]any)["labels"])
	child(child(child(base, "template"), "metadata"), "annotations")["random/rollout"] = "2"
	var gens []fieldGen
	for i, gen := range fieldGens {
		if i != selectorGen {
			gens = append(gens, gen)
		}
	}
	return generateFrom(r, base, gens, true)
}

func generateFrom(r *rand.Rand, base map[string]any, gens []fieldGen, valid bool) randomSpec {
	for {
		g := &specGen{r: r}
		spec := deepCopyJSON(base)
		var bad []string
		for _, gen := range gens {
			// Each part is left as it is, or set at random; a valid spec draws a part again until valid.
			if g.chance(0.4) {
				continue
			}
			for {
				sub := &specGen{r: r}
				part := deepCopyJSON(spec)
				partBad := gen(sub, part)
				if len(partBad) == 0 || !valid {
					spec = part
					g.changes = append(g.changes, sub.changes...)
					if sub.gate != "" {
						g.gate = sub.gate
					}
					bad = append(bad, partBad...)
					break
				}
			}
		}
		if valid == (len(bad) == 0) {
			return randomSpec{spec: spec, changes: g.changes, badOn: bad, gate: g.gate}
		}
	}
}

func deepCopyJSON(m map[string]any) map[string]any {
	return runtimeDeepCopy(m).(map[string]any)
}

func runtimeDeepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = runtimeDeepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = runtimeDeepCopy(e)
		}
		return out
	}
	return v
}

// namesField answers whether err, the API server's answer, names one of fields.
func namesField(err error, fields []string) bool {
	var causes []metav1.StatusCause
	if status, ok := err.(apierrors.APIStatus); ok && status.Status().Details != nil {
		causes = status.Status().Details.Causes
	}
	for _, c := range causes {
		for _, f := range fields {
			if c.Field == f || strings.HasPrefix(c.Field, f+".") || strings.HasPrefix(c.Field, f+"[") ||
				// A value of the wrong format (an integer beyond int32) is reported on no field, with
				// the field in its message.
				(c.Field == "" || c.Field == "<nil>") && strings.HasSuffix(c.Message, " in "+f) {
				return true
			}
		}
	}
	return false
}

var _ = Describe("Random specifications", func() {
	It("are refused naming a field they broke, or accepted and handled without a panic, a stuck status or a hot loop", func() {
		seed := int64(defaultRandomSeed)
		if s := os.Getenv("NAS_RANDOM_SEED"); s != "" {
			var err error
			seed, err = strconv.ParseInt(s, 10, 64)
			Expect(err).NotTo(HaveOccurred(), "NAS_RANDOM_SEED")
		}
		GinkgoWriter.Printf("random specifications: seed %d (NAS_RANDOM_SEED=%d replays it)\n", seed, seed)
		AddReportEntry("seed", seed)
		r := rand.New(rand.NewSource(seed))
		panicsBefore := reconcilePanics()

		var sets []acceptedSet
		refused := 0
		for i := range randomSpecs {
			s := newScenario()
			name := fmt.Sprintf("random-%d", i)
			spec := generate(r, name, s.label, r.Intn(2) == 0)
			describe := fmt.Sprintf("spec %d (seed %d): %s", i, seed, strings.Join(spec.changes, "; "))
			if spec.gate != "" {
				s.addNode("node-0", withLabels("zone", "a"), withTaint(spec.gate, "", corev1.TaintEffectNoSchedule))
			} else {
				s.addNode("node-0", withLabels("zone", "a"))
			}
			s.addNode("node-1")
			// node-1 is down for an hour in a third of the specs: unhealthy at once, its pods never Ready.
			down := r.Intn(3) == 0
			if down {
				s.updateNodeStatus("node-1", corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse,
					LastTransitionTime: metav1.NewTime(time.Now().Add(-time.Hour))})
				spec.changes = append(spec.changes, "node-1 NotReady")
			}
			u := &unstructured.Unstructured{Object: map[string]any{"spec": spec.spec}}
			u.SetGroupVersionKind(nasv1alpha1.GroupVersion.WithKind("NodeAgentSet"))
			u.SetNamespace(s.ns)
			u.SetName(name)
			err := k8s.Create(ctx, u)
			if len(spec.badOn) > 0 {
				Expect(err).To(HaveOccurred(), "the API server accepted a broken %s (broken: %v)", describe, spec.badOn)
				Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s: want Invalid, got %v", describe, err)
				Expect(namesField(err, spec.badOn)).To(BeTrue(), "%s: the answer names none of %v: %v", describe, spec.badOn, err)
				refused++
				continue
			}
			Expect(err).NotTo(HaveOccurred(), "the API server refused a valid %s", describe)
			GinkgoWriter.Printf("accepted %s\n", describe)
			k := s.kubelet()
			k.notReady["node-1"] = down
			sets = append(sets, acceptedSet{s: s, name: name, spec: spec, k: k})
		}
		GinkgoWriter.Printf("random specifications: %d refused, %d accepted\n", refused, len(sets))

		// Every accepted set settles, is quiet, and stays quiet; then again after an update to another
		// random valid spec with a new template (a rollout: the strategies at work).
		settle(sets)
		for _, a := range sets {
			// The counter sees the controller's writes: every set has had its status written.
			Expect(managerWrites.of(a.s.ns, a.s.label)).To(BeNumerically(">", 0), "no write counted: %s", a)
		}
		expectQuiet(sets)
		for i, a := range sets {
			update := generateUpdate(r, a.spec, a.name, a.s.label)
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(nasv1alpha1.GroupVersion.WithKind("NodeAgentSet"))
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: a.s.ns, Name: a.name}, u)).To(Succeed())
			u.Object["spec"] = update.spec
			Expect(k8s.Update(ctx, u)).To(Succeed(), "the API server refused a valid update of %s to: %s", a, strings.Join(update.changes, "; "))
			GinkgoWriter.Printf("updated %s to: %s\n", a.name, strings.Join(update.changes, "; "))
			sets[i].spec.changes = append(sets[i].spec.changes, "UPDATED TO: "+strings.Join(update.changes, "; "))
		}
		settle(sets)
		expectQuiet(sets)
		Expect(reconcilePanics()).To(Equal(panicsBefore), "a reconcile panicked (see the log)")
	})
})

// acceptedSet is a random set the API server accepted, with its scenario and kubelet.
type acceptedSet struct {
	s    *scenario
	name string
	spec randomSpec
	k    *kubelet
}

func (a acceptedSet) String() string { return a.name + ": " + strings.Join(a.spec.changes, "; ") }

// settle waits, with the kubelets working, until every set's status has reached its generation with
// conditions, and the controller has not written for the set for settleQuiet: a set it keeps writing
// for never settles (a hot loop), nor one whose status is stuck.
func settle(sets []acceptedSet) {
	GinkgoHelper()
	stepAll := func() {
		for _, a := range sets {
			a.k.step()
		}
	}
	Eventually(func(g Gomega) {
		stepAll()
		for _, a := range sets {
			set := a.s.getSet(a.name)
			g.Expect(set.Status.ObservedGeneration).To(Equal(set.Generation), "status stuck: %s", a)
			g.Expect(set.Status.Conditions).NotTo(BeEmpty(), "no conditions: %s", a)
		}
	}, timeout, interval).Should(Succeed())
	last, since := map[string]int{}, map[string]time.Time{}
	Eventually(func(g Gomega) {
		stepAll()
		now := time.Now()
		for _, a := range sets {
			if w := managerWrites.of(a.s.ns, a.s.label); w != last[a.name] || since[a.name].IsZero() {
				last[a.name], since[a.name] = w, now
			}
		}
		for _, a := range sets {
			g.Expect(now.Sub(since[a.name])).To(BeNumerically(">=", settleQuiet),
				"still written after %d writes: %s", last[a.name], a)
		}
	}, timeout, interval).Should(Succeed())
}

// expectQuiet watches settled sets for quietWindow, with the kubelets working: each may cause at most
// maxQuietWrites writes of the controller, and no pod is created or deleted.
func expectQuiet(sets []acceptedSet) {
	GinkgoHelper()
	writesBefore := map[string]int{}
	podsBefore := map[string][]string{}
	for _, a := range sets {
		writesBefore[a.name] = managerWrites.of(a.s.ns, a.s.label)
		podsBefore[a.name] = podUIDs(a.s)
	}
	for end := time.Now().Add(quietWindow); time.Now().Before(end); time.Sleep(interval) {
		for _, a := range sets {
			a.k.step()
		}
	}
	for _, a := range sets {
		writes := managerWrites.of(a.s.ns, a.s.label) - writesBefore[a.name]
		Expect(writes).To(BeNumerically("<=", maxQuietWrites), "%d writes in %s once settled: %s", writes, quietWindow, a)
		Expect(podUIDs(a.s)).To(Equal(podsBefore[a.name]), "pods created or deleted once settled: %s", a)
	}
}

func podUIDs(s *scenario) []string {
	pods := s.pods()
	uids := make([]string, 0, len(pods))
	for _, p := range pods {
		uids = append(uids, string(p.UID))
	}
	sort.Strings(uids)
	return uids
}
