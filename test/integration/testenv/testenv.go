// Package testenv starts the API server the integration suites run against: envtest's kube-apiserver
// and etcd (built by hack/k8s-binaries.sh), with the NodeAgentSet CRD installed.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"sort"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/nodeagentset/nodeagentset/internal/controller/nodeagentset"
)

// Scheme knows the built-in types and NodeAgentSets: the manager's own scheme.
func Scheme() *k8sruntime.Scheme {
	return nodeagentset.NewScheme()
}

// Start starts an API server with the CRD installed. A CRD the API server refuses (a CEL rule that does
// not compile or exceeds the cost budget) fails here, with the API server's reason.
//
// The TaintNodesByCondition admission plugin is off, as in upstream's DaemonSet integration tests:
// without a node lifecycle controller nothing would lift the not-ready taint it puts on new nodes.
func Start(scheme *k8sruntime.Scheme) (*envtest.Environment, *rest.Config, error) {
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(repoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: localAssetsDir(),
		Scheme:                scheme,
	}
	env.ControlPlane.GetAPIServer().Configure().Append("disable-admission-plugins", "TaintNodesByCondition")
	cfg, err := env.Start()
	return env, cfg, err
}

// repoRoot is the repository's top directory, found from this file's place in it.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// localAssetsDir is the directory of kube-apiserver and etcd when KUBEBUILDER_ASSETS is not set (a run
// from an IDE): the newest bin/k8s/<version> built by hack/k8s-binaries.sh that has both.
// KUBEBUILDER_ASSETS, which `make test-integration` sets, always wins.
func localAssetsDir() string {
	if os.Getenv("KUBEBUILDER_ASSETS") != "" {
		return ""
	}
	dirs, _ := filepath.Glob(filepath.Join(repoRoot(), "bin", "k8s", "*"))
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, dir := range dirs {
		if isFile(filepath.Join(dir, "kube-apiserver")) && isFile(filepath.Join(dir, "etcd")) {
			return dir
		}
	}
	return ""
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}
