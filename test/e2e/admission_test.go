//go:build e2e

package e2e

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// The suite's cluster is a hardened one (hack/kwok/kwokctl.yaml): these show that the admission
// plugins the RBAC and manifests are tested against are on, so that the other specs cannot pass
// because one was lost.
var _ = Describe("The hardened API server", func() {
	It("enforces owner-reference permissions, always pulls images, and holds the manager's namespace to Pod Security restricted", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		set := createSet(ctx, ns, "owner", withNodeSelector("e2e.nodeagentset.io/none", "none"))

		By("OwnerReferencesPermissionEnforcement: blockOwnerDeletion needs update on the owner's finalizers")
		user := "e2e-configmap-writer"
		role := &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}}},
		}
		Expect(k8s.Create(ctx, role)).To(Succeed())
		Expect(k8s.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		})).To(Succeed())
		owned := func(name string) *corev1.ConfigMap {
			return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: nasv1alpha1.GroupVersion.String(), Kind: "NodeAgentSet", Name: set.Name, UID: set.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}}}}
		}
		writer := impersonating(user)
		var err error
		Eventually(func() error {
			err = writer.Create(ctx, owned("refused"))
			return err
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(MatchError(ContainSubstring("cannot set blockOwnerDeletion")),
			"RBAC may lag a moment: the first tries may be plain forbidden")
		Expect(apierrors.IsForbidden(err)).To(BeTrue())
		role.Rules = append(role.Rules, rbacv1.PolicyRule{
			APIGroups: []string{nasv1alpha1.GroupVersion.Group}, Resources: []string{"nodeagentsets/finalizers"}, Verbs: []string{"update"},
		})
		Expect(k8s.Update(ctx, role)).To(Succeed())
		Eventually(func(ctx context.Context) error { return writer.Create(ctx, owned("admitted")) }).WithContext(ctx).Should(Succeed(),
			"with update on nodeagentsets/finalizers, as config/rbac grants the controller")

		By("AlwaysPullImages: a pod's imagePullPolicy becomes Always")
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pull"},
			Spec: corev1.PodSpec{
				NodeSelector: map[string]string{"e2e.nodeagentset.io/none": "none"},
				Containers:   []corev1.Container{{Name: "c", Image: image1, ImagePullPolicy: corev1.PullIfNotPresent}},
			},
		}
		Expect(k8s.Create(ctx, pod)).To(Succeed())
		Expect(pod.Spec.Containers[0].ImagePullPolicy).To(Equal(corev1.PullAlways))

		By("PodSecurity: the manager's namespace (config/manager) refuses a pod that is not restricted")
		privileged := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: env.saNamespace, Name: "e2e-not-restricted"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image1}}},
		}
		err = k8s.Create(ctx, privileged, client.DryRunAll)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
		Expect(err).To(MatchError(ContainSubstring(`violates PodSecurity "restricted:latest"`)))
	})
})

// impersonating is a client that acts as user (no groups besides system:authenticated).
func impersonating(user string) client.Client {
	cfg := rest.CopyConfig(env.restConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: k8s.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	return c
}
