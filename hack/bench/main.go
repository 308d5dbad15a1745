// Command bench compares the NodeAgentSet controller with the upstream DaemonSet controller (inside
// kube-controller-manager) side by side on one dedicated local kwok cluster. See docs/benchmarks.md.
//
//	go run ./hack/bench --nodes 1000 --pairs 3 --mode equal
//	go run ./hack/bench --smoke
//
// It creates its own cluster (kwokctl, binary runtime, name nodeagentset-bench, state under
// .demo/bench), runs kube-controller-manager itself (only the controllers the comparison needs, with
// the client budget of the mode) and the NodeAgentSet controller (bin built from ./cmd), both with the
// cluster's admin credentials, and deletes the cluster when it is done, also on failure.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

const (
	clusterName    = "nodeagentset-bench"
	image1         = "registry.k8s.io/pause:3.10"
	image2         = "registry.k8s.io/pause:3.10.1"
	kcmControllers = "daemonset,nodelifecycle,serviceaccount,serviceaccount-token,garbagecollector,podgc"
	clkTck         = 100.0
)

type config struct {
	nodes   int
	pairs   int
	mode    string
	idle    time.Duration
	timeout time.Duration
	root    string
	k8sBin  string
	dir     string
	keep    bool
	// skipDS, timeline and nasLogLevel are for experiments on the NodeAgentSet controller alone.
	skipDS      bool
	timeline    bool
	nasLogLevel int
	// kwokWorkers is kwok's podPlayStageParallelism: how many pod transitions (Ready, gone) the
	// simulated kubelets of all nodes carry out at once.
	kwokWorkers int
}

// kwokWorkers is kwok's podPlayStageParallelism for a cluster of n nodes: 4 (kwok's default) per
// 1,000 nodes or part of them. One kwok process plays the kubelet of every node with a fixed pool of
// workers; at its default of 4 it finalizes about 135 pod deletions a second whether the cluster has
// 1,000 or 5,000 nodes (docs/benchmarks.md), so at 5,000 nodes a fixed pool, not the controllers or
// the API server, would set the pace. In a real cluster every node brings its own kubelet: the
// simulated kubelets' capacity grows with the nodes here too.
func kwokWorkersFor(n int) int {
	return 4 * max(1, (n+999)/1000)
}

func main() {
	var c config
	smoke := flag.Bool("smoke", false, "quick run: 50 nodes, 1 pair, 10 s idle")
	flag.IntVar(&c.nodes, "nodes", 1000, "number of kwok nodes")
	flag.IntVar(&c.pairs, "pairs", 3, "number of DaemonSet/NodeAgentSet trial pairs (A B A B ...)")
	flag.StringVar(&c.mode, "mode", "equal", "client budgets: equal (both --kube-api-qps=20 --kube-api-burst=30) or defaults (each its shipped defaults)")
	flag.DurationVar(&c.idle, "idle", 60*time.Second, "idle measurement window")
	flag.DurationVar(&c.timeout, "timeout", 15*time.Minute, "limit for each wait")
	flag.StringVar(&c.k8sBin, "k8s-bin", "", "directory of the Kubernetes binaries (default bin/k8s/$K8S_VERSION)")
	flag.BoolVar(&c.keep, "keep", false, "keep the cluster afterwards (delete it with kwokctl --name "+clusterName+" delete cluster)")
	flag.BoolVar(&c.skipDS, "skip-daemonset", false,
		"experiments: run only the reference and the NodeAgentSet trials, no idle minute (the table has no DaemonSet figures)")
	flag.IntVar(&c.nasLogLevel, "controller-log-level", 0,
		"the NodeAgentSet controller's log verbosity (--zap-log-level); 1 logs every status write, 2 every pod write: see .demo/bench/manager.log")
	flag.IntVar(&c.kwokWorkers, "kwok-workers", 0,
		"kwok's podPlayStageParallelism, the pod transitions the simulated kubelets carry out at once (0: 4 per 1,000 nodes)")
	flag.BoolVar(&c.timeline, "timeline", false,
		"log a census of the pods during each coverage (every 0.5 s, the reference's too) and rollout (every second): old, terminating, new, bound, Ready")
	flag.Parse()
	if *smoke {
		c.nodes, c.pairs, c.idle = 50, 1, 10*time.Second
	}
	if c.kwokWorkers <= 0 {
		c.kwokWorkers = kwokWorkersFor(c.nodes)
	}
	if c.mode != "equal" && c.mode != "defaults" {
		fmt.Fprintln(os.Stderr, "--mode must be equal or defaults")
		os.Exit(2)
	}
	wd, err := os.Getwd()
	if err != nil {
		fatal(err)
	}
	c.root = wd
	if c.k8sBin == "" {
		v := os.Getenv("K8S_VERSION")
		if v == "" {
			v = "1.37.1"
		}
		c.k8sBin = filepath.Join(wd, "bin", "k8s", v)
	}
	c.dir = filepath.Join(wd, ".demo", "bench")

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, c)
	cancel()
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench: error:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench %s] %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// proc is a process this program started.
type proc struct {
	name string
	cmd  *exec.Cmd
}

