// Package plugin implements kubectl-nas, the kubectl plugin for NodeAgentSets: `kubectl nas rollout
// status|history|undo|restart|pause|resume`, `kubectl nas nodes` and `kubectl nas why`.
//
// The rollout commands follow `kubectl rollout` for DaemonSets (states, messages, exit codes); `nodes`
// and `why` explain placement with the planner, the same pure code the controller runs.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// Run executes kubectl-nas with args (without the program name) and returns the exit code: 0 on
// success, 1 on any error, which is printed to streams.ErrOut the way kubectl prints it.
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	cmd := NewCommand(streams)
	cmd.SetArgs(args)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	if err := cmd.ExecuteContext(ctx); err != nil {
		_, _ = fmt.Fprintln(streams.ErrOut, errorMessage(err))
		return 1
	}
	return 0
}

// NewCommand builds the kubectl-nas command tree. Errors are returned, not printed: Run prints them.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	cmd := &cobra.Command{
		Use:   "kubectl-nas",
		Short: "Operate NodeAgentSets: rollouts, and why a node has (no) agent",
		Long: `Operate NodeAgentSets (apps.nodeagentset.io) like built-in workloads.

  kubectl nas rollout status|history|undo|restart|pause|resume NAME
  kubectl nas nodes NAME       one row per node: eligible or not, the agent pod and its state
  kubectl nas why NAME NODE    why a node has (or has no) available agent pod`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl nas"},
		SilenceErrors: true,
		SilenceUsage:  true,
		// No action of its own: without a subcommand, print the help.
		Run: func(cmd *cobra.Command, _ []string) { _ = cmd.Help() },
	}
	flags.AddFlags(cmd.PersistentFlags())
	f := &factory{flags: flags, streams: streams}
	cmd.AddCommand(newRolloutCommand(f), newNodesCommand(f), newWhyCommand(f))
	return cmd
}

// factory builds clients from the standard kubectl flags, once the flags are parsed.
type factory struct {
	flags   *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
}

// clients talk to the cluster in the namespace chosen by -n or the kubeconfig context.
type clients struct {
	core      corev1client.CoreV1Interface
	apps      appsv1client.AppsV1Interface
	dynamic   dynamic.Interface
	namespace string
}

func (f *factory) clients() (*clients, error) {
	ns, _, err := f.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, err
	}
	cfg, err := f.flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	// Only the groups the plugin reads: the full clientset would link every API group in.
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	apps, err := appsv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &clients{core: core, apps: apps, dynamic: dyn, namespace: ns}, nil
}

// errorMessage renders an error as kubectl's cmdutil.CheckErr does: API errors as
// "Error from server (Reason): ...", everything else as "error: ...".
func errorMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		switch {
		case s.Reason == metav1.StatusReasonUnauthorized:
			return fmt.Sprintf("error: You must be logged in to the server (%s)", s.Message)
		case s.Reason != "":
			return fmt.Sprintf("Error from server (%s): %s", s.Reason, err.Error())
		default:
			return fmt.Sprintf("Error from server: %s", err.Error())
		}
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "error: ") {
		msg = "error: " + msg
	}
	return msg
}

// exactArgs is cobra.ExactArgs with kubectl-style messages naming what is missing.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return fmt.Errorf("%s is required", strings.Join(names[len(args):], " and "))
		}
		if len(args) > len(names) {
			return fmt.Errorf("unexpected arguments: %s", strings.Join(args[len(names):], " "))
		}
		return nil
	}
}
