package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// scheme knows NodeAgentSets, so printers can set apiVersion and kind.
var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(nasv1alpha1.AddToScheme(scheme))
}

type historyOptions struct {
	revision   int64
	printFlags *genericclioptions.PrintFlags
}

func newRolloutHistoryCommand(f *factory) *cobra.Command {
	o := &historyOptions{printFlags: genericclioptions.NewPrintFlags("").WithTypeSetter(scheme)}
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "View rollout history",
		Long: `View the revisions of a NodeAgentSet with their change-cause, or the pod template of one revision.

The change-cause of a revision is the kubernetes.io/change-cause annotation the set had when the
revision was created. With -o, each revision is printed as the full NodeAgentSet with that
revision's template, as kubectl does for DaemonSets.`,
		Example: `  # The revisions of log-collector
  kubectl nas rollout history log-collector

  # The pod template of revision 3
  kubectl nas rollout history log-collector --revision 3`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.revision < 0 {
				return fmt.Errorf("revision must be a positive integer: %v", o.revision)
			}
			c, err := f.clients()
			if err != nil {
				return err
			}
			return o.run(cmd.Context(), c, args[0], f.streams.Out)
		},
	}
	cmd.Flags().Int64Var(&o.revision, "revision", o.revision, "See the details, including podTemplate of the revision specified")
	o.printFlags.AddFlags(cmd)
	return cmd
}

func (o *historyOptions) run(ctx context.Context, c *clients, name string, out io.Writer) error {
	set, err := c.getSet(ctx, name)
	if err != nil {
		return err
	}
	history, err := c.history(ctx, set)
	if err != nil {
		return err
	}
	if o.printFlags.OutputFlagSpecified != nil && o.printFlags.OutputFlagSpecified() {
		return o.printObjects(set, history, out)
	}
	text, err := historyText(set, history, o.revision)
	if err != nil {
		return err
	}
	withRevision := ""
	if o.revision > 0 {
		withRevision = fmt.Sprintf("with revision #%d", o.revision)
	}
	// kubectl prints this through its name printer: "<kind.group>/<name> <operation>\n".
	_, err = fmt.Fprintf(out, "%s %s\n%s\n", objectName(set.Name), withRevision, text)
	return err
}

// printObjects prints, for each revision (or the one asked for), the set with that revision's template.
func (o *historyOptions) printObjects(set *nasv1alpha1.NodeAgentSet, history []*appsv1.ControllerRevision, out io.Writer) error {
	printer, err := o.printFlags.ToPrinter()
	if err != nil {
		return err
	}
	if o.revision > 0 {
		cr := findRevision(history, o.revision)
		if cr == nil {
			return errors.New("unable to find the specified revision")
		}
		applied, err := applyRevision(set, cr)
		if err != nil {
			return err
		}
		return printer.PrintObj(applied, out)
	}
	for _, cr := range history {
		applied, err := applyRevision(set, cr)
		if err != nil {
			return err
		}
		if err := printer.PrintObj(applied, out); err != nil {
			return err
		}
	}
	return nil
}

// historyText is what kubectl's printHistory returns: the table of revisions with their
// change-cause, or one revision's pod template.
func historyText(set *nasv1alpha1.NodeAgentSet, history []*appsv1.ControllerRevision, revision int64) (string, error) {
	if len(history) == 0 {
		return "No rollout history found.", nil
	}
	if revision > 0 {
		cr := findRevision(history, revision)
		if cr == nil {
			return "", errors.New("unable to find the specified revision")
		}
		applied, err := applyRevision(set, cr)
		if err != nil {
			return "", fmt.Errorf("unable to parse history %s", cr.Name)
		}
		return describePodTemplate(&applied.Spec.Template) + describeNodeOverrides(applied.Spec.NodeOverrides), nil
	}
	return historyTable(history), nil
}

// historyTable renders REVISION and CHANGE-CAUSE, one row per revision number in ascending order (a
// number held by several revisions shows the last one listed), aligned as kubectl aligns it.
func historyTable(history []*appsv1.ControllerRevision) string {
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	_, _ = fmt.Fprintf(w, "REVISION\tCHANGE-CAUSE\n")
	for i, cr := range history {
		if i+1 < len(history) && history[i+1].Revision == cr.Revision {
			continue
		}
		cause := cr.Annotations[ChangeCauseAnnotation]
		if cause == "" {
			cause = "<none>"
		}
		_, _ = fmt.Fprintf(w, "%d\t%s\n", cr.Revision, cause)
	}
	_ = w.Flush()
	return buf.String()
}