func (p *proc) stop() {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func start(name, logPath string, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, err
	}
	_ = f.Close()
	return &proc{name: name, cmd: cmd}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c config) kwokctl(args ...string) error {
	cmd := exec.Command(filepath.Join(c.k8sBin, "kwokctl"), append([]string{"--name", clusterName}, args...)...)
	cmd.Env = append(os.Environ(),
		"KWOK_WORKDIR="+filepath.Join(c.dir, "kwok"),
		"PATH="+c.k8sBin+":"+os.Getenv("PATH"),
		"KWOK_KUBECTL_BINARY="+filepath.Join(c.k8sBin, "kubectl"),
		"KWOK_KUBE_VERSION=v"+strings.TrimPrefix(filepath.Base(c.k8sBin), "v"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kwokctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (c config) clusterDir() string { return filepath.Join(c.dir, "kwok", "clusters", clusterName) }

func (c config) deleteCluster() {
	if _, err := os.Stat(c.clusterDir()); err != nil {
		return
	}
	logf("deleting cluster %s", clusterName)
	if err := c.kwokctl("delete", "cluster", "--kubeconfig", filepath.Join(c.dir, "kubeconfig")); err != nil {
		logf("%v", err)
	}
}

func (c config) createCluster() error {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	c.deleteCluster()
	cfg := `apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  bindAddress: 127.0.0.1
  runtime: binary
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - key: kubelet-preferred-address-types
    value: InternalIP
  - key: disable-admission-plugins
    value: TaintNodesByCondition
- name: kube-scheduler
  extraArgs:
  - key: kube-api-qps
    value: "1000"
  - key: kube-api-burst
    value: "1000"
---
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  # kwok's defaults (a KwokConfiguration here replaces them all) except podPlayStageParallelism.
  cidr: 10.0.0.0/24
  manageAllNodes: false
  enableDebuggingHandlers: true
  enableContentionProfiling: false
  enableProfilingHandler: true
  podPlayStageParallelism: ` + strconv.Itoa(c.kwokWorkers) + `
  nodePlayStageParallelism: 4
  nodeLeaseParallelism: 4
  podsOnNodeSyncParallelism: 1
  enablePodsOnNodeSyncListPager: true
  enablePodsOnNodeSyncStreamWatch: false
`
	cfgPath := filepath.Join(c.dir, "kwokctl.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	b := func(n string) string { return filepath.Join(c.k8sBin, n) }
	logf("creating cluster %s (kube-controller-manager disabled: this program runs it; kwok with %d pod workers)", clusterName, c.kwokWorkers)
	return c.kwokctl("--config", cfgPath, "create", "cluster", "--runtime", "binary",
		"--kube-apiserver-binary", b("kube-apiserver"), "--etcd-binary", b("etcd"),
		"--kube-scheduler-binary", b("kube-scheduler"), "--kube-controller-manager-binary", b("kube-controller-manager"),
		"--kwok-controller-binary", b("kwok"), "--disable", "kube-controller-manager",
		"--kubeconfig", filepath.Join(c.dir, "kubeconfig"), "--wait", "120s", "--timeout", "120s")
}

// controllers holds the two controller processes and their metrics endpoints.
type controllers struct {
	kcm, nas   *proc
	kcmMetrics string
	nasMetrics string
	nasPprof   string
	httpc      *http.Client
}

func (c config) startControllers(ctx context.Context) (*controllers, error) {
	cd := c.clusterDir()
	kcmPort, err := freePort()
	if err != nil {
		return nil, err
	}
	kcmArgs := []string{
		"--node-monitor-period=25s", "--node-monitor-grace-period=3m20s",
		"--kubeconfig=" + filepath.Join(cd, "kubeconfig.yaml"),
		"--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(kcmPort),
		"--root-ca-file=" + filepath.Join(cd, "pki", "ca.crt"),
		"--service-account-private-key-file=" + filepath.Join(cd, "pki", "admin.key"),
		"--controllers=" + kcmControllers, "--leader-elect=false",
	}
	nasMetricsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	pprofPort, err := freePort()
	if err != nil {
		return nil, err
	}
	nasArgs := []string{
		"--kubeconfig=" + filepath.Join(c.dir, "kubeconfig"),
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(nasMetricsPort), "--metrics-secure=false",
		"--pprof-bind-address=127.0.0.1:" + strconv.Itoa(pprofPort),
		"--health-probe-bind-address=127.0.0.1:0",
	}
	if c.nasLogLevel > 0 {
		nasArgs = append(nasArgs, "--zap-log-level="+strconv.Itoa(c.nasLogLevel))
	}
	if c.mode == "equal" {
		kcmArgs = append(kcmArgs, "--kube-api-qps=20", "--kube-api-burst=30")
		nasArgs = append(nasArgs, "--kube-api-qps=20", "--kube-api-burst=30")
	}
	ctrls := &controllers{
		kcmMetrics: fmt.Sprintf("https://127.0.0.1:%d/metrics", kcmPort),
		nasMetrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", nasMetricsPort),
		nasPprof:   fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", pprofPort),
		httpc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kcm's self-signed serving cert on loopback
		}},
	}
	logf("starting kube-controller-manager (%s)", strings.Join(kcmArgs[len(kcmArgs)-3:], " "))
	ctrls.kcm, err = start("kube-controller-manager", filepath.Join(c.dir, "kube-controller-manager.log"),
		filepath.Join(c.k8sBin, "kube-controller-manager"), kcmArgs...)
	if err != nil {
		return ctrls, err
	}
	logf("starting the NodeAgentSet controller (%s)", strings.Join(nasArgs[4:], " "))
	ctrls.nas, err = start("manager", filepath.Join(c.dir, "manager.log"), filepath.Join(c.dir, "manager"), nasArgs...)
	if err != nil {
		return ctrls, err
	}
	for _, u := range []string{ctrls.kcmMetrics, ctrls.nasMetrics} {
		if err := poll(ctx, 60*time.Second, func() bool { _, _, e := ctrls.scrape(u); return e == nil }); err != nil {
			return ctrls, fmt.Errorf("metrics endpoint %s: %w", u, err)
		}
	}
	return ctrls, nil
}

func (ct *controllers) stop() {
	if ct == nil {
		return
	}
	ct.nas.stop()
	ct.kcm.stop()
}

// diagSeries are the NodeAgentSet controller's own series the bench logs per phase: its passes and
// how long its reads waited for the cache to show its writes.
var diagSeries = []string{
	"controller_runtime_reconcile_time_seconds_sum", "controller_runtime_reconcile_time_seconds_count",
	"controller_runtime_client_consistency_wait_duration_seconds_sum",
}

// scrape sums rest_client_requests_total by method, and each of diagSeries over its labels.
func (ct *controllers) scrape(url string) (req, diag map[string]float64, err error) {
	resp, err := ct.httpc.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	req, diag = map[string]float64{}, map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		j := strings.LastIndex(line, " ")
		if j < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(line[j+1:], 64)
		if err != nil {
			continue
		}
		name := line[:j]
		if k := strings.IndexByte(name, '{'); k >= 0 {
			name = name[:k]
		}
		if slices.Contains(diagSeries, name) {
			diag[name] += v
			continue
		}
		if name != "rest_client_requests_total" {
			continue
		}
		i := strings.Index(line, `method="`)
		if i < 0 {
			continue
		}
		m := line[i+len(`method="`):]
		req[m[:strings.Index(m, `"`)]] += v
	}
	return req, diag, sc.Err()
}

// procStats: CPU seconds (user+system) and peak RSS (VmHWM, MiB) of a pid.
func procStats(pid int) (cpu, hwmMiB float64) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
		if len(f) > 12 {
			u, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			cpu = (u + st) / clkTck
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				f := strings.Fields(l)
				if len(f) >= 2 {
					kb, _ := strconv.ParseFloat(f[1], 64)
					hwmMiB = kb / 1024
				}
			}
		}
	}
	return cpu, hwmMiB
}

