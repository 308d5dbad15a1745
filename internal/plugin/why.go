package plugin

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// maxEvents is how many recent warnings `why` shows.
const maxEvents = 5

func newWhyCommand(f *factory) *cobra.Command {
	printFlags := genericclioptions.NewJSONYamlPrintFlags()
	var output string
	cmd := &cobra.Command{
		Use:   "why NAME NODE",
		Short: "Explain why a node has, or has no, available agent pod",
		Long: `Explain, in plain language, why a node has or has no available agent pod of the NodeAgentSet.

For a node that is not eligible: which constraint excludes it (the template's nodeName, a nodeSelector
entry, the failing requirements of each required node affinity term, untolerated taints), with the
toleration that would let the agent in. For an eligible node: what its agent pod waits for (no pod
yet, unschedulable with the scheduler's message, image pull, crash loop, node not ready, terminating,
minReadySeconds), or which pod of which revision it runs, and why an old pod was not replaced yet.

The verdict comes from the placement and status code the controller itself runs.`,
		Example: `  kubectl nas why log-collector worker-3
  kubectl nas why log-collector worker-3 -o yaml`,
		Args: exactArgs("NAME", "NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.clients()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := c.snapshot(ctx, args[0])
			if err != nil {
				return err
			}
			r := s.reportFor(args[1])
			if r == nil {
				return apierrors.NewNotFound(corev1.Resource("nodes"), args[1])
			}
			events, err := c.warnings(ctx, s, r)
			if err != nil {
				return err
			}
			if r.reason.Code == planner.ReasonInsufficientResources {
				r.nodePods, err = c.podsOnNode(ctx, r.name)
				switch {
				case apierrors.IsForbidden(err):
					// Pods of other namespaces may be out of the user's reach: the comparison goes without them.
					r.nodePodsForbidden = true
				case err != nil:
					return err
				}
			}
			report := s.nodeReport(r)
			report.Explanation = s.explain(r, events)
			if output == "" {
				_, err := fmt.Fprintln(f.streams.Out, strings.Join(report.Explanation, "\n"))
				return err
			}
			printer, err := reportPrinter(printFlags, output)
			if err != nil {
				return err
			}
			return printer.PrintObj(report, f.streams.Out)
		},
	}
	addReportOutputFlag(cmd, &output, "plain text")
	return cmd
}

// podsOnNode lists every pod bound to the node, in all namespaces.
func (c *clients) podsOnNode(ctx context.Context, node string) ([]*corev1.Pod, error) {
	list, err := c.core.Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		return nil, err
	}
	out := make([]*corev1.Pod, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out, nil
}

// warnings returns the latest Warning events about the node's agent pods, and about the set that name
// the node (a failed create, say), oldest first.
func (c *clients) warnings(ctx context.Context, s *snapshot, r *nodeReport) ([]corev1.Event, error) {
	var out []corev1.Event
	collect := func(kind, name string, keep func(corev1.Event) bool) error {
		sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name, "type": corev1.EventTypeWarning}
		list, err := c.core.Events(s.set.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel.String()})
		if err != nil {
			return err
		}
		for _, ev := range list.Items {
			if keep(ev) {
				out = append(out, ev)
			}
		}
		return nil
	}
	for _, pod := range r.pods {
		if err := collect("Pod", pod.Name, func(ev corev1.Event) bool { return ev.InvolvedObject.UID == "" || ev.InvolvedObject.UID == pod.UID }); err != nil {
			return nil, err
		}
	}
	err := collect(setGVK.Kind, s.set.Name, func(ev corev1.Event) bool { return mentions(ev.Message, r.name) })
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return eventTime(out[i]).Before(eventTime(out[j])) })
	if len(out) > maxEvents {
		out = out[len(out)-maxEvents:]
	}
	return out, nil
}

// mentions reports whether a message names the node: the name not inside a longer name.
func mentions(message, node string) bool {
	for i := 0; ; {
		j := strings.Index(message[i:], node)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(node)
		// A dot after the name ends a sentence unless a name character follows it (worker-1.example.com).
		endsName := end == len(message) || !nameChar(message[end]) ||
			message[end] == '.' && (end+1 == len(message) || !nameChar(message[end+1]))
		if (start == 0 || !nameChar(message[start-1])) && endsName {
			return true
		}
		i = start + 1
	}
}

func nameChar(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '.'
}
