package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// dryRun is kubectl's --dry-run strategy.
type dryRun int

const (
	dryRunNone dryRun = iota
	dryRunClient
	dryRunServer
)

// dryRunUnset is the value of a bare --dry-run, which means client.
const dryRunUnset = "unchanged"

// parseDryRun reads --dry-run as kubectl does: none, client, server, a boolean, or bare (client).
func parseDryRun(v string) (dryRun, error) {
	switch v {
	case "none":
		return dryRunNone, nil
	case "client", dryRunUnset:
		return dryRunClient, nil
	case "server":
		return dryRunServer, nil
	}
	if b, err := strconv.ParseBool(v); err == nil {
		if b {
			return dryRunClient, nil
		}
		return dryRunNone, nil
	}
	//nolint:staticcheck // kubectl's message, word for word.
	return dryRunNone, fmt.Errorf(`Invalid dry-run value (%v). Must be "none", "server", or "client".`, v)
}

// suffix is what kubectl appends to the message of a dry run.
func (d dryRun) suffix() string {
	switch d {
	case dryRunClient:
		return " (dry run)"
	case dryRunServer:
		return " (server dry run)"
	default:
		return ""
	}
}

type undoOptions struct {
	toRevision int64
	dryRun     string
}

func newRolloutUndoCommand(f *factory) *cobra.Command {
	o := &undoOptions{dryRun: "none"}
	cmd := &cobra.Command{
		Use:   "undo NAME",
		Short: "Undo a previous rollout",
		Long: `Roll back to a previous revision: the set's pod template is replaced by the revision's.

Without --to-revision, the revision before the current one (by number) is restored. Only the
template and the node overrides change; the controller reuses the old revision, and pods that still run it are kept.`,
		Example: `  # Roll back to the previous revision
  kubectl nas rollout undo log-collector

  # Show the template revision 3 would restore, without changing anything
  kubectl nas rollout undo log-collector --to-revision 3 --dry-run`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			mode, err := parseDryRun(o.dryRun)
			if err != nil {
				return err
			}
			c, err := f.clients()
			if err != nil {
				return err
			}
			return o.run(cmd.Context(), c, args[0], mode, f.streams.Out, f.streams.ErrOut)
		},
	}
	cmd.Flags().Int64Var(&o.toRevision, "to-revision", o.toRevision, "The revision to rollback to. Default to 0 (last revision).")
	cmd.Flags().StringVar(&o.dryRun, "dry-run", o.dryRun,
		`Must be "none", "server", or "client". If client strategy, only print the object that would be sent, without sending it. `+
			`If server strategy, submit server-side request without persisting the resource.`)
	cmd.Flags().Lookup("dry-run").NoOptDefVal = dryRunUnset
	return cmd
}

func (o *undoOptions) run(ctx context.Context, c *clients, name string, mode dryRun, out, errOut io.Writer) error {
	set, err := c.getSet(ctx, name)
	if err != nil {
		return err
	}
	if _, ok := set.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		_, _ = fmt.Fprintf(errOut, "Warning: resource %[1]s was previously managed with '%[3]s apply'. "+
			"Rolling back will not update the %[2]s annotation, which may cause unexpected behavior on future '%[3]s apply' operations. "+
			"Consider using '%[3]s apply' with your previous configuration file instead.\n",
			setGVR.Resource+"/"+set.Name, corev1.LastAppliedConfigAnnotation, "kubectl")
	}
	result, err := o.rollback(ctx, c, set, mode)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s %s%s\n", objectName(set.Name), result, mode.suffix())
	return err
}

// rollback follows kubectl's DaemonSetRollbacker. The API server does not take strategic merge patches
// for custom resources, so the revision's template is written with a JSON patch that replaces
// spec.template, which is what the revision's "$patch":"replace" patch does to a DaemonSet. The
// revision's nodeOverrides are restored with it (removed when the revision has none).
func (o *undoOptions) rollback(ctx context.Context, c *clients, set *nasv1alpha1.NodeAgentSet, mode dryRun) (string, error) {
	if o.toRevision < 0 {
		return "", revisionNotFound(o.toRevision)
	}
	history, err := c.history(ctx, set)
	if err != nil {
		return "", err
	}
	if o.toRevision == 0 && len(history) <= 1 {
		return "", errors.New("no last revision to roll back to")
	}
	target := rollbackTarget(history, o.toRevision)
	if target == nil {
		return "", revisionNotFound(o.toRevision)
	}
	applied, err := applyRevision(set, target)
	if err != nil {
		return "", err
	}
	if mode == dryRunClient {
		return "will roll back to " + describePodTemplate(&applied.Spec.Template) + describeNodeOverrides(applied.Spec.NodeOverrides), nil
	}
	done, err := matchesRevision(set, target)
	if err != nil {
		return "", err
	}
	if done {
		return fmt.Sprintf("skipped rollback (current template already matches revision %d)", target.Revision), nil
	}
	ops := []map[string]any{{"op": "replace", "path": "/spec/template", "value": applied.Spec.Template}}
	switch {
	case len(applied.Spec.NodeOverrides) > 0:
		ops = append(ops, map[string]any{"op": "add", "path": "/spec/nodeOverrides", "value": applied.Spec.NodeOverrides})
	case len(set.Spec.NodeOverrides) > 0:
		ops = append(ops, map[string]any{"op": "remove", "path": "/spec/nodeOverrides"})
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return "", fmt.Errorf("failed restoring revision %d: %v", target.Revision, err)
	}
	opts := metav1.PatchOptions{}
	if mode == dryRunServer {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := c.dynamic.Resource(setGVR).Namespace(set.Namespace).Patch(ctx, set.Name, types.JSONPatchType, patch, opts); err != nil {
		return "", fmt.Errorf("failed restoring revision %d: %v", target.Revision, err)
	}
	return "rolled back", nil
}

// rollbackTarget is the revision numbered n, or for n == 0 the second-highest revision by number
// (kubectl's "previous revision"); nil when there is none.
func rollbackTarget(history []*appsv1.ControllerRevision, n int64) *appsv1.ControllerRevision {
	if n > 0 {
		return findRevision(history, n)
	}
	if len(history) < 2 {
		return nil
	}
	return history[len(history)-2]
}

func revisionNotFound(n int64) error {
	return fmt.Errorf("unable to find specified revision %v in history", n)
}