type snapshot struct {
	req  map[string]float64
	diag map[string]float64
	cpu  float64
	hwm  float64
}

func (ct *controllers) snap(kind string) (snapshot, error) {
	p, url := ct.kcm, ct.kcmMetrics
	if kind == kindNAS {
		p, url = ct.nas, ct.nasMetrics
	}
	r, d, err := ct.scrape(url)
	if err != nil {
		return snapshot{}, err
	}
	cpu, hwm := procStats(p.cmd.Process.Pid)
	return snapshot{req: r, diag: d, cpu: cpu, hwm: hwm}, nil
}

// passes describes the NodeAgentSet controller's passes between two snapshots: how many, the seconds
// they took, and the seconds its reads waited for the cache to show its own writes.
func passes(a, b snapshot) string {
	d := func(k string) float64 { return b.diag[k] - a.diag[k] }
	return fmt.Sprintf("%.0f passes in %.1fs, %.1fs of them waiting for the cache",
		d("controller_runtime_reconcile_time_seconds_count"), d("controller_runtime_reconcile_time_seconds_sum"),
		d("controller_runtime_client_consistency_wait_duration_seconds_sum"))
}

func delta(a, b snapshot) map[string]float64 {
	d := map[string]float64{}
	for k, v := range b.req {
		if x := v - a.req[k]; x != 0 {
			d[k] = x
		}
	}
	return d
}

func writes(d map[string]float64) float64 {
	return d["POST"] + d["PUT"] + d["PATCH"] + d["DELETE"]
}

func poll(ctx context.Context, timeout time.Duration, cond func() bool) error {
	return pollEvery(ctx, timeout, 100*time.Millisecond, cond)
}

func pollEvery(ctx context.Context, timeout, interval time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
	return nil
}

const (
	kindDS  = "DaemonSet"
	kindNAS = "NodeAgentSet"
)

// tracker follows the pods of one namespace through an informer and keeps, per node, the pods on it.
type tracker struct {
	mu         sync.Mutex
	ns         string
	n          int
	rollout    bool
	pods       map[types.UID]*corev1.Pod
	readyOn    map[string]int // node -> ready, non-terminating pods
	onNode     map[string]int // node -> pods bound to it (terminating included)
	maxOnNode  int
	maxUnavail int
	allCreated time.Time // when the n-th pod of the coverage phase showed up
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (t *tracker) reset(ns string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ns, t.n, t.rollout = ns, n, false
	t.pods = map[types.UID]*corev1.Pod{}
	t.readyOn = map[string]int{}
	t.onNode = map[string]int{}
	t.maxOnNode, t.maxUnavail = 0, 0
	t.allCreated = time.Time{}
}

func (t *tracker) apply(old, cur *corev1.Pod) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := cur
	if p == nil {
		p = old
	}
	if p == nil || p.Namespace != t.ns {
		return
	}
	if prev, ok := t.pods[p.UID]; ok {
		if prev.Spec.NodeName != "" {
			t.onNode[prev.Spec.NodeName]--
			if podReady(prev) {
				t.readyOn[prev.Spec.NodeName]--
				if t.readyOn[prev.Spec.NodeName] == 0 {
					delete(t.readyOn, prev.Spec.NodeName)
				}
			}
		}
		delete(t.pods, p.UID)
	}
	if cur != nil {
		t.pods[cur.UID] = cur
		if !t.rollout && t.allCreated.IsZero() && len(t.pods) == t.n {
			t.allCreated = time.Now()
		}
		if nn := cur.Spec.NodeName; nn != "" {
			t.onNode[nn]++
			if t.onNode[nn] > t.maxOnNode {
				t.maxOnNode = t.onNode[nn]
			}
			if podReady(cur) {
				t.readyOn[nn]++
			}
		}
	}
	if t.rollout {
		if u := t.n - len(t.readyOn); u > t.maxUnavail {
			t.maxUnavail = u
		}
	}
}

