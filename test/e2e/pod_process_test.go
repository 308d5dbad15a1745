//go:build e2e

package e2e

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeagentset/nodeagentset/hack/image/ociimage"
)

// This file runs the manager the way a kubelet runs the container of config/default's Deployment, as
// closely as a machine without a container runtime allows (docs/design/e2e-deployment.md):
//
//   - the binary and the whole filesystem come out of the image `make image` builds (hack/image), and the
//     process is chrooted into that filesystem, mounted read-only (readOnlyRootFilesystem), as the
//     image's user (65532), with no_new_privs (allowPrivilegeEscalation: false) and no capabilities;
//   - in a mount and UTS namespace of its own: the ServiceAccount volume (a token from the TokenRequest
//     API bound to the Deployment's pod, the cluster's CA, the namespace) is bind-mounted read-only at
//     /var/run/secrets/kubernetes.io/serviceaccount, and the hostname is the pod's name;
//   - with exactly the container's command and args, $(VAR) references expanded, and the environment a
//     kubelet gives: the image's, KUBERNETES_SERVICE_HOST/PORT (the API server on 127.0.0.1), HOSTNAME,
//     then the container's env with valueFrom resolved against the pod;
//   - and its probes are polled as the kubelet polls them.
//
// It shares the host's network: the manifest's fixed ports (:8443, :8081) must be free.

// managerImage is the manager's image for the host's platform, unpacked.
type managerImage struct {
	// rootfs is where its filesystem is unpacked.
	rootfs string
	// user is its uid:gid, env and workingDir its configuration's.
	user       string
	env        []string
	workingDir string
}

var (
	imageOnce sync.Once
	image     *managerImage
)

// theImage builds the image once for the specs that need it (E2E_IMAGE_DIR: use a `make image` output
// instead), and unpacks the host platform's filesystem.
func theImage(ctx context.Context) *managerImage {
	imageOnce.Do(func() {
		dir := os.Getenv("E2E_IMAGE_DIR")
		if dir == "" {
			By("building the manager's image for linux/" + goruntime.GOARCH + " (hack/image, as `make image`)")
			dir = filepath.Join(env.stateDir, "image")
			env.run(ctx, "", getenv("GO", "go"), "run", "./hack/image", "build", "--out", dir,
				"--platforms", "linux/"+goruntime.GOARCH, "--tag", "e2e", "--source-date-epoch", "0")
		}
		img, err := ociimage.PlatformImage(filepath.Join(dir, "oci"), "linux/"+goruntime.GOARCH)
		Expect(err).NotTo(HaveOccurred())
		cfg, err := img.ConfigFile()
		Expect(err).NotTo(HaveOccurred())
		rootfs := filepath.Join(env.stateDir, "rootfs")
		Expect(os.RemoveAll(rootfs)).To(Succeed())
		Expect(untar(mutate.Extract(img), rootfs)).To(Succeed())
		// The mount points a container runtime creates.
		for _, d := range []string{"proc", "var/run/secrets/kubernetes.io/serviceaccount"} {
			Expect(os.MkdirAll(filepath.Join(rootfs, d), 0o755)).To(Succeed())
		}
		image = &managerImage{rootfs: rootfs, user: cfg.Config.User, env: cfg.Config.Env, workingDir: cfg.Config.WorkingDir}
		Expect(image.user).NotTo(BeEmpty(), "the image names no user")
		Expect(image.user).NotTo(HavePrefix("0"), "the image runs as root")
	})
	Expect(image).NotTo(BeNil(), "building the image failed in an earlier spec")
	return image
}

// untar writes a flattened image filesystem into dir, with its modes and owners.
func untar(rc io.ReadCloser, dir string) error {
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Join(dir, filepath.Clean("/"+h.Name))
		mode := os.FileMode(h.Mode).Perm()
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil { //nolint:gosec // Our own image.
				_ = f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, name); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("%s: unexpected tar entry type %c", h.Name, h.Typeflag)
		}
		if err := os.Chmod(name, mode); err != nil {
			return err
		}
		if err := os.Lchown(name, h.Uid, h.Gid); err != nil {
			return err
		}
	}
}

