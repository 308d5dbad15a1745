package plugin

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// ReportGroupVersion names the objects `kubectl nas nodes|why -o json|yaml` print. They are computed
// by the plugin; no API server serves them.
var ReportGroupVersion = schema.GroupVersion{Group: "plugin.nodeagentset.io", Version: "v1alpha1"}

// NodeReport is one node as a NodeAgentSet sees it: a row of `kubectl nas nodes`, and the object
// `kubectl nas why -o json|yaml` prints.
type NodeReport struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        ReportMeta `json:"metadata"`
	// NodeAgentSet is the set, namespace/name.
	NodeAgentSet string `json:"nodeAgentSet"`
	// NodeExists is false for a node that pods of the set target but that does not exist.
	NodeExists bool `json:"nodeExists"`
	// Eligible: the node should run the agent.
	Eligible bool `json:"eligible"`
	// ShouldContinueRunning: an agent pod already on the node may stay.
	ShouldContinueRunning bool `json:"shouldContinueRunning"`
	// Exclusion says why the node is not eligible.
	Exclusion *ReportExclusion `json:"exclusion,omitempty"`
	// Pod is the agent pod the set's status looks at (the node's oldest); nil when there is none.
	Pod *ReportPod `json:"pod,omitempty"`
	// OtherPods are the node's other live agent pods (during a surge, the new one).
	OtherPods []ReportPod `json:"otherPods,omitempty"`
	// Healthy: eligible, with an available agent pod.
	Healthy bool `json:"healthy"`
	// Partitioned: the node is in the rollout's partition and keeps its pod.
	Partitioned bool `json:"partitioned,omitempty"`
	// Reason says what is not healthy; empty for a healthy pod of the current revision and for an
	// excluded node without a pod.
	Reason string `json:"reason,omitempty"`
	// ReasonCode is the planner's code for the node: why it is excluded, lacks an available pod, or
	// runs an available pod of an older template; empty for a healthy pod of the current revision.
	ReasonCode planner.ReasonCode `json:"reasonCode,omitempty"`
	// Gate is where the node stands with the set's nodeReadinessGate, as the planner renders it: empty
	// without a gate, "open" for an eligible node without the gate taint and nothing pending, "-" for a
	// node the set does not target.
	Gate string `json:"gate,omitempty"`
	// GateCode is the planner's gate code for the node; empty when the gate has nothing to say.
	GateCode planner.GateCode `json:"gateCode,omitempty"`
	// Override is the node override the node's pod is built from, for a set with nodeOverrides; nil
	// otherwise, and for nodes that do not run the agent.
	Override *ReportOverride `json:"override,omitempty"`
	// Explanation is the plain-language explanation of `kubectl nas why`, one sentence a line.
	Explanation []string `json:"explanation,omitempty"`
}

// ReportOverride is the override a node gets and what it gives.
type ReportOverride struct {
	// Name is the override that applies; empty when none matches (the template as is).
	Name string `json:"name"`
	// SpecHash is the hash of the pod the node should run (the apps.nodeagentset.io/pod-spec-hash label).
	SpecHash string `json:"specHash"`
	// Requests are the resulting requests per container, e.g. "agent: cpu=200m,memory=512Mi".
	Requests string `json:"requests,omitempty"`
	// NotMatched lists the earlier overrides and why each did not match.
	NotMatched []string `json:"notMatched,omitempty"`
}

// ReportMeta names the node.
type ReportMeta struct {
	Name string `json:"name"`
}

// ReportExclusion is the planner's reason for excluding a node.
type ReportExclusion struct {
	Kind    planner.ReasonCode `json:"kind"`
	Detail  string             `json:"detail"`
	Message string             `json:"message"`
}

// ReportPod is an agent pod.
type ReportPod struct {
	Name              string          `json:"name"`
	Phase             corev1.PodPhase `json:"phase,omitempty"`
	Revision          int64           `json:"revision,omitempty"`
	RevisionHash      string          `json:"revisionHash,omitempty"`
	Updated           bool            `json:"updated"`
	Ready             bool            `json:"ready"`
	ReadyContainers   string          `json:"readyContainers"`
	Available         bool            `json:"available"`
	Terminating       bool            `json:"terminating,omitempty"`
	CreationTimestamp metav1.Time     `json:"creationTimestamp"`
	// Problem is what keeps the pod from being available, as the planner says it.
	Problem string `json:"problem,omitempty"`
}

