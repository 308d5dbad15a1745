// Package e2e tests the NodeAgentSet controller end to end, on a local cluster of its own
// (hack/local-cluster.sh, cluster "nodeagentset-e2e", state under .demo/e2e/): a real etcd,
// kube-apiserver, kube-scheduler and kube-controller-manager, with kwok playing the kubelets. The
// controller is built from ./cmd and runs on this machine as its ServiceAccount (impersonated through
// its kubeconfig), so a permission missing from config/rbac fails the suite.
//
// The test files carry the e2e build tag: `go test ./...` and `go vet ./...` skip them.
//
//	make test-e2e                                  (= go test -tags e2e ./test/e2e/ -v -timeout 30m)
//
// Environment: K8S_BIN (bin/k8s/$K8S_VERSION), K8S_VERSION (1.37.1), GO (go), E2E_CLUSTER_NAME
// (nodeagentset-e2e), E2E_STATE_DIR (.demo/e2e), E2E_KEEP_CLUSTER=1 leaves the cluster and the
// controller up after the suite (export KUBECONFIG=.demo/e2e/kubeconfig to look around), and
// E2E_REUSE_CLUSTER=1 starts on the cluster a previous run left instead of a fresh one.
package e2e