func (t *tracker) startRollout() {
	t.mu.Lock()
	t.rollout = true
	t.mu.Unlock()
}

// done: exactly one pod per node, every one Ready with the given image, n nodes.
func (t *tracker) done(img string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pods) != t.n || len(t.readyOn) != t.n {
		return false
	}
	for _, p := range t.pods {
		if p.Spec.NodeName == "" || !podReady(p) || len(p.Spec.Containers) == 0 || p.Spec.Containers[0].Image != img {
			return false
		}
	}
	return true
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pods)
}

// names lists the tracked pods' names.
func (t *tracker) names() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.pods))
	for _, p := range t.pods {
		out = append(out, p.Name)
	}
	return out
}

// census counts the tracked pods of a rollout to image img.
func (t *tracker) census(img string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var old, terminating, fresh, bound, ready int
	for _, p := range t.pods {
		switch {
		case p.DeletionTimestamp != nil:
			terminating++
		case len(p.Spec.Containers) > 0 && p.Spec.Containers[0].Image == img:
			fresh++
			if p.Spec.NodeName != "" {
				bound++
			}
			if podReady(p) {
				ready++
			}
		default:
			old++
		}
	}
	return fmt.Sprintf("old %d, terminating %d, new %d (bound %d, Ready %d), nodes without a Ready pod %d",
		old, terminating, fresh, bound, ready, t.n-len(t.readyOn))
}

// logTimeline logs the census of the tracked pods against image img every period when --timeline
// is set, until the returned function is first called. label names the phase: "DaemonSet rollout".
func (b *bench) logTimeline(label, img string, period time.Duration, t0 time.Time) func() {
	if !b.c.timeline {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				logf("%s %5.1fs: %s", label, time.Since(t0).Seconds(), b.tr.census(img))
			}
		}
	}()
	return sync.OnceFunc(func() { close(done) })
}

// timelineCoveragePeriod is the census period of --timeline while pods are created and turn Ready:
// coverage at 1,000 nodes takes seconds, not minutes.
const timelineCoveragePeriod = 500 * time.Millisecond

type result struct {
	kind       string
	created    float64 // seconds until every node had a pod (created, not yet bound or Ready)
	cover      float64
	rollout    float64
	maxUnavail int
	maxOnNode  int
	coverReq   map[string]float64
	rolloutReq map[string]float64
	cpu        float64
	hwm        float64
}

type bench struct {
	c    config
	cs   *kubernetes.Clientset
	cl   client.Client
	ct   *controllers
	tr   *tracker
	prof *profiler
	// idleLoad is the cluster's CPU use, in cores, with the nodes heart-beating and no trial running.
	idleLoad float64
}

func (b *bench) ensureNamespace(ctx context.Context, ns string) error {
	_, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// The pods need the default ServiceAccount (kube-controller-manager's serviceaccount controller).
	return poll(ctx, 60*time.Second, func() bool {
		_, e := b.cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return e == nil
	})
}

func template(img string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "bench-agent"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "agent", Image: img,
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}},
		},
	}
}

func (b *bench) create(ctx context.Context, kind, ns string) error {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "bench-agent"}}
	mu := intstr.FromString("10%")
	zero := intstr.FromInt32(0)
	if kind == kindDS {
		ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns}, Spec: appsv1.DaemonSetSpec{
			Selector: sel, Template: template(image1),
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &mu, MaxSurge: &zero}},
		}}
		return b.cl.Create(ctx, ds)
	}
	nas := &v1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns}, Spec: v1alpha1.NodeAgentSetSpec{
		Selector: sel, Template: template(image1),
		UpdateStrategy: v1alpha1.NodeAgentSetUpdateStrategy{Type: v1alpha1.NodeAgentSetUpdateStrategyType("RollingUpdate"),
			RollingUpdate: &v1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: &mu, MaxSurge: &zero}},
	}}
	return b.cl.Create(ctx, nas)
}

func (b *bench) setImage(ctx context.Context, kind, ns, img string) error {
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"agent","image":%q}]}}}}`, img)
	var obj client.Object = &appsv1.DaemonSet{}
	pt := types.StrategicMergePatchType
	if kind == kindNAS {
		obj = &v1alpha1.NodeAgentSet{}
		pt = types.MergePatchType
		patch = fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"agent","image":%q,"resources":{"requests":{"cpu":"10m","memory":"16Mi"}}}]}}}}`, img)
	}
	obj.SetName("agent")
	obj.SetNamespace(ns)
	return b.cl.Patch(ctx, obj, client.RawPatch(pt, []byte(patch)))
}