// GetObjectKind and DeepCopyObject make NodeReport a runtime.Object for the printers.
var _ runtime.Object = &NodeReport{}

// DeepCopyObject copies the report.
func (r *NodeReport) DeepCopyObject() runtime.Object {
	out := *r
	if r.Exclusion != nil {
		e := *r.Exclusion
		out.Exclusion = &e
	}
	if r.Pod != nil {
		p := *r.Pod
		p.CreationTimestamp = *r.Pod.CreationTimestamp.DeepCopy()
		out.Pod = &p
	}
	out.OtherPods = append([]ReportPod(nil), r.OtherPods...)
	if r.Override != nil {
		o := *r.Override
		o.NotMatched = append([]string(nil), r.Override.NotMatched...)
		out.Override = &o
	}
	out.Explanation = append([]string(nil), r.Explanation...)
	return &out
}

// NodeReportList is what `kubectl nas nodes -o json|yaml` prints: a kubectl List of NodeReports.
type NodeReportList struct {
	metav1.TypeMeta `json:",inline"`
	Items           []NodeReport `json:"items"`
}

// DeepCopyObject copies the list.
func (l *NodeReportList) DeepCopyObject() runtime.Object {
	out := &NodeReportList{TypeMeta: l.TypeMeta, Items: make([]NodeReport, len(l.Items))}
	for i := range l.Items {
		out.Items[i] = *l.Items[i].DeepCopyObject().(*NodeReport)
	}
	return out
}

// nodeReport builds the report of a node: placement and reasons from the planner's plan, rendered by
// the planner; the rest from the pods.
func (s *snapshot) nodeReport(r *nodeReport) *NodeReport {
	out := &NodeReport{
		TypeMeta:              metav1.TypeMeta{APIVersion: ReportGroupVersion.String(), Kind: "NodeAgentSetNode"},
		Metadata:              ReportMeta{Name: r.name},
		NodeAgentSet:          s.set.Namespace + "/" + s.set.Name,
		NodeExists:            r.node != nil,
		Eligible:              r.node != nil && r.placement.ShouldRun,
		ShouldContinueRunning: r.node != nil && r.placement.ShouldContinueRunning,
		Healthy:               r.healthy,
		Partitioned:           r.partitioned,
	}
	if e := r.placement.Exclusion; e != nil && r.node != nil {
		out.Exclusion = &ReportExclusion{Kind: e.Code, Detail: e.Detail(), Message: e.String()}
	}
	for _, pod := range r.pods {
		p := s.reportPod(pod, r.node)
		if pod == r.pod {
			out.Pod = &p
		} else {
			out.OtherPods = append(out.OtherPods, p)
		}
	}
	out.Reason = s.reason(r)
	out.ReasonCode = r.reason.Code
	out.Gate, out.GateCode = s.gate(r)
	if o, ok := s.plan.Overrides[r.name]; ok {
		out.Override = &ReportOverride{Name: o.Name, SpecHash: o.SpecHash, Requests: o.RequestsString()}
		for _, m := range o.Misses {
			out.Override.NotMatched = append(out.Override.NotMatched, m.Name+": "+m.String())
		}
	}
	return out
}

// gate is the GATE column: the planner's word on the node's readiness gate.
func (s *snapshot) gate(r *nodeReport) (string, planner.GateCode) {
	g := s.plan.Gate
	switch {
	case g.State == planner.GateNone || r.node == nil:
		return "", ""
	case g.State != planner.GateActive:
		return "refused: " + string(g.State), ""
	}
	if n, ok := g.Nodes[r.name]; ok {
		return n.String(), n.Code
	}
	if !r.placement.ShouldRun {
		// Not the set's to gate.
		return "-", ""
	}
	return "open", ""
}

func (s *snapshot) reportPod(pod *corev1.Pod, node *corev1.Node) ReportPod {
	rev, hash := s.revisionOf(pod)
	p := ReportPod{
		Name:              pod.Name,
		Phase:             pod.Status.Phase,
		Revision:          rev,
		RevisionHash:      hash,
		Updated:           s.updated(pod),
		Ready:             planner.IsPodReady(pod),
		ReadyContainers:   readyContainers(pod),
		Available:         s.available(pod),
		Terminating:       pod.DeletionTimestamp != nil,
		CreationTimestamp: pod.CreationTimestamp,
	}
	if !p.Available {
		p.Problem = planner.PodProblem(pod, node).String()
	}
	return p
}