// deployConfigDefault applies everything config/default renders (the suite installed its CRD and RBAC
// already) and waits until the Deployment's replicas run on kwok's nodes: the Pod Security admission of
// the namespace ("restricted") and the priority class's quota admitted them. The Deployment, its
// Service and PodDisruptionBudget go after the spec. It returns the Deployment as applied and its pods.
func deployConfigDefault(ctx context.Context) (*appsv1.Deployment, []corev1.Pod) {
	rendered := env.kubectl(ctx, "", "kustomize", filepath.Join(env.root, "config", "default"))
	var dep *appsv1.Deployment
	var extra []client.Object
	for _, obj := range decodeAll(rendered) {
		switch obj.GetKind() {
		case "Deployment":
			dep = &appsv1.Deployment{}
			Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, dep)).To(Succeed())
			extra = append(extra, dep)
		case "Service", "PodDisruptionBudget":
			extra = append(extra, obj)
		}
	}
	Expect(dep).NotTo(BeNil(), "config/default renders no Deployment")
	env.kubectl(ctx, rendered, "apply", "--server-side", "--force-conflicts", "-f", "-")
	DeferCleanup(func(ctx SpecContext) {
		for _, obj := range extra {
			Expect(client.IgnoreNotFound(k8s.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationForeground)))).To(Succeed())
		}
		for _, obj := range extra {
			expectGone(ctx, obj)
		}
	})

	var pods []corev1.Pod
	Eventually(func(g Gomega) {
		var cur appsv1.Deployment
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(dep), &cur)).To(Succeed())
		g.Expect(cur.Status.ReadyReplicas).To(Equal(*dep.Spec.Replicas), "ready replicas; conditions %+v", cur.Status.Conditions)
		var list corev1.PodList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(dep.Namespace), client.MatchingLabels(dep.Spec.Selector.MatchLabels))).To(Succeed())
		pods = live(list.Items)
		g.Expect(pods).To(HaveLen(int(*dep.Spec.Replicas)))
	}).WithContext(ctx).Should(Succeed())
	return dep, pods
}

// decodeAll decodes a stream of YAML documents.
func decodeAll(manifests string) []*unstructured.Unstructured {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var out []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return out
		}
		Expect(err).NotTo(HaveOccurred())
		if len(obj.Object) > 0 {
			out = append(out, obj)
		}
	}
}

// podProcess is one manager process run as a pod's container.
type podProcess struct {
	pod  string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// containerRun is what a kubelet would run for one container of a pod.
type containerRun struct {
	command []string
	env     []string
}

// resolveContainer computes the container's command line and environment the way a kubelet does:
// image env, service env, HOSTNAME, then the container's env in order (each may use $(VAR) of the
// ones before), then $(VAR) in command and args; valueFrom is resolved against the pod.
func resolveContainer(img *managerImage, pod *corev1.Pod, c *corev1.Container, apiHost, apiPort string) containerRun {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, kv := range img.env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	set("HOSTNAME", pod.Name)
	// The kubernetes Service's variables (the kubelet adds those of every Service of the namespace
	// too; the manager reads only these).
	set("KUBERNETES_SERVICE_HOST", apiHost)
	set("KUBERNETES_SERVICE_PORT", apiPort)
	set("KUBERNETES_SERVICE_PORT_HTTPS", apiPort)
	set("KUBERNETES_PORT", "tcp://"+net.JoinHostPort(apiHost, apiPort))
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			set(e.Name, expandVars(e.Value, vars))
		case e.ValueFrom.ResourceFieldRef != nil:
			set(e.Name, resourceFieldValue(pod, e.ValueFrom.ResourceFieldRef))
		case e.ValueFrom.FieldRef != nil:
			set(e.Name, podFieldValue(pod, e.ValueFrom.FieldRef.FieldPath))
		default:
			Fail(fmt.Sprintf("env %s: valueFrom %+v is not simulated", e.Name, e.ValueFrom))
		}
	}
	var run containerRun
	Expect(c.Command).NotTo(BeEmpty(), "the container has no command: the image's entrypoint would run")
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		run.command = append(run.command, expandVars(a, vars))
	}
	for _, k := range order {
		run.env = append(run.env, k+"="+vars[k])
	}
	return run
}

// expandVars replaces $(VAR) with VAR's value when it is defined and $$ with $, as the kubelet does;
// an undefined reference stays as it is.
func expandVars(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// resourceFieldValue is a container's resource in units of the divisor, rounded up (the kubelet's
// downward API); an unset limit is the node's allocatable, which kwok's nodes do not mind here.
func resourceFieldValue(pod *corev1.Pod, ref *corev1.ResourceFieldSelector) string {
	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == ref.ContainerName {
			c = &pod.Spec.Containers[i]
		}
	}
	Expect(c).NotTo(BeNil(), "resourceFieldRef names container %q", ref.ContainerName)
	kind, name, _ := strings.Cut(ref.Resource, ".")
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	Expect(ok).To(BeTrue(), "resourceFieldRef %s: the container sets none", ref.Resource)
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if name == string(corev1.ResourceCPU) {
		m := (q.MilliValue() + divisor.MilliValue() - 1) / divisor.MilliValue()
		return strconv.FormatInt(m, 10)
	}
	return strconv.FormatInt((q.Value()+divisor.Value()-1)/divisor.Value(), 10)
}

