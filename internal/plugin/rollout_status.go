package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

func newRolloutCommand(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout SUBCOMMAND",
		Short: "Manage the rollout of a NodeAgentSet",
		Long: `Manage the rollout of a NodeAgentSet, as kubectl rollout does for a DaemonSet.

On top of the DaemonSet's subcommands, pause and resume set spec.updateStrategy.rollingUpdate.paused, and
promote, abort and retry decide on a canary (spec.updateStrategy.rollingUpdate.canary).`,
		Run: func(cmd *cobra.Command, _ []string) { _ = cmd.Help() },
	}
	cmd.AddCommand(
		newRolloutStatusCommand(f),
		newRolloutHistoryCommand(f),
		newRolloutUndoCommand(f),
		newRolloutRestartCommand(f),
		newRolloutPauseCommand(f, true),
		newRolloutPauseCommand(f, false),
	)
	for _, cc := range canaryCommands {
		cmd.AddCommand(newRolloutCanaryCommand(f, cc))
	}
	return cmd
}

type statusOptions struct {
	watch    bool
	revision int64
	timeout  time.Duration
}

func newRolloutStatusCommand(f *factory) *cobra.Command {
	o := &statusOptions{watch: true}
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show the status of the rollout",
		Long: `Show the status of the rollout.

By default 'rollout status' watches the status of the latest rollout until it is done, and exits
non-zero when the rollout made no progress for spec.progressDeadlineSeconds (the stuck nodes are
named) or its canary failed or was aborted. During a canary it shows the canary's phase. Use
--watch=false to print the status once and exit.`,
		Example: `  # Watch the rollout of the NodeAgentSet log-collector
  kubectl nas rollout status log-collector

  # Give up after five minutes
  kubectl nas rollout status log-collector --timeout 5m`,
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
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", o.watch, "Watch the status of the rollout until it's done.")
	cmd.Flags().Int64Var(&o.revision, "revision", o.revision,
		"Accepted for compatibility with kubectl rollout status; ignored, as for DaemonSets.")
	cmd.Flags().DurationVar(&o.timeout, "timeout", o.timeout,
		"The length of time to wait before ending watch, zero means never. Any other values should contain a corresponding time unit (e.g. 1s, 2m, 3h).")
	return cmd
}

// run watches the set, as kubectl rollout status does: list+watch of the one object, the status
// printed on every change, until it is done, --watch=false, the timeout or an error.
func (o *statusOptions) run(ctx context.Context, c *clients, name string, out io.Writer) error {
	// A missing set is an error from the server, as kubectl's resource builder reports it.
	if _, err := c.getSet(ctx, name); err != nil {
		return err
	}
	fieldSelector := fields.OneTermEqualSelector("metadata.name", name).String()
	res := c.dynamic.Resource(setGVR).Namespace(c.namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
			options.FieldSelector = fieldSelector
			return res.List(ctx, options)
		},
		WatchFuncWithContext: func(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
			options.FieldSelector = fieldSelector
			return res.Watch(ctx, options)
		},
	}
	ctx, cancel := watchtools.ContextWithOptionalTimeout(ctx, o.timeout)
	defer cancel()
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(e watch.Event) (bool, error) {
		switch e.Type {
		case watch.Added, watch.Modified:
			u, ok := e.Object.(*unstructured.Unstructured)
			if !ok {
				return true, fmt.Errorf("internal error: unexpected object %T", e.Object)
			}
			set, err := setFromUnstructured(u)
			if err != nil {
				return true, err
			}
			msg, done, err := rolloutStatus(set)
			if err != nil {
				return true, err
			}
			_, _ = fmt.Fprint(out, msg)
			return done || !o.watch, nil
		case watch.Deleted:
			return true, errors.New("object has been deleted")
		default:
			return true, fmt.Errorf("internal error: unexpected event %#v", e)
		}
	})
	return err
}

