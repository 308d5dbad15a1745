package nodeagentset

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// apiServerError is an error as the API server sends it: the Status object of the response.
func apiServerError(t *testing.T, status string) error {
	t.Helper()
	var s metav1.Status
	if err := json.Unmarshal([]byte(status), &s); err != nil {
		t.Fatal(err)
	}
	return &apierrors.StatusError{ErrStatus: s}
}

func TestTemplateState(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	cases := []struct {
		name string
		err  error
		want planner.TemplateState
	}{
		{"accepted", nil, planner.TemplateAccepted},
		// The Status bodies below are what kube-apiserver 1.37 (envtest, with the ServiceAccount
		// admission plugin enabled) answered to dry-run pod creates.
		{"a pod's named ServiceAccount does not exist", apiServerError(t, `{"metadata":{},"status":"Failure",`+
			`"message":"pods \"p\" is forbidden: error looking up service account x/agent: serviceaccount \"agent\" not found",`+
			`"reason":"Forbidden","details":{"name":"p","kind":"pods"},"code":403}`), planner.TemplateServiceAccountMissing},
		{"a new namespace's default ServiceAccount is not there yet", apiServerError(t, `{"metadata":{},"status":"Failure",`+
			`"message":"pods \"p\" is forbidden: error looking up service account x/default: serviceaccount \"default\" not found",`+
			`"reason":"Forbidden","details":{"name":"p","kind":"pods"},"code":403}`), planner.TemplateServiceAccountMissing},
		{"pod security", apiServerError(t, `{"metadata":{},"status":"Failure",`+
			`"message":"pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true)",`+
			`"reason":"Forbidden","details":{"name":"p","kind":"pods"},"code":403}`), planner.TemplateRejected},
		{"a ValidatingAdmissionPolicy's denial", apiServerError(t, `{"metadata":{},"status":"Failure",`+
			`"message":"pods \"p\" is forbidden: ValidatingAdmissionPolicy 'no-deny' with binding 'no-deny' denied request: no deny label",`+
			`"reason":"Invalid","details":{"name":"p","kind":"pods","causes":[{"message":"ValidatingAdmissionPolicy 'no-deny' with `+
			`binding 'no-deny' denied request: no deny label"}]},"code":422}`), planner.TemplateRejected},
		{"a ValidatingAdmissionPolicy's denial with reason Forbidden", apierrors.NewForbidden(gr, "p",
			errors.New("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no")), planner.TemplateRejected},
		// apiserver's webhook ToStatusErr: the webhook's code, 400 by default.
		{"a webhook's denial", &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 403,
			Reason: metav1.StatusReasonForbidden, Message: `admission webhook "deny.example.com" denied the request: no`}}, planner.TemplateRejected},
		{"a webhook's denial with the default code", &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 400,
			Message: `admission webhook "deny.example.com" denied the request without explanation`}}, planner.TemplateRejected},
		{"validation", apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "x", nil), planner.TemplateRejected},
		{"a webhook that could not be called", apierrors.NewInternalError(errors.New(
			`failed calling webhook "deny.example.com": connection refused`)), planner.TemplateCheckFailed},
		{"quota", apierrors.NewForbidden(gr, "x", errors.New("exceeded quota: pods, requested: pods=1")), planner.TemplateCheckFailed},
		{"a missing permission", apierrors.NewForbidden(gr, "", errors.New(
			`User "system:serviceaccount:x:y" cannot create resource "pods" in API group "" in the namespace "x"`)), planner.TemplateCheckFailed},
		{"throttled", apierrors.NewTooManyRequests("slow down", 1), planner.TemplateCheckFailed},
		{"timeout", apierrors.NewServerTimeout(gr, "create", 1), planner.TemplateCheckFailed},
		{"a connection error", errors.New("dial tcp: connection refused"), planner.TemplateCheckFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := templateState(tc.err); got != tc.want {
				t.Errorf("templateState(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

// dryRunClient answers dry-run pod creates with dryRunErr, and stores everything else.
func dryRunClient(dryRunErr func() error, objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			o := &client.CreateOptions{}
			o.ApplyOptions(opts)
			if slices.Contains(o.DryRun, metav1.DryRunAll) {
				return dryRunErr()
			}
			return cl.Create(ctx, obj, opts...)
		},
	}).Build()
}