// statusDone: the object's status reports n nodes desired, current, ready, available and updated, for
// its current generation.
func (b *bench) statusDone(ctx context.Context, kind, ns string) bool {
	n := int32(b.c.nodes)
	key := client.ObjectKey{Namespace: ns, Name: "agent"}
	if kind == kindDS {
		var ds appsv1.DaemonSet
		if b.cl.Get(ctx, key, &ds) != nil {
			return false
		}
		s := ds.Status
		return s.ObservedGeneration == ds.Generation && s.DesiredNumberScheduled == n && s.CurrentNumberScheduled == n &&
			s.NumberReady == n && s.NumberAvailable == n && s.UpdatedNumberScheduled == n && s.NumberMisscheduled == 0
	}
	var nas v1alpha1.NodeAgentSet
	if b.cl.Get(ctx, key, &nas) != nil {
		return false
	}
	s := nas.Status
	return s.ObservedGeneration == nas.Generation && s.DesiredNumberScheduled == n && s.CurrentNumberScheduled == n &&
		s.NumberReady == n && s.NumberAvailable == n && s.UpdatedNumberScheduled == n && s.NumberMisscheduled == 0
}

func (b *bench) waitDone(ctx context.Context, kind, ns, img string) error {
	return poll(ctx, b.c.timeout, func() bool { return b.tr.done(img) && b.statusDone(ctx, kind, ns) })
}

func (b *bench) trial(ctx context.Context, kind string, i int) (result, error) {
	ns := fmt.Sprintf("bench-%s-%d", strings.ToLower(kind), i)
	r := result{kind: kind}
	if err := b.waitClusterQuiet(ctx); err != nil {
		return r, err
	}
	if err := b.ensureNamespace(ctx, ns); err != nil {
		return r, err
	}
	b.tr.reset(ns, b.c.nodes)
	s0, err := b.ct.snap(kind)
	if err != nil {
		return r, err
	}
	stopProfile := func() {}
	if kind == kindNAS {
		stopProfile = b.prof.cpu(ctx, fmt.Sprintf("nodeagentset-%d", i))
	}
	defer func() { stopProfile() }()
	t0 := time.Now()
	if err := b.create(ctx, kind, ns); err != nil {
		return r, err
	}
	stopTimeline := b.logTimeline(kind+" coverage", image1, timelineCoveragePeriod, t0)
	err = b.waitDone(ctx, kind, ns, image1)
	stopTimeline()
	if err != nil {
		return r, fmt.Errorf("%s coverage: %w (%d pods)", kind, err, b.tr.count())
	}
	r.cover = time.Since(t0).Seconds()
	b.tr.mu.Lock()
	r.created = b.tr.allCreated.Sub(t0).Seconds()
	b.tr.mu.Unlock()
	s1, err := b.ct.snap(kind)
	if err != nil {
		return r, err
	}
	b.tr.startRollout()
	t1 := time.Now()
	if err := b.setImage(ctx, kind, ns, image2); err != nil {
		return r, err
	}
	stopTimeline = b.logTimeline(kind+" rollout", image2, time.Second, t1)
	err = b.waitDone(ctx, kind, ns, image2)
	stopTimeline()
	if err != nil {
		return r, fmt.Errorf("%s rollout: %w", kind, err)
	}
	r.rollout = time.Since(t1).Seconds()
	s2, err := b.ct.snap(kind)
	if err != nil {
		return r, err
	}
	if kind == kindNAS {
		stopProfile()
		stopProfile = func() {}
		b.prof.heap(ctx, fmt.Sprintf("nodeagentset-%d", i))
	}
	b.tr.mu.Lock()
	r.maxUnavail, r.maxOnNode = b.tr.maxUnavail, b.tr.maxOnNode
	b.tr.mu.Unlock()
	r.coverReq, r.rolloutReq = delta(s0, s1), delta(s1, s2)
	r.cpu, r.hwm = s2.cpu-s0.cpu, s2.hwm
	logf("%s #%d: coverage %.1fs, rollout %.1fs, max unavailable %d, max pods/node %d, requests %v + %v, cpu %.1fs, peak RSS %.0f MiB",
		kind, i, r.cover, r.rollout, r.maxUnavail, r.maxOnNode, r.coverReq, r.rolloutReq, r.cpu, r.hwm)
	if kind == kindNAS {
		logf("%s #%d: coverage %s; rollout %s", kind, i, passes(s0, s1), passes(s1, s2))
	}
	if err := b.deleteAndWait(ctx, kind, ns); err != nil {
		return r, err
	}
	return r, nil
}

func (b *bench) deleteAndWait(ctx context.Context, kind, ns string) error {
	var obj client.Object = &appsv1.DaemonSet{}
	if kind == kindNAS {
		obj = &v1alpha1.NodeAgentSet{}
	}
	obj.SetName("agent")
	obj.SetNamespace(ns)
	if err := b.cl.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	// The garbage collector would delete the pods at kube-controller-manager's client rate (minutes
	// for 5,000 pods); the bench deletes them itself. Deleting is not measured.
	grace := int64(0)
	if err := b.cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{}); err != nil {
		return err
	}
	// The tracker follows this namespace: no list of thousands of pods every 100 ms.
	if err := poll(ctx, b.c.timeout, func() bool { return b.tr.count() == 0 }); err != nil {
		return fmt.Errorf("waiting for the pods of %s/%s to go: %w", ns, kind, err)
	}
	return b.settle(ctx)
}