// readyContainers is kubectl get pods' READY column: ready containers / containers.
func readyContainers(pod *corev1.Pod) string {
	ready := 0
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Ready {
			ready++
		}
	}
	return fmt.Sprintf("%d/%d", ready, len(pod.Spec.Containers))
}

// reason is the REASON column: why a node is not healthy, or why its healthy pod is not updated.
func (s *snapshot) reason(r *nodeReport) string {
	switch {
	case r.node == nil:
		return "node does not exist: the controller deletes its agent pods"
	case !r.placement.ShouldRun:
		switch {
		case r.pod == nil:
			return ""
		case r.pod.DeletionTimestamp != nil:
			return "misscheduled: agent pod terminating"
		case r.placement.ShouldContinueRunning:
			return "misscheduled: agent pod may stay (NoSchedule taint only)"
		default:
			return "misscheduled: the controller deletes the agent pod"
		}
	case !r.healthy:
		return r.reason.String()
	}
	var parts []string
	if r.pod.DeletionTimestamp != nil {
		parts = append(parts, planner.NodeReason{Code: planner.ReasonPodTerminating}.String())
	}
	surging := false
	for _, pod := range r.pods {
		if pod == r.pod || pod.DeletionTimestamp != nil {
			continue
		}
		switch {
		case s.updated(pod) && !s.available(pod):
			surging = true
			parts = append(parts, fmt.Sprintf("surge pod %s: %s", pod.Name, planner.PodProblem(pod, r.node)))
		case s.updated(pod):
			surging = true
			parts = append(parts, fmt.Sprintf("surge pod %s available: the old pod goes next", pod.Name))
		default:
			parts = append(parts, fmt.Sprintf("extra pod %s: the controller deletes it", pod.Name))
		}
	}
	if r.reason.Code.Outdated() && !surging {
		parts = append([]string{r.reason.String()}, parts...)
	}
	return strings.Join(parts, "; ")
}

func newNodesCommand(f *factory) *cobra.Command {
	printFlags := genericclioptions.NewJSONYamlPrintFlags()
	var output string
	var problems bool
	cmd := &cobra.Command{
		Use:   "nodes NAME",
		Short: "List every node with the NodeAgentSet's verdict and agent pod",
		Long: `List every node of the cluster, eligible for the NodeAgentSet or not, with its agent pod.

  ELIGIBLE   yes, or no with the reason (nodeName, nodeSelector, node affinity, an untolerated taint)
  POD        the node's agent pod (the oldest, the one the status counts)
  REVISION   the revision the pod runs
  READY      ready containers of the pod
  AVAILABLE  ready for minReadySeconds: what the rollout counts
  AGE        the pod's age
  REASON     for anything not healthy: what the pod waits for, or why an old pod was not replaced

Eligibility and reasons come from the same placement code the controller runs.
Use 'kubectl nas why NAME NODE' for a full explanation of one node.

With --problems, only the eligible nodes without an available agent pod are listed, grouped by reason
(the reasons of status.unavailableBreakdown), followed by the count of each reason.`,
		Example: `  kubectl nas nodes log-collector
  kubectl nas nodes log-collector --problems
  kubectl nas nodes log-collector -o yaml`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.clients()
			if err != nil {
				return err
			}
			s, err := c.snapshot(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			list := &NodeReportList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
			reports := s.reports()
			if problems {
				reports = s.problemReports()
			}
			for _, r := range reports {
				list.Items = append(list.Items, *s.nodeReport(r))
			}
			if output == "" {
				if err := printNodesTable(f.streams.Out, list.Items, s.now); err != nil {
					return err
				}
				if problems {
					_, err := fmt.Fprintln(f.streams.Out, problemSummary(s.plan.Unavailable))
					return err
				}
				return nil
			}
			printer, err := reportPrinter(printFlags, output)
			if err != nil {
				return err
			}
			return printer.PrintObj(list, f.streams.Out)
		},
	}
	addReportOutputFlag(cmd, &output, "a table")
	cmd.Flags().BoolVar(&problems, "problems", false,
		"List only the eligible nodes without an available agent pod, grouped by reason, and count each reason.")
	return cmd
}

