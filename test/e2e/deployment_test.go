//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The Deployment of config/default, run as written (pod_process_test.go): the image's binary, the
// manifest's command, args, env, ports and probes, the ServiceAccount's RBAC through an in-cluster
// configuration, on an API server with the hardened admission plugins (hack/kwok/kwokctl.yaml).
var _ = Describe("The Deployment of config/default", func() {
	It("runs from the image as written: in-cluster config, probes, metrics, and it reconciles a set", func(ctx SpecContext) {
		img := theImage(ctx)

		By("stopping the suite's controller (it releases the lease); it starts again after the spec")
		DeferCleanup(env.startManager)
		env.stopManager()

		By("applying config/default: kwok runs the Deployment's pods, admitted as Pod Security restricted")
		dep, pods := deployConfigDefault(ctx)
		Expect(pods[0].Spec.NodeName).NotTo(Equal(pods[1].Spec.NodeName), "the replicas share a node despite the anti-affinity")
		pod := &pods[0]
		c := &pod.Spec.Containers[0]
		Expect(c.Name).To(Equal("manager"))
		portsFree(c)

		By("running pod " + pod.Name + "'s container")
		p := startPodProcess(ctx, img, pod, c.Name, nil)
		Expect(p.cmd.Args).To(ContainElements("/manager", "--leader-elect", "--metrics-bind-address=:8443",
			"--health-probe-bind-address=:8081", "--memory-limit-bytes=536870912"), "the manifest's command line, $(MEMORY_LIMIT) expanded")
		probeCtx, stopProbes := context.WithCancel(ctx)
		DeferCleanup(stopProbes)
		readiness := pollProbe(probeCtx, "readiness", c.ReadinessProbe, c, "127.0.0.1")
		liveness := pollProbe(probeCtx, "liveness", c.LivenessProbe, c, "127.0.0.1")

		By("the readiness probe passes and the pod's process holds the lease (its hostname is the pod's name)")
		Eventually(func(g Gomega) {
			g.Expect(p.exited()).To(BeFalse(), "the manager exited:\n%s", p.logTail(30))
			ok, _, _ := readiness.counts()
			g.Expect(ok).To(BeNumerically(">", 0), "no readiness probe passed yet")
			var lease coordinationv1.Lease
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: dep.Namespace, Name: leaseName}, &lease)).To(Succeed())
			g.Expect(lease.Spec.HolderIdentity).To(HaveValue(HavePrefix(pod.Name+"_")), "the lease's holder")
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "manager log:\n%s", p.logTail(30))
		checkConfined(p, img)
		Expect(p.logTail(1000)).To(ContainSubstring(`"softMemoryLimit":483183819`), "90%% of limits.memory (512Mi) as the soft memory limit")

		By("it reconciles a set")
		ns := newNamespace(ctx)
		set := createSet(ctx, ns, "in-cluster")
		expectRunningOn(ctx, set, workerNodes(ctx))

		By("its HTTPS metrics endpoint authenticates and authorizes through the API server (metrics-reader)")
		checkMetrics(ctx, ns, c)

		By("the liveness probe passes, as often as the kubelet polls it")
		Eventually(func(g Gomega) {
			ok, _, _ := liveness.counts()
			g.Expect(ok).To(BeNumerically(">", 0))
		}).WithContext(ctx).WithTimeout(time.Duration(c.LivenessProbe.InitialDelaySeconds+c.LivenessProbe.PeriodSeconds) * time.Second).
			Should(Succeed())
		for _, pr := range []*probe{readiness, liveness} {
			ok, failed, lastErr := pr.counts()
			Expect(failed).To(BeZero(), "%s probe %s: %d of %d polls failed, last: %s", pr.name, pr.url, failed, ok+failed, lastErr)
		}
		stopProbes()

		By("SIGTERM ends it within the termination grace period")
		grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
		start := time.Now()
		p.stop(grace)
		Expect(time.Since(start)).To(BeNumerically("<", grace), "the manager did not exit on SIGTERM")
		Expect(p.cmd.ProcessState.ExitCode()).To(BeZero(), "exit code; log:\n%s", p.logTail(20))
	})
})