// settle waits until neither controller has written for quietPeriod (at most a minute), so that the
// garbage collector's deletes of one trial's pods do not land in the next trial's counts.
func (b *bench) settle(ctx context.Context) error {
	const quietPeriod = 3 * time.Second
	last := map[string]float64{}
	quietSince := time.Now()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		moved := false
		for _, kind := range []string{kindDS, kindNAS} {
			s, err := b.ct.snap(kind)
			if err != nil {
				return err
			}
			if w := writes(s.req); w != last[kind] {
				last[kind], moved = w, true
			}
		}
		if moved {
			quietSince = time.Now()
		} else if time.Since(quietSince) >= quietPeriod {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	logf("controllers still writing a minute after the trial; going on")
	return nil
}

func nodeObject(i int) *corev1.Node {
	name := fmt.Sprintf("worker-%d", i)
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"),
		corev1.ResourcePods: resource.MustParse("110")}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			// The beta os/arch labels too: kube-controller-manager's node lifecycle controller adds
			// them to a node that lacks them, a PATCH per node that would land in the first trial.
			Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
				"kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", "type": "kwok"}},
		// No node.kubernetes.io/not-ready taint (the TaintNodesByCondition admission plugin is off): kwok
		// marks the nodes Ready at once, and lifting 1,000 taints at --kube-api-qps=20 takes minutes.
		Status: corev1.NodeStatus{Capacity: res, Allocatable: res,
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name}},
			NodeInfo:  corev1.NodeSystemInfo{Architecture: "amd64", OperatingSystem: "linux"}},
	}
}

func (b *bench) createNodes(ctx context.Context) error {
	logf("creating %d nodes", b.c.nodes)
	nums := make([]int, 0, b.c.nodes)
	for i := 1; i <= b.c.nodes; i++ {
		nums = append(nums, i)
	}
	if err := inParallel(32, nums, func(i int) error {
		_, err := b.cs.CoreV1().Nodes().Create(ctx, nodeObject(i), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	logf("waiting for %d Ready, untainted nodes", b.c.nodes)
	return pollEvery(ctx, b.c.timeout, time.Second, func() bool {
		l, err := b.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil || len(l.Items) != b.c.nodes {
			return false
		}
		for _, n := range l.Items {
			if len(n.Spec.Taints) > 0 {
				return false
			}
			ready := false
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready = true
				}
			}
			if !ready {
				return false
			}
		}
		return true
	})
}

// waitNodesRegistered waits until the node lifecycle controller has recorded its RegisteredNode
// events: one per node, or until their number has not grown for 10 s (kube-controller-manager's event
// broadcaster queues 1,000 events and drops what does not fit).
func (b *bench) waitNodesRegistered(ctx context.Context) error {
	logf("waiting for kube-controller-manager to register %d nodes", b.c.nodes)
	last, since := -1, time.Now()
	err := pollEvery(ctx, b.c.timeout, 2*time.Second, func() bool {
		l, err := b.cs.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: "reason=RegisteredNode"})
		if err != nil {
			return false
		}
		n := len(l.Items)
		if n != last {
			last, since = n, time.Now()
		}
		// kube-controller-manager's event queue drops what it cannot send (at 5,000 nodes about 1,000
		// events get through), so a count that stops growing for longer than a node monitor period
		// (25 s) is final too.
		return n >= b.c.nodes || (n > 0 && time.Since(since) >= 40*time.Second)
	})
	if err == nil {
		logf("%d RegisteredNode events", last)
	}
	return err
}

func (c config) buildManager() error {
	logf("building the controller (go build ./cmd)")
	cmd := exec.Command("go", "build", "-o", filepath.Join(c.dir, "manager"), "./cmd")
	cmd.Dir = c.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build ./cmd: %w\n%s", err, out)
	}
	return nil
}