func TestPlanChecksTheTemplate(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	set := testSet("agent", nil)
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "agent", Image: "agent:1"}}
	history := &revisions{current: &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{
		Labels: map[string]string{nasv1alpha1.ControllerRevisionHashLabel: "h"}}}}
	nodes := []*corev1.Node{node("node-0", nil), node("node-1", nil), node("node-2", nil)}
	nodes[2].Spec.Taints = []corev1.Taint{{Key: "gone", Effect: corev1.TaintEffectNoExecute}}
	failed := podOn(set, "node-1")
	failed.UID, failed.Status.Phase = "failed-uid", corev1.PodFailed
	evicted := podOn(set, "node-2")
	evicted.UID = "evicted-uid"

	t.Run("a dry-run that fails still deletes; only creates wait", func(t *testing.T) {
		// Regression (issue 14, defect 5): the pass used to return before any deletion.
		clk := clocktesting.NewFakeClock(now)
		c := dryRunClient(func() error { return apierrors.NewTooManyRequests("slow down", 1) }, failed.DeepCopy(), evicted.DeepCopy())
		r := NewReconciler(c, nil, nil, events.NewFakeRecorder(10), clk)
		plan, err := r.plan(context.Background(), set, history, &observation{nodes: nodes}, []*corev1.Pod{failed, evicted})
		if err == nil || !apierrors.IsTooManyRequests(err) {
			t.Errorf("plan error = %v, want the dry-run's 429", err)
		}
		if len(plan.Creates) != 0 || plan.Template.State != planner.TemplateCheckFailed || plan.Template.RecheckAt != now.Add(checkFailedRecheckInitial) {
			t.Errorf("plan creates %v with verdict %+v, want none with CheckFailed until %v", plan.Creates, plan.Template, now.Add(checkFailedRecheckInitial))
		}
		if err := r.apply(context.Background(), set, "h", plan); err != nil {
			t.Fatalf("apply: %v", err)
		}
		var pods corev1.PodList
		if err := c.List(context.Background(), &pods); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 0 {
			t.Errorf("pods left: %d, want the failed and the evicted pod deleted", len(pods.Items))
		}
	})

	t.Run("a missing ServiceAccount is rechecked soon, then less often, and creates once it is there", func(t *testing.T) {
		clk := clocktesting.NewFakeClock(now)
		missing := true
		c := dryRunClient(func() error {
			if missing {
				return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "p",
					errors.New(`error looking up service account ns/default: serviceaccount "default" not found`))
			}
			return nil
		})
		r := NewReconciler(c, nil, nil, events.NewFakeRecorder(10), clk)
		plan, err := r.plan(context.Background(), set, history, &observation{nodes: nodes[:1]}, nil)
		if err != nil || len(plan.Creates) != 0 || plan.Template.State != planner.TemplateServiceAccountMissing ||
			plan.RequeueAfter != serviceAccountRecheckInitial {
			t.Fatalf("plan = creates %v, verdict %+v, requeue %v, err %v; want no creates, ServiceAccountMissing, back in %v",
				plan.Creates, plan.Template, plan.RequeueAfter, err, serviceAccountRecheckInitial)
		}
		clk.Step(serviceAccountRecheckInitial)
		if plan, _ = r.plan(context.Background(), set, history, &observation{nodes: nodes[:1]}, nil); plan.RequeueAfter != 2*serviceAccountRecheckInitial {
			t.Errorf("second recheck in %v, want %v", plan.RequeueAfter, 2*serviceAccountRecheckInitial)
		}
		missing = false
		clk.Step(2 * serviceAccountRecheckInitial)
		if plan, _ = r.plan(context.Background(), set, history, &observation{nodes: nodes[:1]}, nil); !slices.Equal(plan.Creates, []string{"node-0"}) {
			t.Errorf("creates %v once the account exists, want [node-0]", plan.Creates)
		}
	})
}

func TestTemplateCheckCoversEachOverride(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	set := testSet("agent", nil)
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "agent", Image: "agent:1"}}
	set.Spec.NodeOverrides = []nasv1alpha1.NodeOverride{{
		Name:         "gpu",
		NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"gpu": "true"}},
		Containers:   []nasv1alpha1.ContainerOverride{{Name: "agent", Image: "agent:bad"}},
	}}
	history := &revisions{current: &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{
		Labels: map[string]string{nasv1alpha1.ControllerRevisionHashLabel: "h"}}}}
	nodes := []*corev1.Node{node("node-0", nil), node("node-1", map[string]string{"gpu": "true"})}

	var checked []string
	c := fake.NewClientBuilder().WithScheme(testScheme()).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			pod := obj.(*corev1.Pod)
			checked = append(checked, pod.Labels[planner.OverrideLabel]+"="+pod.Spec.Containers[0].Image)
			if pod.Spec.Containers[0].Image == "agent:bad" {
				return apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "p", nil)
			}
			return nil
		},
	}).Build()
	r := NewReconciler(c, nil, nil, events.NewFakeRecorder(10), clocktesting.NewFakeClock(now))
	plan, err := r.plan(context.Background(), set, history, &observation{nodes: nodes}, nil)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	// The plain template passes on node-0; the gpu override's pod, rendered for node-1, is refused.
	if want := []string{"=agent:1", "gpu=agent:bad"}; !slices.Equal(checked, want) {
		t.Errorf("dry-run pods %v, want %v", checked, want)
	}
	if plan.Template.State != planner.TemplateRejected || len(plan.Creates) != 0 {
		t.Errorf("verdict %s with creates %v, want Rejected and none", plan.Template.State, plan.Creates)
	}
}