// rolloutStatus evaluates a set as kubectl's DaemonSetStatusViewer evaluates a DaemonSet, with what a
// NodeAgentSet adds: a progress deadline (an error, as for a Deployment), a partition (as for a
// StatefulSet) and pause. It returns the message to print (ending in a newline) and whether the rollout
// is done. The partition in nodes is the planner's (ResolveStrategy), against the eligible nodes the
// status counts, so that it matches the counters it is compared with.
func rolloutStatus(set *nasv1alpha1.NodeAgentSet) (string, bool, error) {
	if t := set.Spec.UpdateStrategy.Type; t != "" && t != nasv1alpha1.RollingUpdateStrategyType {
		return "", false, errors.New("rollout status is only available for RollingUpdate strategy type")
	}
	if set.Generation > set.Status.ObservedGeneration {
		return fmt.Sprintf("Waiting for %s spec update to be observed...\n", setNoun), false, nil
	}
	if c := meta.FindStatusCondition(set.Status.Conditions, nasv1alpha1.ConditionProgressing); c != nil &&
		c.Status == metav1.ConditionFalse && c.Reason == nasv1alpha1.ReasonProgressDeadlineExceeded {
		return "", false, fmt.Errorf("%s %q exceeded its progress deadline: %s", setNoun, set.Name, c.Message)
	}
	if c := meta.FindStatusCondition(set.Status.Conditions, nasv1alpha1.ConditionProgressing); c != nil {
		if msg, ok, err := canaryRolloutStatus(set, c.Reason, c.Message); ok {
			return msg, false, err
		}
	}
	msg, done := rolloutProgress(set)
	if c := meta.FindStatusCondition(set.Status.Conditions, nasv1alpha1.ConditionProgressing); c != nil {
		// The controller publishes its planner's rollout verdict (Plan.Rollout.Phase) as the
		// Progressing reason: that, not a second reading of the counters, says whether it is done.
		// The counters only word the progress.
		countersDone := done
		done = c.Reason == nasv1alpha1.ReasonRolloutComplete
		switch {
		case done:
			msg = rolloutDone(set)
		case countersDone:
			// Every pod counts as updated, yet the controller's plan is not done (say, a Ready pod
			// still within minReadySeconds on a node outside the counters' view): its words.
			msg = fmt.Sprintf("Waiting for %s %q rollout to finish: %s...\n", setNoun, set.Name, c.Message)
		}
	}
	return msg, done, nil
}

// rolloutDone is kubectl's message for a finished rollout, partitioned or not, with the unhealthy
// nodes it skipped (unhealthyNodePolicy Skip).
func rolloutDone(set *nasv1alpha1.NodeAgentSet) string {
	if planner.ResolveStrategy(set, set.Status.DesiredNumberScheduled).Partition > 0 {
		return fmt.Sprintf("partitioned roll out complete: %d new pods have been updated%s...\n", set.Status.UpdatedNumberScheduled,
			skippedText(set))
	}
	return fmt.Sprintf("%s %q successfully rolled out%s\n", setNoun, set.Name, skippedText(set))
}

// skippedText names the unhealthy nodes the rollout skipped: " (2 unhealthy nodes skipped: a, b)";
// empty when none.
func skippedText(set *nasv1alpha1.NodeAgentSet) string {
	s := set.Status.SkippedNodes
	if s == nil || s.Count == 0 {
		return ""
	}
	names := strings.Join(s.Nodes, ", ")
	if more := int(s.Count) - len(s.Nodes); more > 0 {
		names += fmt.Sprintf(" and %d more", more)
	}
	noun := "nodes"
	if s.Count == 1 {
		noun = "node"
	}
	return fmt.Sprintf(" (%d unhealthy %s skipped: %s)", s.Count, noun, names)
}

// rolloutProgress words the progress from the status counters, as kubectl's DaemonSetStatusViewer
// does, and says whether they show the rollout done: the verdict of a set whose status has no
// Progressing condition yet.
func rolloutProgress(set *nasv1alpha1.NodeAgentSet) (string, bool) {
	st := set.Status
	paused := ""
	if isPaused(set) {
		paused = " (rollout paused)"
	}
	if partition := planner.ResolveStrategy(set, st.DesiredNumberScheduled).Partition; partition > 0 {
		target := st.DesiredNumberScheduled - partition
		if st.UpdatedNumberScheduled < target {
			return fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated%s...\n",
				st.UpdatedNumberScheduled, target, paused), false
		}
		if st.NumberAvailable < st.DesiredNumberScheduled {
			return fmt.Sprintf("Waiting for %s %q rollout to finish: %d of %d pods are available%s...\n",
				setNoun, set.Name, st.NumberAvailable, st.DesiredNumberScheduled, paused), false
		}
		return rolloutDone(set), true
	}
	if st.UpdatedNumberScheduled < st.DesiredNumberScheduled {
		return fmt.Sprintf("Waiting for %s %q rollout to finish: %d out of %d new pods have been updated%s...\n",
			setNoun, set.Name, st.UpdatedNumberScheduled, st.DesiredNumberScheduled, paused), false
	}
	if st.NumberAvailable < st.DesiredNumberScheduled {
		return fmt.Sprintf("Waiting for %s %q rollout to finish: %d of %d updated pods are available%s...\n",
			setNoun, set.Name, st.NumberAvailable, st.DesiredNumberScheduled, paused), false
	}
	return rolloutDone(set), true
}