// problemReports are the reports of the eligible nodes without an available agent pod: the nodes of
// the plan's breakdown, in its order (most frequent reason first), by name within a reason.
func (s *snapshot) problemReports() []*nodeReport {
	out := make([]*nodeReport, 0, len(s.plan.Nodes))
	for _, g := range s.plan.Unavailable {
		var names []string
		for name, st := range s.plan.Nodes {
			if st.Placement.ShouldRun && st.Reason.Code == g.Code {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			out = append(out, s.reportFor(name))
		}
	}
	return out
}

// problemSummary counts the reasons: "Unavailable: 3 NodeNotReady, 1 ImagePull", or that there is
// none.
func problemSummary(groups []planner.UnavailableGroup) string {
	if len(groups) == 0 {
		return "Every eligible node runs an available agent pod."
	}
	parts := make([]string, 0, len(groups))
	for _, g := range groups {
		parts = append(parts, fmt.Sprintf("%d %s", g.Count, g.Code))
	}
	return "Unavailable: " + strings.Join(parts, ", ")
}

func addReportOutputFlag(cmd *cobra.Command, output *string, human string) {
	cmd.Flags().StringVarP(output, "output", "o", "", "Output format. One of: (json, yaml). Default: "+human+".")
}

// reportPrinter is the JSON or YAML printer; other formats are refused as kubectl refuses them.
func reportPrinter(flags *genericclioptions.JSONYamlPrintFlags, output string) (printers.ResourcePrinter, error) {
	if output != "json" && output != "yaml" {
		return nil, fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,yaml", output)
	}
	return flags.ToPrinter(output)
}

// printNodesTable prints the reports as kubectl prints a table: upper-case headers, columns aligned
// with kubectl's tab writer.
func printNodesTable(out io.Writer, items []NodeReport, now time.Time) error {
	w := printers.GetNewTabWriter(out)
	// The GATE column shows only for a set with a nodeReadinessGate.
	gated := slices.ContainsFunc(items, func(r NodeReport) bool { return r.Gate != "" })
	overrides := slices.ContainsFunc(items, func(r NodeReport) bool { return r.Override != nil })
	header := []string{"NODE", "ELIGIBLE", "POD", "REVISION", "READY", "AVAILABLE", "AGE", "REASON"}
	if gated {
		header = slices.Insert(header, len(header)-1, "GATE")
	}
	if overrides {
		// A set with nodeOverrides: which one each node gets, and the requests that result.
		header = slices.Insert(header, 2, "OVERRIDE", "REQUESTS")
	}
	_, _ = fmt.Fprintln(w, strings.Join(header, "\t"))
	for i := range items {
		row := tableRow(&items[i], now)
		if gated {
			row = slices.Insert(row, len(row)-1, items[i].Gate)
		}
		if overrides {
			name, requests := "-", "-"
			if o := items[i].Override; o != nil {
				name, requests = o.Name, o.Requests
				if name == "" {
					name = "<none>"
				}
				if requests == "" {
					requests = "<none>"
				}
			}
			row = slices.Insert(row, 2, name, requests)
		}
		_, _ = fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	return w.Flush()
}

// tableRow is one row of `kubectl nas nodes`.
func tableRow(r *NodeReport, now time.Time) []string {
	eligible := "yes"
	switch {
	case !r.NodeExists:
		eligible = "no: node not found"
	case r.Exclusion != nil:
		// The short form ("taint k=v:NoSchedule"); the message and `why` say the rest.
		eligible = "no: " + r.Exclusion.Detail
	}
	pod, revision, ready, available, age := "<none>", "-", "-", "-", "-"
	if p := r.Pod; p != nil {
		pod = p.Name
		switch {
		case p.Revision > 0:
			revision = fmt.Sprint(p.Revision)
		case p.RevisionHash != "":
			revision = p.RevisionHash
		}
		ready = p.ReadyContainers
		available = yesNo(p.Available)
		age = duration.HumanDuration(now.Sub(p.CreationTimestamp.Time))
		if len(r.OtherPods) > 0 {
			pod = fmt.Sprintf("%s (+%d)", p.Name, len(r.OtherPods))
		}
	}
	return []string{r.Metadata.Name, eligible, pod, revision, ready, available, age, truncate(r.Reason, maxReasonWidth)}
}

// maxReasonWidth keeps table rows to a terminal's width: a scheduler's message can be long. The full
// reason is in -o json|yaml and in `kubectl nas why`.
const maxReasonWidth = 80

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
