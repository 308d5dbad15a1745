//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The suite's cluster as processes: its components' logs, pid files and kwokctl, for the specs that
// stop or restart a component (the chaos spec) or need kwok afresh (expectDead).

// copyClusterLogs copies the local cluster's component logs (kwok-controller, kube-apiserver, ...) into
// dir, for a failed run to be read after the cluster has moved on.
func copyClusterLogs(dir string) {
	src := filepath.Join(env.clusterDir(), "logs")
	entries, err := os.ReadDir(src)
	if err != nil {
		GinkgoWriter.Printf("no cluster logs to keep: %v\n", err)
		return
	}
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if data, err := os.ReadFile(filepath.Join(src, e.Name())); err == nil {
			Expect(os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644)).To(Succeed())
		}
	}
	GinkgoWriter.Printf("the cluster's logs are in %s\n", dir)
}

// killComponent SIGKILLs a component of the cluster (its pid from kwokctl's pid file; SIGTERM may take
// a minute to drain) and waits until the process is gone: kwokctl takes a process that still exists
// (not yet reaped) for a running component.
func killComponent(component string) {
	data, err := os.ReadFile(filepath.Join(env.clusterDir(), "pids", component+".pid"))
	Expect(err).NotTo(HaveOccurred())
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	Expect(err).NotTo(HaveOccurred())
	Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
	Eventually(func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return os.IsNotExist(err)
	}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(BeTrue(), "%s (pid %d) is still there", component, pid)
}

// startComponents has kwokctl start whatever of the cluster is not running (on the same etcd data and
// ports), within startCtx.
func startComponents(startCtx context.Context) {
	env.kwokctl(startCtx, "start", "cluster")
}

// startContext is a context of two minutes, whatever ctx says, for starting components and the waits
// that follow.
func startContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
}

// restartKwok SIGKILLs kwok-controller and has kwokctl start it again. expectDead restarts a kwok that
// ignores node Leases (one start in eight: see expectDead); the chaos spec's cleanup restarts the kwok
// its faults went through. The nodes whose Lease is deadHolder's stay dead.
func restartKwok(ctx context.Context) {
	killComponent("kwok-controller")
	// The new kwok-controller has another identity and takes a node over only once the old one's Lease
	// has expired: 200 s on this cluster, during which nothing plays the nodes' pods (the next spec's
	// pods stayed Pending or not Ready). The old holder is dead: its Leases are expired here, as time
	// would, and the new one takes every node over on its first pass.
	var leases coordinationv1.LeaseList
	Expect(k8s.List(ctx, &leases, client.InNamespace(corev1.NamespaceNodeLease))).To(Succeed())
	old := map[string]bool{}
	for _, l := range leases.Items {
		if h := ptr.Deref(l.Spec.HolderIdentity, ""); h != "" && h != deadHolder {
			old[h] = true
			updateLease(ctx, l.Name, func(l *coordinationv1.Lease) {
				l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now().Add(-time.Duration(ptr.Deref(l.Spec.LeaseDurationSeconds, 200)+1) * time.Second)))
			})
		}
	}
	startCtx, cancel := startContext(ctx)
	defer cancel()
	startComponents(startCtx)
	Eventually(func(g Gomega) {
		var nodes corev1.NodeList
		g.Expect(k8s.List(ctx, &nodes)).To(Succeed())
		for _, n := range nodes.Items {
			var l coordinationv1.Lease
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: corev1.NamespaceNodeLease, Name: n.Name}, &l)).To(Succeed())
			g.Expect(old).NotTo(HaveKey(ptr.Deref(l.Spec.HolderIdentity, "")), "the lease of %s is still the old kwok's", n.Name)
		}
	}).WithContext(startCtx).Should(Succeed())
}

// kwokHolder is the identity of the kwok-controller running now: the holder of the node Lease renewed
// last, deadHolder's aside.
func kwokHolder(ctx context.Context) string {
	GinkgoHelper()
	var holder string
	Eventually(func(g Gomega) {
		var leases coordinationv1.LeaseList
		g.Expect(k8s.List(ctx, &leases, client.InNamespace(corev1.NamespaceNodeLease))).To(Succeed())
		var last time.Time
		holder = ""
		for _, l := range leases.Items {
			h := ptr.Deref(l.Spec.HolderIdentity, "")
			if h != "" && h != deadHolder && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(last) {
				holder, last = h, l.Spec.RenewTime.Time
			}
		}
		g.Expect(holder).NotTo(BeEmpty(), "a node Lease held by kwok")
	}).WithContext(ctx).Should(Succeed())
	return holder
}
