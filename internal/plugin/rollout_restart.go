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
)

func newRolloutRestartCommand(f *factory) *cobra.Command {
	return &cobra.Command{
		Use:   "restart NAME",
		Short: "Restart a NodeAgentSet",
		Long: `Restart every agent pod of a NodeAgentSet through a rolling update: the template gets the annotation
kubectl.kubernetes.io/restartedAt with the current time, as kubectl rollout restart does.`,
		Example: `  kubectl nas rollout restart log-collector`,
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
			if isPaused(set) {
				return objectError(set.Name, "can't restart paused %s (run rollout resume first)", setNoun)
			}
			now := time.Now().Format(time.RFC3339)
			if set.Spec.Template.Annotations[RestartedAtAnnotation] == now {
				return fmt.Errorf("failed to create patch for %v: if restart has already been triggered within the past second, "+
					"please wait before attempting to trigger another", set.Name)
			}
			patch := map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
				"annotations": map[string]string{RestartedAtAnnotation: now}}}}}
			if err := c.mergePatch(cmd.Context(), set.Name, patch); err != nil {
				return err
			}
			_, err = fmt.Fprintf(f.streams.Out, "%s restarted\n", objectName(set.Name))
			return err
		},
	}
}

// newRolloutPauseCommand builds `rollout pause` (pause true) or `rollout resume` (pause false), which
// set spec.updateStrategy.rollingUpdate.paused, with kubectl's messages for Deployments.
func newRolloutPauseCommand(f *factory, pause bool) *cobra.Command {
	use, short, long, done := "resume", "Resume a paused NodeAgentSet",
		`Resume a paused rollout: the controller goes on replacing pods of older revisions.`, "resumed"
	if pause {
		use, short, long, done = "pause", "Pause the rollout of a NodeAgentSet",
			`Pause a rollout: no pod of an older revision is replaced until it is resumed. Nodes without an agent
(new nodes, deleted or failed pods) still get a pod, of the current template.`, "paused"
	}
	return &cobra.Command{
		Use:     use + " NAME",
		Short:   short,
		Long:    long,
		Example: fmt.Sprintf("  kubectl nas rollout %s log-collector", use),
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
			if t := set.Spec.UpdateStrategy.Type; t != "" && t != nasv1alpha1.RollingUpdateStrategyType {
				return objectError(set.Name, "%s is not supported for the %s update strategy: only RollingUpdate rollouts can be paused",
					map[bool]string{true: "pausing", false: "resuming"}[pause], t)
			}
			switch {
			case pause && isPaused(set):
				return objectError(set.Name, "is already paused")
			case !pause && !isPaused(set):
				return objectError(set.Name, "is not paused")
			}
			patch := map[string]any{"spec": map[string]any{"updateStrategy": map[string]any{"rollingUpdate": map[string]any{"paused": pause}}}}
			if err := c.mergePatch(cmd.Context(), set.Name, patch); err != nil {
				return err
			}
			_, err = fmt.Fprintf(f.streams.Out, "%s %s\n", objectName(set.Name), done)
			return err
		},
	}
}

func isPaused(set *nasv1alpha1.NodeAgentSet) bool {
	ru := set.Spec.UpdateStrategy.RollingUpdate
	return ru != nil && ru.Paused && set.Spec.UpdateStrategy.Type != nasv1alpha1.OnDeleteStrategyType
}

// objectError is kubectl's per-object error: `error: nodeagentsets.apps.nodeagentset.io "NAME" <what>`.
func objectError(name, format string, a ...any) error {
	return fmt.Errorf("error: %s %q %s", resourceName(), name, fmt.Sprintf(format, a...))
}

// mergePatch sends a JSON merge patch to the set.
func (c *clients) mergePatch(ctx context.Context, name string, patch any) error {
	raw, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if _, err := c.dynamic.Resource(setGVR).Namespace(c.namespace).Patch(ctx, name, types.MergePatchType, raw, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("failed to patch: %v", err)
	}
	return nil
}