func podFieldValue(pod *corev1.Pod, path string) string {
	switch path {
	case "metadata.name":
		return pod.Name
	case "metadata.namespace":
		return pod.Namespace
	case "metadata.uid":
		return string(pod.UID)
	case "spec.nodeName":
		return pod.Spec.NodeName
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName
	case "status.podIP", "status.hostIP":
		return "127.0.0.1"
	}
	Fail("fieldRef " + path + " is not simulated")
	return ""
}

// serviceAccountVolume writes what the kubelet projects into a pod's ServiceAccount volume: a token
// from the TokenRequest API bound to the pod, the cluster's CA and the namespace.
func serviceAccountVolume(ctx context.Context, pod *corev1.Pod, dir string) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Spec.ServiceAccountName}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To[int64](3607),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	Expect(k8s.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
	Expect(tr.Status.Token).NotTo(BeEmpty())
	kc, err := clientcmd.LoadFromFile(env.kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	cluster := kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster]
	ca := cluster.CertificateAuthorityData
	if len(ca) == 0 {
		ca, err = os.ReadFile(cluster.CertificateAuthority)
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(os.RemoveAll(dir)).To(Succeed())
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	for name, data := range map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": ca, "namespace": []byte(pod.Namespace)} {
		Expect(os.WriteFile(filepath.Join(dir, name), data, 0o644)).To(Succeed()) //nolint:gosec // The kubelet's default mode.
	}
}

// apiServerHostPort is the cluster's API server, from the suite's kubeconfig.
func apiServerHostPort() (string, string) {
	kc, err := clientcmd.LoadFromFile(env.kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	server := kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].Server
	u := strings.TrimPrefix(server, "https://")
	host, port, err := net.SplitHostPort(u)
	Expect(err).NotTo(HaveOccurred(), "server %s", server)
	return host, port
}

// mountScript runs as root in the new mount and UTS namespaces: it prepares the container's mounts and
// hostname, then execs the rest of its arguments.
const mountScript = `set -eu
rootfs=$1 sa=$2 host=$3; shift 3
mount --bind "$rootfs" "$rootfs"
mount -t proc proc "$rootfs/proc"
mount --bind "$sa" "$rootfs/var/run/secrets/kubernetes.io/serviceaccount"
mount -o remount,bind,ro "$rootfs/var/run/secrets/kubernetes.io/serviceaccount"
mount -o remount,bind,ro "$rootfs"
hostname "$host"
exec "$@"
`