// checkMetrics reads the manager's /metrics (the container's port "https") with the token of a
// ServiceAccount bound to config/rbac's metrics-reader ClusterRole, and without a token.
func checkMetrics(ctx context.Context, ns string, c *corev1.Container) {
	var port int32
	for _, cp := range c.Ports {
		if cp.Name == "https" {
			port = cp.ContainerPort
		}
	}
	Expect(port).NotTo(BeZero())
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scraper"}}
	Expect(k8s.Create(ctx, sa)).To(Succeed())
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-metrics-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "nodeagentset-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa.Name}},
	}
	Expect(k8s.Create(ctx, binding)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(k8s.Delete(ctx, binding))).To(Succeed()) })
	tr := &authenticationv1.TokenRequest{}
	Expect(k8s.SubResource("token").Create(ctx, sa, tr)).To(Succeed())

	// The manager serves a self-signed certificate (config/default has no cert-manager).
	transport := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // Self-signed.
	httpClient := &http.Client{Timeout: 5 * time.Second, Transport: transport}
	get := func(token string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/metrics", port), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	Eventually(func(g Gomega) {
		code, body, err := get(tr.Status.Token)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusOK), body)
		g.Expect(body).To(ContainSubstring("controller_runtime_reconcile_total"))
	}).WithContext(ctx).WithTimeout(30 * time.Second).Should(Succeed())
	code, body, err := get("")
	Expect(err).NotTo(HaveOccurred())
	Expect(code).To(Equal(http.StatusUnauthorized), "without a token: %s", body)
	// A ServiceAccount without the binding is authenticated, then refused.
	other := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nobody"}}
	Expect(k8s.Create(ctx, other)).To(Succeed())
	otherToken := &authenticationv1.TokenRequest{}
	Expect(k8s.SubResource("token").Create(ctx, other, otherToken)).To(Succeed())
	code, body, err = get(otherToken.Status.Token)
	Expect(err).NotTo(HaveOccurred())
	Expect(code).To(Equal(http.StatusForbidden), "a token without metrics-reader: %s", strings.TrimSpace(body))
}

// checkConfined checks what the kernel says of the running process: the image's user, no capabilities,
// no_new_privs, the image's filesystem as its root, read-only, with the ServiceAccount volume (its hostname
// shows in the lease's holder).
func checkConfined(p *podProcess, img *managerImage) {
	pid := p.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	Expect(err).NotTo(HaveOccurred())
	fields := map[string]string{}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		fields[k] = strings.Join(strings.Fields(v), " ")
	}
	uid, gid, _ := strings.Cut(img.user, ":")
	Expect(fields["Uid"]).To(Equal(strings.Repeat(uid+" ", 3)+uid), "uids")
	Expect(fields["Gid"]).To(Equal(strings.Repeat(gid+" ", 3)+gid), "gids")
	Expect(fields["CapEff"]).To(Equal("0000000000000000"), "effective capabilities")
	Expect(fields["CapPrm"]).To(Equal("0000000000000000"), "permitted capabilities")
	Expect(fields["NoNewPrivs"]).To(Equal("1"), "no_new_privs")
	root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
	Expect(err).NotTo(HaveOccurred())
	Expect(root).To(Equal(img.rootfs), "its root")
	// Its mounts as it sees them (mount point, options): / and the ServiceAccount volume read-only.
	mountinfo, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	Expect(err).NotTo(HaveOccurred())
	mounts := map[string]string{}
	for _, line := range strings.Split(string(mountinfo), "\n") {
		if f := strings.Fields(line); len(f) > 5 {
			mounts[f[4]] = f[5]
		}
	}
	for _, m := range []string{"/", "/var/run/secrets/kubernetes.io/serviceaccount"} {
		Expect(mounts).To(HaveKey(m), "its mounts: %v", mounts)
		Expect(strings.Split(mounts[m], ",")).To(ContainElement("ro"), "mount %s", m)
	}
}
