//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

const (
	workers = 5
	// leaseName is the controller's leader election lease (cmd/main.go).
	leaseName = "nodeagentset.apps.nodeagentset.io"
)

// k8s is the suite's client: cluster admin, as the tests play the users and the operators.
var k8s client.WithWatch

// environment is the cluster and the controller the suite runs against.
type environment struct {
	root        string // the repository.
	k8sBin      string // kube-apiserver, kubectl, kwokctl, ...
	k8sVersion  string
	stateDir    string // the cluster's kubeconfig, kwok work dir, the controller's binary and log.
	clusterName string
	kubeconfig  string
	restConfig  *rest.Config // cluster admin.

	saNamespace, saName string
	managerBinary       string
	managerLog          string
	// otherLogs are the logs of the other manager processes the specs run (the Deployment's replicas):
	// AfterSuite checks them like the controller's.
	otherLogs []string

	mu      sync.Mutex
	manager *managerProcess

	gcProbeStart time.Time
	gcReady      atomic.Bool
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func newEnvironment() *environment {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	Expect(filepath.Join(root, "go.mod")).To(BeAnExistingFile())
	version := getenv("K8S_VERSION", "1.37.1")
	e := &environment{
		root:        root,
		k8sVersion:  version,
		k8sBin:      getenv("K8S_BIN", filepath.Join(root, "bin", "k8s", version)),
		stateDir:    getenv("E2E_STATE_DIR", filepath.Join(root, ".demo", "e2e")),
		clusterName: getenv("E2E_CLUSTER_NAME", "nodeagentset-e2e"),
	}
	e.kubeconfig = filepath.Join(e.stateDir, "kubeconfig")
	e.managerLog = filepath.Join(e.stateDir, "manager.log")
	Expect(os.MkdirAll(e.stateDir, 0o755)).To(Succeed())
	return e
}

// start brings up the cluster, installs the CRD and the controller's RBAC, and starts the controller.
func (e *environment) start(ctx context.Context) {
	By("starting the local cluster " + e.clusterName)
	e.killStrayPodProcesses()
	// The logs of an earlier run: the controller's log goes on across a spec's stop and start.
	Expect(os.RemoveAll(e.managerLog)).To(Succeed())
	Expect(os.RemoveAll(filepath.Join(e.stateDir, "pods"))).To(Succeed())
	if os.Getenv("E2E_REUSE_CLUSTER") == "" {
		e.localCluster(ctx, "down")
	}
	DeferCleanup(func(ctx SpecContext) {
		if os.Getenv("E2E_KEEP_CLUSTER") != "" {
			fmt.Fprintf(GinkgoWriter, "E2E_KEEP_CLUSTER: the cluster stays up: export KUBECONFIG=%s\n", e.kubeconfig)
			return
		}
		e.stopManager()
		e.localCluster(ctx, "down")
	}, NodeTimeout(2*time.Minute))
	e.localCluster(ctx, "up", fmt.Sprint(workers))

	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	cfg.QPS, cfg.Burst = 200, 400
	e.restConfig = cfg
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(nasv1alpha1.AddToScheme(scheme))
	k8s, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	By("building the controller")
	e.managerBinary = filepath.Join(e.stateDir, "manager")
	e.run(ctx, "", getenv("GO", "go"), "build", "-o", e.managerBinary, "./cmd")

	By("installing the CRD")
	e.kubectl(ctx, "", "apply", "--server-side", "--force-conflicts", "-k", filepath.Join(e.root, "config", "crd"))
	Eventually(func(ctx context.Context) error {
		return k8s.List(ctx, &nasv1alpha1.NodeAgentSetList{})
	}).WithContext(ctx).Should(Succeed())

	e.startGarbageCollectorProbe(ctx)

	By("installing the controller's Namespace, ServiceAccount and RBAC from config/default")
	e.installRBAC(ctx)

	By(fmt.Sprintf("starting the controller as system:serviceaccount:%s:%s", e.saNamespace, e.saName))
	e.startManager(ctx)
}

// kube-controller-manager's garbage collector learns about a new resource (the CRD just installed)
// through discovery, every 30 s: until then it does not act on the deletion of a NodeAgentSet. The
// probe is a ConfigMap owned by a NodeAgentSet deleted at once: it is gone once the garbage collector
// handles NodeAgentSets. The specs that delete sets wait for it (waitForGarbageCollector), so they
// measure the garbage collector, not its discovery period, whatever order the specs run in.
const gcProbeNamespace = "e2e-gc-probe"

func (e *environment) startGarbageCollectorProbe(ctx context.Context) {
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: gcProbeNamespace}})).To(Succeed())
	owner := newSet(gcProbeNamespace, "gc-probe", withNodeSelector("e2e.nodeagentset.io/none", "none"))
	Expect(k8s.Create(ctx, owner)).To(Succeed())
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Namespace: gcProbeNamespace, Name: "gc-probe",
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: nasv1alpha1.GroupVersion.String(), Kind: "NodeAgentSet", Name: owner.Name, UID: owner.UID,
		}},
	}}
	Expect(k8s.Create(ctx, probe)).To(Succeed())
	Expect(k8s.Delete(ctx, owner)).To(Succeed())
	e.gcProbeStart = time.Now()
}