// startPodProcess runs the container of pod as the kubelet would (see the top of the file); edit may
// change its command line (the failover spec moves its ports). It is SIGKILLed after the spec.
func startPodProcess(ctx context.Context, img *managerImage, pod *corev1.Pod, containerName string, edit func([]string) []string) *podProcess {
	if os.Geteuid() != 0 {
		Skip("running the Deployment's container needs root (mount namespaces, chroot)")
	}
	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == containerName {
			c = &pod.Spec.Containers[i]
		}
	}
	Expect(c).NotTo(BeNil())
	// chroot starts it in /.
	Expect(img.workingDir).To(BeElementOf("", "/"), "the image's working directory is not simulated")
	Expect(c.WorkingDir).To(BeEmpty(), "the container's workingDir is not simulated")
	host, port := apiServerHostPort()
	run := resolveContainer(img, pod, c, host, port)
	if edit != nil {
		run.command = edit(run.command)
	}
	dir := filepath.Join(env.stateDir, "pods", pod.Name)
	saDir := filepath.Join(dir, "serviceaccount")
	serviceAccountVolume(ctx, pod, saDir)

	// env -i: the container's environment and nothing else; chroot --userspec: the image's user, after
	// the chroot; setpriv --no-new-privs: allowPrivilegeEscalation false.
	tools := map[string]string{}
	for _, t := range []string{"setpriv", "env", "chroot"} {
		path, err := exec.LookPath(t)
		Expect(err).NotTo(HaveOccurred(), "util-linux and coreutils run the container")
		tools[t] = path
	}
	args := make([]string, 0, 20+len(run.env)+len(run.command))
	args = append(args, "--mount", "--uts", "--propagation", "private", "--", "sh", "-c", mountScript, "sh", img.rootfs, saDir, pod.Name,
		tools["setpriv"], "--no-new-privs", "--", tools["env"], "-i")
	args = append(args, run.env...)
	args = append(args, tools["chroot"], "--userspec="+img.user, img.rootfs)
	args = append(args, run.command...)
	logPath := filepath.Join(dir, "manager.log")
	logFile, err := os.Create(logPath)
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(GinkgoWriter, "pod %s runs %q with env %q (log %s)\n", pod.Name, run.command, run.env, logPath)
	cmd := exec.Command("unshare", args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	Expect(cmd.Start()).To(Succeed())
	p := &podProcess{pod: pod.Name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	env.mu.Lock()
	env.otherLogs = append(env.otherLogs, logPath)
	env.mu.Unlock()
	DeferCleanup(p.kill)
	return p
}

func (p *podProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (every exec in the chain keeps the pid: it is the manager's) and waits.
func (p *podProcess) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM, then SIGKILL after the grace period, as the kubelet does.
func (p *podProcess) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

func (p *podProcess) logTail(n int) string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// killStrayPodProcesses SIGKILLs the pod processes an earlier run of the suite left behind (one whose
// test binary was killed: their parent-death signal does not survive the change of user). They are the
// processes whose root is the suite's unpacked image.
func (e *environment) killStrayPodProcesses() {
	rootfs := filepath.Join(e.stateDir, "rootfs")
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if root, err := os.Readlink(filepath.Join("/proc", d.Name(), "root")); err == nil && root == rootfs {
			fmt.Fprintf(GinkgoWriter, "killing a stray pod process (pid %d)\n", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// probe is one httpGet probe of a container, polled as the kubelet polls it.
type probe struct {
	name   string
	url    string
	period time.Duration

	mu                  sync.Mutex
	successes, failures int
	lastErr             string
}

// pollProbe polls p's httpGet on host after its initial delay, every period, until ctx ends, with the
// kubelet's User-Agent and timeout; 200-399 is a success.
func pollProbe(ctx context.Context, name string, pr *corev1.Probe, c *corev1.Container, host string) *probe {
	Expect(pr).NotTo(BeNil(), "the container has no %s probe", name)
	Expect(pr.HTTPGet).NotTo(BeNil(), "the %s probe is not httpGet", name)
	port := pr.HTTPGet.Port.IntValue()
	if pr.HTTPGet.Port.StrVal != "" {
		for _, cp := range c.Ports {
			if cp.Name == pr.HTTPGet.Port.StrVal {
				port = int(cp.ContainerPort)
			}
		}
	}
	Expect(port).NotTo(BeZero(), "the %s probe's port %s", name, pr.HTTPGet.Port.String())
	scheme := strings.ToLower(string(pr.HTTPGet.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	p := &probe{name: name, url: fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), pr.HTTPGet.Path),
		period: time.Duration(max(pr.PeriodSeconds, 10)) * time.Second}
	timeout := time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second
	httpClient := &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	go func() {
		defer GinkgoRecover()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(pr.InitialDelaySeconds) * time.Second):
		}
		tick := time.NewTicker(p.period)
		defer tick.Stop()
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
			req.Header.Set("User-Agent", "kube-probe/1.37")
			req.Header.Set("Accept", "*/*")
			resp, err := httpClient.Do(req)
			ok := err == nil && resp.StatusCode >= 200 && resp.StatusCode < 400
			if resp != nil {
				_ = resp.Body.Close()
			}
			p.mu.Lock()
			if ok {
				p.successes++
			} else if ctx.Err() == nil {
				p.failures++
				if err != nil {
					p.lastErr = err.Error()
				} else {
					p.lastErr = resp.Status
				}
			}
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *probe) counts() (successes, failures int, lastErr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.successes, p.failures, p.lastErr
}

// portsFree fails the spec when one of the container's ports is taken on this machine: the process
// shares the host's network.
func portsFree(c *corev1.Container) {
	for _, cp := range c.Ports {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", cp.ContainerPort))
		Expect(err).NotTo(HaveOccurred(), "port %d (%s) of the Deployment's container is taken on this machine: the e2e suite runs the "+
			"container on the host's network, with the manifest's ports", cp.ContainerPort, cp.Name)
		_ = l.Close()
	}
}