func (c config) applyCRD() error {
	cmd := exec.Command(filepath.Join(c.k8sBin, "kubectl"), "--kubeconfig", filepath.Join(c.dir, "kubeconfig"),
		"apply", "--server-side", "-f", filepath.Join(c.root, "config", "crd", "bases"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("applying the CRD: %w\n%s", err, out)
	}
	// kubectl wait fails while the CRD has no conditions yet: retry.
	var out2 []byte
	for range 60 {
		cmd = exec.Command(filepath.Join(c.k8sBin, "kubectl"), "--kubeconfig", filepath.Join(c.dir, "kubeconfig"),
			"wait", "--for=condition=Established", "--timeout=10s", "crd/nodeagentsets.apps.nodeagentset.io")
		if out2, err = cmd.CombinedOutput(); err == nil {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("waiting for the CRD: %w\n%s", err, out2)
}

type idleResult struct {
	req map[string]float64
	cpu float64
}

func (b *bench) idle(ctx context.Context) (map[string]idleResult, error) {
	out := map[string]idleResult{}
	for _, kind := range []string{kindDS, kindNAS} {
		ns := "bench-idle-" + strings.ToLower(kind)
		if err := b.ensureNamespace(ctx, ns); err != nil {
			return nil, err
		}
		b.tr.reset(ns, b.c.nodes)
		if err := b.create(ctx, kind, ns); err != nil {
			return nil, err
		}
		if err := b.waitDone(ctx, kind, ns, image1); err != nil {
			return nil, fmt.Errorf("idle %s: %w", kind, err)
		}
	}
	logf("idle: both objects settled on %d nodes; measuring %s", b.c.nodes, b.c.idle)
	// Let the last status writes land.
	time.Sleep(5 * time.Second)
	s0 := map[string]snapshot{}
	for _, kind := range []string{kindDS, kindNAS} {
		s, err := b.ct.snap(kind)
		if err != nil {
			return nil, err
		}
		s0[kind] = s
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(b.c.idle):
	}
	for _, kind := range []string{kindDS, kindNAS} {
		s, err := b.ct.snap(kind)
		if err != nil {
			return nil, err
		}
		out[kind] = idleResult{req: delta(s0[kind], s), cpu: s.cpu - s0[kind].cpu}
	}
	return out, nil
}

// clients are the bench's own: a high client budget, typed and controller-runtime.
func (c config) clients() (*rest.Config, *kubernetes.Clientset, client.Client, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(c.dir, "kubeconfig"))
	if err != nil {
		return nil, nil, nil, err
	}
	rc.QPS, rc.Burst = 2000, 4000
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, nil, nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, nil, nil, err
	}
	cl, err := client.New(rc, client.Options{Scheme: scheme})
	return rc, cs, cl, err
}

func run(ctx context.Context, c config) (err error) {
	began := time.Now()
	if err := c.buildManager(); err != nil {
		return err
	}
	if !c.keep {
		defer c.deleteCluster()
	}
	if err := c.createCluster(); err != nil {
		return err
	}
	rc, cs, cl, err := c.clients()
	if err != nil {
		return err
	}
	if err := c.applyCRD(); err != nil {
		return err
	}
	ct, err := c.startControllers(ctx)
	defer ct.stop()
	if err != nil {
		return err
	}
	profDir := filepath.Join(c.dir, "profiles")
	if err := os.RemoveAll(profDir); err != nil {
		return err
	}
	if err := os.MkdirAll(profDir, 0o755); err != nil {
		return err
	}
	floorCS, err := newFloorClient(rc)
	if err != nil {
		return err
	}
	b := &bench{c: c, cs: cs, cl: cl, ct: ct, tr: &tracker{},
		prof: &profiler{url: ct.nasPprof, dir: profDir, httpc: &http.Client{}}}
	b.tr.reset("", c.nodes)
	if err := b.createNodes(ctx); err != nil {
		return err
	}
	// kube-controller-manager's node lifecycle controller takes in the new nodes first: it records a
	// RegisteredNode event for each (on its first monitor pass, up to --node-monitor-period later),
	// writes that would otherwise land in the first DaemonSet trial.
	if err := b.waitNodesRegistered(ctx); err != nil {
		return err
	}
	if err := b.settle(ctx); err != nil {
		return err
	}
	if err := b.measureIdleLoad(ctx); err != nil {
		return err
	}

	// One informer on every pod of the cluster: the tracker keeps the trial's namespace.
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p, _ := o.(*corev1.Pod); b.tr.apply(nil, p) },
		UpdateFunc: func(o, n any) { op, _ := o.(*corev1.Pod); np, _ := n.(*corev1.Pod); b.tr.apply(op, np) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			p, _ := o.(*corev1.Pod)
			b.tr.apply(p, nil)
		},
	}); err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	f.Start(stop)
	f.WaitForCacheSync(stop)

	results, floors, err := b.pairs(ctx, floorCS)
	if err != nil {
		return err
	}
	idle := map[string]idleResult{}
	if !c.skipDS {
		if idle, err = b.idle(ctx); err != nil {
			return err
		}
	}
	b.prof.heap(ctx, "after-idle")
	_, dsHWM := procStats(ct.kcm.cmd.Process.Pid)
	_, nasHWM := procStats(ct.nas.cmd.Process.Pid)
	printTable(os.Stdout, c, results, floors, idle, dsHWM, nasHWM, time.Since(began))
	logf("NodeAgentSet profiles: %s (go tool pprof -top %s)", profDir, filepath.Join(profDir, "cpu-nodeagentset-1-*.pb.gz"))
	return checkInvariants(c, results)
}

// pairs runs, c.pairs times, the reference and then a DaemonSet and a NodeAgentSet trial.
func (b *bench) pairs(ctx context.Context, floorCS *kubernetes.Clientset) (map[string][]result, []floorResult, error) {
	results := map[string][]result{}
	floors := make([]floorResult, 0, b.c.pairs)
	for i := 1; i <= b.c.pairs; i++ {
		fl, err := b.floor(ctx, floorCS, i)
		if err != nil {
			return nil, nil, err
		}
		floors = append(floors, fl)
		kinds := []string{kindDS, kindNAS}
		if b.c.skipDS {
			kinds = kinds[1:]
		}
		for _, kind := range kinds {
			r, err := b.trial(ctx, kind, i)
			if err != nil {
				return nil, nil, err
			}
			results[kind] = append(results[kind], r)
		}
	}
	return results, floors, nil
}