// waitForGarbageCollector waits until the garbage collector has removed the probe.
func (e *environment) waitForGarbageCollector(ctx context.Context) {
	if e.gcReady.Load() {
		return
	}
	EventuallyWithOffset(1, func(ctx context.Context) bool {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: gcProbeNamespace, Name: "gc-probe"}, &corev1.ConfigMap{})
		return apierrors.IsNotFound(err)
	}).WithContext(ctx).Should(BeTrue(), "the garbage collector does not handle NodeAgentSets")
	fmt.Fprintf(GinkgoWriter, "the garbage collector handles NodeAgentSets %s after the CRD was installed\n", time.Since(e.gcProbeStart).Round(time.Second))
	e.gcReady.Store(true)
}

// run runs a command in the repository and returns its stdout; its stderr goes to the GinkgoWriter.
// A failure fails the spec.
func (e *environment) run(ctx context.Context, stdin string, name string, args ...string) string {
	out, err := e.tryRun(ctx, stdin, nil, name, args...)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "%s %s", name, strings.Join(args, " "))
	return out
}

func (e *environment) tryRun(ctx context.Context, stdin string, extraEnv []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = e.root
	cmd.Env = append(os.Environ(), extraEnv...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(&stderr, GinkgoWriter)
	fmt.Fprintf(GinkgoWriter, "$ %s %s\n", filepath.Base(name), strings.Join(args, " "))
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%w: %s%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), err
}

// kubectl runs our kubectl (the one on PATH may be too old for the server) as cluster admin.
func (e *environment) kubectl(ctx context.Context, stdin string, args ...string) string {
	out, err := e.tryKubectl(ctx, stdin, args...)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return out
}

func (e *environment) tryKubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	return e.tryRun(ctx, stdin, nil, filepath.Join(e.k8sBin, "kubectl"), append([]string{"--kubeconfig", e.kubeconfig}, args...)...)
}

func (e *environment) clusterEnv() []string {
	return []string{
		"CLUSTER_NAME=" + e.clusterName,
		"DEMO_DIR=" + e.stateDir,
		"K8S_BIN=" + e.k8sBin,
		"K8S_VERSION=" + e.k8sVersion,
	}
}

func (e *environment) localCluster(ctx context.Context, args ...string) {
	_, err := e.tryRun(ctx, "", e.clusterEnv(), filepath.Join(e.root, "hack", "local-cluster.sh"), args...)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
}

// kwokWorkDir is kwokctl's work directory (KWOK_WORKDIR), as hack/local-cluster.sh sets it.
func (e *environment) kwokWorkDir() string { return filepath.Join(e.stateDir, "kwok") }

// clusterDir is the directory kwokctl keeps the suite's cluster in: its config, pid files and logs.
func (e *environment) clusterDir() string {
	return filepath.Join(e.kwokWorkDir(), "clusters", e.clusterName)
}

