package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// canaryFieldManager owns the canary-decision annotation: a GitOps tool that re-applies the set's
// manifest never owned it, so neither its server-side apply nor its client-side apply removes it.
const canaryFieldManager = "kubectl-nas-rollout"

// canaryCommand describes one of promote, abort and retry.
type canaryCommand struct {
	action, short, long, done string
	// allowed says whether the decision applies to the canary's phase.
	allowed func(nasv1alpha1.CanaryPhase) bool
}

var canaryCommands = []canaryCommand{
	{
		action: planner.CanaryDecisionPromote, short: "Promote the canary of a NodeAgentSet to the whole fleet", done: "promoted",
		long: `Promote the canary of the current template: the rollout goes on to every node, whatever the canary's
phase (waiting for promotion, still watched, or failed).`,
		allowed: func(p nasv1alpha1.CanaryPhase) bool {
			return p != nasv1alpha1.CanarySucceeded && p != nasv1alpha1.CanaryAborted
		},
	},
	{
		action: planner.CanaryDecisionAbort, short: "Abort the canary of a NodeAgentSet", done: "aborted",
		long: `Abort the canary of the current template: the canary nodes get the revision the rest of the fleet runs
back, and the rollout goes no further until the template changes or the canary is retried.`,
		allowed: func(p nasv1alpha1.CanaryPhase) bool {
			return p != nasv1alpha1.CanarySucceeded && p != nasv1alpha1.CanaryAborted
		},
	},
	{
		action: planner.CanaryDecisionRetry, short: "Retry the failed or aborted canary of a NodeAgentSet", done: "retried",
		long: `Retry the canary of the current template after it failed or was aborted: the canary nodes are updated
and watched again, from zero.`,
		allowed: func(p nasv1alpha1.CanaryPhase) bool {
			return p == nasv1alpha1.CanaryFailed || p == nasv1alpha1.CanaryAborted
		},
	},
}

// newRolloutCanaryCommand builds `rollout promote|abort|retry NAME`. Each writes only the person's
// decision, the annotation apps.nodeagentset.io/canary-decision naming the revision under test: the
// controller acts on it once, and ignores it once the template changes.
func newRolloutCanaryCommand(f *factory, cc canaryCommand) *cobra.Command {
	return &cobra.Command{
		Use:   cc.action + " NAME",
		Short: cc.short,
		Long: cc.long + `

The decision is the annotation ` + nasv1alpha1.CanaryDecisionAnnotation + `, naming the revision under test; the
spec is not changed, so a GitOps tool that re-applies the manifest neither undoes nor repeats it.`,
		Example: fmt.Sprintf("  kubectl nas rollout %s log-collector", cc.action),
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.clients()
			if err != nil {
				return err
			}
			set, err := c.getSet(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			value, err := canaryDecision(set, cc, time.Now())
			if err != nil {
				return err
			}
			if err := c.annotate(cmd.Context(), set.Name, nasv1alpha1.CanaryDecisionAnnotation, value); err != nil {
				return err
			}
			_, err = fmt.Fprintf(f.streams.Out, "%s canary of revision %s %s\n", objectName(set.Name), set.Status.Canary.Revision, cc.done)
			return err
		},
	}
}

// canaryDecision is the annotation value for the decision on the set's canary, or why it does not apply.
func canaryDecision(set *nasv1alpha1.NodeAgentSet, cc canaryCommand, now time.Time) (string, error) {
	st := set.Status.Canary
	switch {
	case st == nil:
		return "", objectError(set.Name, "has no canary (spec.updateStrategy.rollingUpdate.canary)")
	case set.Status.UpdateRevision != "" && st.Revision != set.Status.UpdateRevision:
		return "", objectError(set.Name, "canary is not the current revision's yet (try again once the controller observed the template)")
	case !cc.allowed(st.Phase):
		return "", objectError(set.Name, "canary of revision %s is %s: nothing to %s", st.Revision, st.Phase, cc.action)
	}
	return planner.CanaryDecision(cc.action, st.Revision, now), nil
}

// annotate sets one annotation of the set with a merge patch, as canaryFieldManager.
func (c *clients) annotate(ctx context.Context, name, key, value string) error {
	raw, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	if err != nil {
		return err
	}
	if _, err := c.dynamic.Resource(setGVR).Namespace(c.namespace).Patch(ctx, name, types.MergePatchType, raw,
		metav1.PatchOptions{FieldManager: canaryFieldManager}); err != nil {
		return fmt.Errorf("failed to patch: %v", err)
	}
	return nil
}

// canaryRolloutStatus is rollout status during a canary: ok is false when the controller's verdict is
// not a canary's; err says the canary failed or was aborted.
func canaryRolloutStatus(set *nasv1alpha1.NodeAgentSet, reason, message string) (string, bool, error) {
	st := set.Status.Canary
	phase := nasv1alpha1.CanaryPhase("")
	if st != nil {
		phase = st.Phase
	}
	switch reason {
	case nasv1alpha1.ReasonCanaryFailed, nasv1alpha1.ReasonCanaryAborted:
		return "", true, fmt.Errorf("%s %q canary %s: %s", setNoun, set.Name, map[bool]string{true: "aborted", false: "failed"}[reason ==
			nasv1alpha1.ReasonCanaryAborted], message)
	case nasv1alpha1.ReasonCanaryInProgress:
		return fmt.Sprintf("Waiting for %s %q canary (%s): %s...\n", setNoun, set.Name, phase, message), true, nil
	}
	return "", false, nil
}