// checkInvariants fails the run when a controller broke a rule no figure excuses: more nodes without
// a Ready pod than maxUnavailable allows, or two pods on a node without surge.
func checkInvariants(c config, res map[string][]result) error {
	budget := (c.nodes + 9) / 10
	var errs []error
	for _, kind := range []string{kindDS, kindNAS} {
		for i, r := range res[kind] {
			if r.maxUnavail > budget {
				errs = append(errs, fmt.Errorf("%s #%d: %d nodes without a Ready pod during the rollout, budget %d", kind, i+1, r.maxUnavail, budget))
			}
			if r.maxOnNode > 1 {
				errs = append(errs, fmt.Errorf("%s #%d: %d pods on one node without surge", kind, i+1, r.maxOnNode))
			}
		}
	}
	return errors.Join(errs...)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func printTable(w io.Writer, c config, res map[string][]result, floors []floorResult, idle map[string]idleResult, dsHWM, nasHWM float64, took time.Duration) {
	type row struct {
		name string
		f    func(r result) float64
		max  bool
	}
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	rows := []row{
		{"every node has a pod (created) (s)", func(r result) float64 { return r.created }, false},
		{"coverage (s)", func(r result) float64 { return r.cover }, false},
		{"rollout at 10% (s)", func(r result) float64 { return r.rollout }, false},
		{"max nodes without a Ready pod during rollout (budget " + strconv.Itoa((c.nodes+9)/10) + ")", func(r result) float64 { return float64(r.maxUnavail) }, true},
		{"max pods on one node", func(r result) float64 { return float64(r.maxOnNode) }, true},
		{"coverage: API writes per node", func(r result) float64 { return writes(r.coverReq) / float64(c.nodes) }, false},
		{"rollout: API writes per node", func(r result) float64 { return writes(r.rolloutReq) / float64(c.nodes) }, false},
	}
	for _, m := range methods {
		rows = append(rows, row{"requests " + m + " (coverage+rollout)", func(r result) float64 { return r.coverReq[m] + r.rolloutReq[m] }, false})
	}
	rows = append(rows,
		row{"CPU seconds (trial)", func(r result) float64 { return r.cpu }, false},
		row{"peak RSS (MiB, process lifetime)", func(r result) float64 { return r.hwm }, true},
	)
	fmt.Fprintf(w, "\nNodeAgentSet vs DaemonSet: %d nodes, %d pair(s), mode %s, run took %s\n\n", c.nodes, c.pairs, c.mode, took.Round(time.Second))
	fmt.Fprintf(w, "| metric (median of %d; max where marked) | DaemonSet (kcm) | NodeAgentSet | ratio NAS/DS |\n|---|---:|---:|---:|\n", c.pairs)
	for _, r := range rows {
		var a, b float64
		ai := make([]int, 0, len(res[kindDS]))
		bi := make([]int, 0, len(res[kindNAS]))
		af := make([]float64, 0, len(res[kindDS]))
		bf := make([]float64, 0, len(res[kindNAS]))
		for _, x := range res[kindDS] {
			af = append(af, r.f(x))
			ai = append(ai, int(r.f(x)))
		}
		for _, x := range res[kindNAS] {
			bf = append(bf, r.f(x))
			bi = append(bi, int(r.f(x)))
		}
		name := r.name
		if r.max {
			a, b = float64(maxInt(ai)), float64(maxInt(bi))
			name += " (max)"
		} else {
			a, b = median(af), median(bf)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, num(a), num(b), ratio(b, a))
	}
	for _, m := range append([]string{"total"}, methods...) {
		get := func(k string) float64 {
			if m == "total" {
				t := 0.0
				for _, v := range idle[k].req {
					t += v
				}
				return t
			}
			return idle[k].req[m]
		}
		a, b := get(kindDS), get(kindNAS)
		fmt.Fprintf(w, "| idle %s: requests %s | %s | %s | %s |\n", c.idle, m, num(a), num(b), ratio(b, a))
	}
	a, b := writes(idle[kindDS].req), writes(idle[kindNAS].req)
	fmt.Fprintf(w, "| idle %s: writes | %s | %s | %s |\n", c.idle, num(a), num(b), ratio(b, a))
	fmt.Fprintf(w, "| idle %s: CPU seconds | %s | %s | %s |\n", c.idle, num(idle[kindDS].cpu), num(idle[kindNAS].cpu), ratio(idle[kindNAS].cpu, idle[kindDS].cpu))
	fmt.Fprintf(w, "| peak RSS at the end (MiB) | %s | %s | %s |\n", num(dsHWM), num(nasHWM), ratio(nasHWM, dsHWM))
	printFloor(w, c, res, floors)
	fmt.Fprintln(w)
	for _, kind := range []string{kindDS, kindNAS} {
		for i, r := range res[kind] {
			fmt.Fprintf(w, "- %s #%d: every node has a pod %.1f s, coverage %.1f s, rollout %.1f s, max unavailable %d, max pods/node %d, writes %.0f + %.0f\n",
				kind, i+1, r.created, r.cover, r.rollout, r.maxUnavail, r.maxOnNode, writes(r.coverReq), writes(r.rolloutReq))
		}
	}
}

func num(x float64) string {
	if x == float64(int64(x)) {
		return strconv.FormatInt(int64(x), 10)
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

func ratio(b, a float64) string {
	if a == 0 {
		if b == 0 {
			return "-"
		}
		return "inf"
	}
	return strconv.FormatFloat(b/a, 'f', 2, 64)
}