// kwokctl runs kwokctl on the suite's cluster, the way hack/local-cluster.sh does.
func (e *environment) kwokctl(ctx context.Context, args ...string) {
	extra := []string{
		"KWOK_WORKDIR=" + e.kwokWorkDir(),
		"KWOK_KUBECTL_BINARY=" + filepath.Join(e.k8sBin, "kubectl"),
		"PATH=" + e.k8sBin + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	_, err := e.tryRun(ctx, "", extra, filepath.Join(e.k8sBin, "kwokctl"), append([]string{"--name", e.clusterName}, args...)...)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
}

// rbacKinds are the objects of config/default the controller needs when it runs outside the cluster:
// its Deployment, Service and PodDisruptionBudget are left out.
var rbacKinds = map[string]bool{
	"Namespace": true, "ServiceAccount": true, "Role": true, "RoleBinding": true, "ClusterRole": true, "ClusterRoleBinding": true,
}

// installRBAC applies the Namespace, ServiceAccount and RBAC objects that config/default renders, and
// remembers the ServiceAccount.
func (e *environment) installRBAC(ctx context.Context) {
	rendered := e.kubectl(ctx, "", "kustomize", filepath.Join(e.root, "config", "default"))
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(rendered), 4096)
	var items []map[string]any
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		Expect(err).NotTo(HaveOccurred())
		kind, _ := obj["kind"].(string)
		if !rbacKinds[kind] {
			continue
		}
		items = append(items, obj)
		if kind == "ServiceAccount" {
			meta, _ := obj["metadata"].(map[string]any)
			e.saName, _ = meta["name"].(string)
			e.saNamespace, _ = meta["namespace"].(string)
		}
	}
	Expect(e.saName).NotTo(BeEmpty(), "config/default renders no ServiceAccount")
	Expect(e.saNamespace).NotTo(BeEmpty())
	list, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	Expect(err).NotTo(HaveOccurred())
	e.kubectl(ctx, string(list), "apply", "--server-side", "--force-conflicts", "-f", "-")
}

// startManager runs the controller with a kubeconfig that impersonates its ServiceAccount, and waits
// until it answers /readyz and holds its leader lease. A spec that stops it (stopManager) starts it
// again: its log goes on in the same file.
func (e *environment) startManager(ctx context.Context) {
	p := e.launchManager(e.managerLog, "--zap-log-level", "debug")
	e.mu.Lock()
	e.manager = p
	e.mu.Unlock()

	Eventually(func(g Gomega) {
		g.Expect(p.exited()).To(BeFalse(), "the controller exited:\n%s", e.managerLogTail(30))
		resp, err := http.Get("http://" + p.probeAddr + "/readyz")
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	}).WithContext(ctx).Should(Succeed())
	// Leader election through the Role of config/rbac: the controller starts its workers once it
	// holds the lease.
	Eventually(func(g Gomega) {
		g.Expect(p.exited()).To(BeFalse(), "the controller exited:\n%s", e.managerLogTail(30))
		var lease coordinationv1.Lease
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: e.saNamespace, Name: leaseName}, &lease)).To(Succeed())
		g.Expect(lease.Spec.HolderIdentity).NotTo(BeNil())
		g.Expect(p.logContains("Starting workers")).To(BeTrue())
	}).WithContext(ctx).Should(Succeed())
}

// managerProcess is one controller process of the suite's build.
type managerProcess struct {
	cmd       *exec.Cmd
	done      chan struct{}
	log       string
	logStart  int64 // the length of the log when the process started: its own lines come after.
	probeAddr string
}

