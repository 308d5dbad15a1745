//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// helmRelease is the chart's release in these specs: its cluster-scoped objects (ClusterRoles and
// bindings) are named after it, apart from config/default's that the suite installed.
const helmRelease = "nas-helm"

// helmBinary is the helm that `make test-e2e` builds from hack/tools (HELM), else bin/'s.
func (e *environment) helmBinary() string {
	helm := getenv("HELM", filepath.Join(e.root, "bin", "helm-v4.3.2"))
	_, err := os.Stat(helm)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "no helm at %s: run `make helm` or set HELM", helm)
	return helm
}

func (e *environment) helm(ctx context.Context, args ...string) string {
	out, err := e.tryRun(ctx, "", nil, e.helmBinary(), append([]string{"--kubeconfig", e.kubeconfig}, args...)...)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return out
}

var _ = Describe("The Helm chart", func() {
	// kwok plays the kubelet: the chart's manager pods are scheduled, admitted and marked Running and
	// Ready, but no process runs, so the release never reconciles against the suite's controller. The
	// specs check that too: no leader election lease appears in the release's namespace.
	It("installs into a namespace, its Deployment becomes available, and uninstalls", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		chart := filepath.Join(env.root, "charts", "nodeagentset")

		By("helm install " + helmRelease + " into " + ns)
		env.helm(ctx, "install", helmRelease, chart, "--namespace", ns)
		DeferCleanup(func(ctx SpecContext) {
			// Uninstalled by the spec; this only cleans up after a failure.
			_, _ = env.tryRun(ctx, "", nil, env.helmBinary(), "--kubeconfig", env.kubeconfig, "uninstall", helmRelease,
				"--namespace", ns, "--ignore-not-found")
		})

		fullname := helmRelease + "-nodeagentset"
		deployment := &appsv1.Deployment{}
		By("waiting for the manager's Deployment to be available with its replicas")
		Eventually(func(g Gomega, ctx context.Context) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: fullname + "-controller-manager"}, deployment)).To(Succeed())
			g.Expect(deployment.Status.AvailableReplicas).To(Equal(int32(2)), "status %+v", deployment.Status)
			g.Expect(deployment.Status.Conditions).To(ContainElement(And(
				HaveField("Type", appsv1.DeploymentAvailable), HaveField("Status", corev1.ConditionTrue))))
		}).WithContext(ctx).Should(Succeed())
		container := deployment.Spec.Template.Spec.Containers[0]
		Expect(container.Image).To(HavePrefix("ghcr.io/nodeagentset/nodeagentset:"))
		Expect(container.Args).To(ContainElements("--leader-elect", "--metrics-bind-address=:8443"))
		Expect(deployment.Spec.Template.Spec.ServiceAccountName).To(Equal(fullname + "-controller-manager"))

		By("checking the release's other objects")
		for name, obj := range map[string]client.Object{
			fullname + "-controller-manager":                 &corev1.ServiceAccount{},
			fullname + "-controller-manager-metrics-service": &corev1.Service{},
			fullname + "-critical-pods":                      &corev1.ResourceQuota{},
			fullname + "-leader-election-role":               &rbacv1.Role{},
			fullname + "-leader-election-rolebinding":        &rbacv1.RoleBinding{},
		} {
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)).To(Succeed(), "%T %s", obj, name)
		}
		managerRole := &rbacv1.ClusterRole{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: fullname + "-manager-role"}, managerRole)).To(Succeed())
		Expect(managerRole.Rules).To(ContainElement(HaveField("Resources", ContainElement("pods"))))
		binding := &rbacv1.ClusterRoleBinding{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: fullname + "-manager-rolebinding"}, binding)).To(Succeed())
		Expect(binding.Subjects).To(ConsistOf(HaveField("Namespace", ns)))

		By("checking that no second controller runs: no leader election lease in " + ns)
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, &coordinationv1.Lease{})).
			To(Satisfy(apierrors.IsNotFound))

		By("helm uninstall")
		env.helm(ctx, "uninstall", helmRelease, "--namespace", ns)
		Eventually(func(g Gomega, ctx context.Context) {
			err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: deployment.Name}, &appsv1.Deployment{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the Deployment: %v", err)
			err = k8s.Get(ctx, client.ObjectKey{Name: managerRole.Name}, &rbacv1.ClusterRole{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the ClusterRole: %v", err)
		}).WithContext(ctx).Should(Succeed())
	})
})
