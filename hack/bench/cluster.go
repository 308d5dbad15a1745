package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

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
	if err := nasv1alpha1.AddToScheme(scheme); err != nil {
		return nil, nil, nil, err
	}
	cl, err := client.New(rc, client.Options{Scheme: scheme})
	return rc, cs, cl, err
}