// launchManager starts the controller binary as its ServiceAccount (impersonation), with leader
// election and the extra flags, its output appended to log, and returns without waiting.
func (e *environment) launchManager(log string, extra ...string) *managerProcess {
	kc, err := clientcmd.LoadFromFile(e.kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	user := kc.Contexts[kc.CurrentContext].AuthInfo
	kc.AuthInfos[user].Impersonate = fmt.Sprintf("system:serviceaccount:%s:%s", e.saNamespace, e.saName)
	managerKubeconfig := filepath.Join(e.stateDir, "manager.kubeconfig")
	Expect(clientcmd.WriteToFile(*kc, managerKubeconfig)).To(Succeed())

	p := &managerProcess{log: log, probeAddr: freeLocalAddr(), done: make(chan struct{})}
	logFile, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	Expect(err).NotTo(HaveOccurred())
	p.logStart, err = logFile.Seek(0, io.SeekEnd)
	Expect(err).NotTo(HaveOccurred())
	p.cmd = exec.Command(e.managerBinary, append([]string{
		"--kubeconfig", managerKubeconfig,
		"--leader-elect", "--leader-election-namespace", e.saNamespace,
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", p.probeAddr,
	}, extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	// The controller dies with the test binary, even when that is killed.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	Expect(p.cmd.Start()).To(Succeed())
	go func() {
		_ = p.cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p
}

func (p *managerProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logContains says whether the process's own part of its log has s.
func (p *managerProcess) logContains(s string) bool {
	data, err := os.ReadFile(p.log)
	Expect(err).NotTo(HaveOccurred())
	return strings.Contains(string(data[min(p.logStart, int64(len(data))):]), s)
}

// stop sends SIGTERM (the controller gives up its lease) and SIGKILL after grace; it returns once the
// process is gone.
func (p *managerProcess) stop(grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func freeLocalAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

func (e *environment) managerExited() bool {
	e.mu.Lock()
	p := e.manager
	e.mu.Unlock()
	return p != nil && p.exited()
}

// stopManager stops the controller: SIGTERM (it gives up its lease), SIGKILL after 20 s. Idempotent.
// A stopped controller has not exited (managerExited): a spec that stops it starts it again.
func (e *environment) stopManager() {
	e.mu.Lock()
	p := e.manager
	e.mu.Unlock()
	if p == nil || p.exited() {
		return
	}
	p.stop(20 * time.Second)
	e.mu.Lock()
	e.manager = nil
	e.mu.Unlock()
}

func (e *environment) managerLogTail(n int) string {
	data, err := os.ReadFile(e.managerLog)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var (
	forbidden = regexp.MustCompile(`(?i)forbidden`)
	// namespaceTerminating is the one refusal that is not about permissions: the NamespaceLifecycle
	// admission plugin refuses new objects in a namespace being deleted (every spec deletes its own).
	namespaceTerminating = regexp.MustCompile(`unable to create new content in namespace \S+ because it is being terminated`)
)

// checkManagerLog fails when a request of the controller (or of another manager process a spec ran)
// was refused (RBAC: "... is forbidden: User "system:serviceaccount:..." cannot ...") or it panicked.
func (e *environment) checkManagerLog() {
	for _, log := range append([]string{e.managerLog}, e.otherLogs...) {
		checkLog(log, nil)
	}
}

// checkLog fails on a refused request or a panic in the log at path; a refused request for which
// excused is true is not counted (nil: none is).
func checkLog(path string, excused func(line string) bool) {
	f, err := os.Open(path)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = f.Close() }()
	var refused, panics []string
	errorLines := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case forbidden.MatchString(line) && !namespaceTerminating.MatchString(line) && (excused == nil || !excused(line)):
			refused = append(refused, line)
		case strings.Contains(line, "panic"):
			panics = append(panics, line)
		case strings.Contains(line, `"level":"error"`):
			errorLines++
		}
	}
	Expect(sc.Err()).NotTo(HaveOccurred())
	fmt.Fprintf(GinkgoWriter, "controller log %s: %d error lines besides the ones below\n", path, errorLines)
	if len(refused) > 0 {
		Fail(fmt.Sprintf("the API server refused %d requests of the controller (a permission missing from config/rbac?) in %s, first ones:\n%s",
			len(refused), path, strings.Join(refused[:min(len(refused), 5)], "\n")))
	}
	if len(panics) > 0 {
		Fail(fmt.Sprintf("the controller panicked (%s):\n%s", path, strings.Join(panics[:min(len(panics), 5)], "\n")))
	}
}
