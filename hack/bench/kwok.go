package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// The bench's cluster is created and deleted by hack/local-cluster.sh, from the kwokctl configuration
// every local cluster of the repository uses (hack/kwok/kwokctl.yaml) plus the flags and kwok settings
// below: one source for both, the bench adds and never restates.

// kwokctlBase is the shared kwokctl configuration, relative to the repository.
const kwokctlBase = "hack/kwok/kwokctl.yaml"

// componentArg is one extra flag of one cluster component.
type componentArg struct {
	component, key, value string
}

// benchComponentArgs are the bench's additions to the shared configuration's component flags.
var benchComponentArgs = []componentArg{
	// No node.kubernetes.io/not-ready taint on the nodes the bench creates (nodeObject): kwok marks
	// them Ready at once, and lifting 1,000 taints at --kube-api-qps=20 takes minutes.
	{"kube-apiserver", "disable-admission-plugins", "TaintNodesByCondition"},
	// The scheduler binds every pod of a trial: its client must not be what sets the pace.
	{"kube-scheduler", "kube-api-qps", "1000"},
	{"kube-scheduler", "kube-api-burst", "1000"},
}

// kwokConfiguration is kwok's defaults (a KwokConfiguration replaces them all) except
// podPlayStageParallelism, which grows with the nodes (kwokWorkersFor).
func kwokConfiguration(podWorkers int) string {
	return `apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  cidr: 10.0.0.0/24
  manageAllNodes: false
  enableDebuggingHandlers: true
  enableContentionProfiling: false
  enableProfilingHandler: true
  podPlayStageParallelism: ` + strconv.Itoa(podWorkers) + `
  nodePlayStageParallelism: 4
  nodeLeaseParallelism: 4
  podsOnNodeSyncParallelism: 1
  enablePodsOnNodeSyncListPager: true
  enablePodsOnNodeSyncStreamWatch: false
`
}

// kwokctlConfig is the shared kwokctl configuration with benchComponentArgs added to its
// componentsPatches, followed by the bench's KwokConfiguration.
func kwokctlConfig(base []byte, podWorkers int) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", kwokctlBase, err)
	}
	if doc["kind"] != "KwokctlConfiguration" {
		return nil, fmt.Errorf("%s: kind %v, want one KwokctlConfiguration", kwokctlBase, doc["kind"])
	}
	patches, _ := doc["componentsPatches"].([]any)
	for _, a := range benchComponentArgs {
		arg := map[string]any{"key": a.key, "value": a.value}
		found := false
		for _, p := range patches {
			patch, ok := p.(map[string]any)
			if !ok || patch["name"] != a.component {
				continue
			}
			args, _ := patch["extraArgs"].([]any)
			patch["extraArgs"] = append(args, arg)
			found = true
			break
		}
		if !found {
			patches = append(patches, map[string]any{"name": a.component, "extraArgs": []any{arg}})
		}
	}
	doc["componentsPatches"] = patches
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return append(out, []byte("---\n"+kwokConfiguration(podWorkers))...), nil
}

// localCluster runs hack/local-cluster.sh on the bench's cluster (name clusterName, state under
// c.dir) with the extra environment env; the script's log goes to the bench's stderr.
func (c config) localCluster(env []string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.root, "hack", "local-cluster.sh"), args...)
	cmd.Dir = c.root
	cmd.Env = append(os.Environ(),
		"CLUSTER_NAME="+clusterName,
		"DEMO_DIR="+c.dir,
		"KWOK_WORKDIR="+filepath.Join(c.dir, "kwok"),
		"K8S_BIN="+c.k8sBin,
		"K8S_VERSION="+strings.TrimPrefix(filepath.Base(c.k8sBin), "v"),
		"LOCAL_CLUSTER_TIMEOUT=120")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hack/local-cluster.sh %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func (c config) clusterDir() string { return filepath.Join(c.dir, "kwok", "clusters", clusterName) }

func (c config) deleteCluster() {
	if _, err := os.Stat(c.clusterDir()); err != nil {
		return
	}
	if err := c.localCluster(nil, "down"); err != nil {
		logf("%v", err)
	}
}

// createCluster creates the bench's cluster afresh (deleting an earlier one), without
// kube-controller-manager: the bench runs it itself (startControllers).
func (c config) createCluster() error {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	base, err := os.ReadFile(filepath.Join(c.root, kwokctlBase))
	if err != nil {
		return err
	}
	cfg, err := kwokctlConfig(base, c.kwokWorkers)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(c.dir, "kwokctl.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return err
	}
	logf("creating cluster %s (kube-controller-manager disabled: this program runs it; kwok with %d pod workers)", clusterName, c.kwokWorkers)
	return c.localCluster([]string{"KWOKCTL_CONFIG=" + cfgPath, "LOCAL_CLUSTER_DISABLE=kube-controller-manager"}, "create")
}
