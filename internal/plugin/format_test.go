package plugin

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

func statusSet(mutate func(*nasv1alpha1.NodeAgentSet)) *nasv1alpha1.NodeAgentSet {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Generation: 2}}
	set.Spec.UpdateStrategy.Type = nasv1alpha1.RollingUpdateStrategyType
	set.Status = nasv1alpha1.NodeAgentSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 4}
	if mutate != nil {
		mutate(set)
	}
	return set
}

func TestRolloutStatus(t *testing.T) {
	tests := []struct {
		name    string
		set     *nasv1alpha1.NodeAgentSet
		want    string
		done    bool
		wantErr string
	}{
		{name: "done", set: statusSet(nil), want: `node agent set "agent" successfully rolled out` + "\n", done: true},
		{name: "empty strategy type is RollingUpdate", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) { s.Spec.UpdateStrategy.Type = "" }),
			want: `node agent set "agent" successfully rolled out` + "\n", done: true},
		{name: "OnDelete", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) { s.Spec.UpdateStrategy.Type = nasv1alpha1.OnDeleteStrategyType }),
			wantErr: "rollout status is only available for RollingUpdate strategy type"},
		{name: "not observed", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) { s.Generation = 3 }),
			want: "Waiting for node agent set spec update to be observed...\n"},
		{name: "observed generation ahead counts as observed", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) { s.Status.ObservedGeneration = 5 }),
			want: `node agent set "agent" successfully rolled out` + "\n", done: true},
		{name: "updating", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) { s.Status.UpdatedNumberScheduled = 1 }),
			want: `Waiting for node agent set "agent" rollout to finish: 1 out of 4 new pods have been updated...` + "\n"},
		{name: "becoming available", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) { s.Status.NumberAvailable = 3 }),
			want: `Waiting for node agent set "agent" rollout to finish: 3 of 4 updated pods are available...` + "\n"},
		{name: "paused", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Paused: true}
			s.Status.NumberAvailable = 3
		}), want: `Waiting for node agent set "agent" rollout to finish: 3 of 4 updated pods are available (rollout paused)...` + "\n"},
		{name: "partition of 1 leaves 3 to update", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Partition: ptr.To(intstr.FromInt32(1))}
			s.Status.UpdatedNumberScheduled = 2
		}), want: "Waiting for partitioned roll out to finish: 2 out of 3 new pods have been updated...\n"},
		{name: "partition percentage rounds up", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Partition: ptr.To(intstr.FromString("30%"))}
			s.Status.UpdatedNumberScheduled = 2
		}), want: "partitioned roll out complete: 2 new pods have been updated...\n", done: true},
		{name: "partition reached but pods unavailable", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Partition: ptr.To(intstr.FromInt32(2))}
			s.Status.UpdatedNumberScheduled, s.Status.NumberAvailable = 2, 3
		}), want: `Waiting for node agent set "agent" rollout to finish: 3 of 4 pods are available...` + "\n"},
		{name: "deadline exceeded", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Status.UpdatedNumberScheduled = 2
			s.Status.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionFalse,
				Reason: nasv1alpha1.ReasonProgressDeadlineExceeded, Message: "stuck: n1 (node not ready)"}}
		}), wantErr: `node agent set "agent" exceeded its progress deadline: stuck: n1 (node not ready)`},
		{name: "deadline condition not observed yet", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Generation = 3
			s.Status.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionFalse,
				Reason: nasv1alpha1.ReasonProgressDeadlineExceeded}}
		}), want: "Waiting for node agent set spec update to be observed...\n"},
		{name: "progressing true is not an error", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Status.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionTrue,
				Reason: nasv1alpha1.ReasonRolloutComplete}}
		}), want: `node agent set "agent" successfully rolled out` + "\n", done: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, done, err := rolloutStatus(tt.set)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || done != tt.done {
				t.Errorf("got (%q, %v), want (%q, %v)", got, done, tt.want, tt.done)
			}
		})
	}
}

func TestParseDryRun(t *testing.T) {
	for in, want := range map[string]dryRun{
		"none": dryRunNone, "client": dryRunClient, "server": dryRunServer, dryRunUnset: dryRunClient, "true": dryRunClient, "false": dryRunNone,
	} {
		if got, err := parseDryRun(in); err != nil || got != want {
			t.Errorf("parseDryRun(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseDryRun("later"); err == nil || err.Error() != `Invalid dry-run value (later). Must be "none", "server", or "client".` {
		t.Errorf("parseDryRun(later) error = %v", err)
	}
	if dryRunClient.suffix() != " (dry run)" || dryRunServer.suffix() != " (server dry run)" || dryRunNone.suffix() != "" {
		t.Error("dry-run suffixes differ from kubectl's")
	}
}

func TestErrorMessage(t *testing.T) {
	notFound := apierrors.NewNotFound(setGVR.GroupResource(), "x")
	tests := []struct {
		err  error
		want string
	}{
		{notFound, `Error from server (NotFound): nodeagentsets.apps.nodeagentset.io "x" not found`},
		{errors.New("boom"), "error: boom"},
		{errors.New("error: already prefixed"), "error: already prefixed"},
		{apierrors.NewUnauthorized("token expired"), "error: You must be logged in to the server (token expired)"},
	}
	for _, tt := range tests {
		if got := errorMessage(tt.err); got != tt.want {
			t.Errorf("errorMessage(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestHistoryTable(t *testing.T) {
	history := []*appsv1.ControllerRevision{
		rev("a", 1, "first"), rev("b", 2, ""), rev("c", 2, "second, last listed"), rev("d", 10, "tenth"),
	}
	got := historyTable(history)
	want := "REVISION  CHANGE-CAUSE\n" +
		"1         first\n" +
		"2         second, last listed\n" +
		"10        tenth\n"
	if got != want {
		t.Errorf("historyTable =\n%s\nwant\n%s", got, want)
	}
	if found := findRevision(history, 2); found == nil || found.Name != "c" {
		t.Errorf("findRevision(2) = %v, want c (the last listed)", found)
	}
	if target := rollbackTarget(history, 0); target == nil || target.Name != "c" {
		t.Errorf("rollbackTarget(0) = %v, want the second-highest revision", target)
	}
	if rollbackTarget(history[:1], 0) != nil || rollbackTarget(history, 3) != nil {
		t.Error("rollbackTarget found a revision that does not exist")
	}
	if text, err := historyText(nil, nil, 0); err != nil || text != "No rollout history found." {
		t.Errorf("historyText without history = %q, %v", text, err)
	}
}

func TestDescribePodTemplate(t *testing.T) {
	tmpl := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      map[string]string{"b": "2", "a": "1"},
			Annotations: map[string]string{"short": "v", "long": strings.Repeat("x", 150), corev1.LastAppliedConfigAnnotation: "{}"},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "agent",
			InitContainers:     []corev1.Container{{Name: "init", Image: "busybox", Command: []string{"sh", "-c", "true"}}},
			Containers: []corev1.Container{{
				Name:  "agent",
				Image: "agent:1",
				Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9100, HostPort: 9100, Protocol: corev1.ProtocolTCP},
					{ContainerPort: 53, Protocol: corev1.ProtocolUDP}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/healthz", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}}, PeriodSeconds: 10, TimeoutSeconds: 1,
					SuccessThreshold: 1, FailureThreshold: 3},
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				Env: []corev1.EnvVar{{Name: "MODE", Value: "fast"}, {Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "token"}}}},
				VolumeMounts: []corev1.VolumeMount{{Name: "run", MountPath: "/run/agent", SubPath: "sock"}},
			}},
			Volumes:      []corev1.Volume{{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
			Tolerations: []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)}, {Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}},
		},
	}
	want := "Pod Template:\n" +
		"  Labels:\ta=1\n" +
		"\tb=2\n" +
		"  Annotations:\tlong:\n" +
		"\t  " + strings.Repeat("x", 138) + "...\n" +
		"\tshort: v\n" +
		"  Service Account:\tagent\n" +
		"  Init Containers:\n" +
		"   init:\n" +
		"    Image:\tbusybox\n" +
		"    Port:\t<none>\n" +
		"    Host Port:\t<none>\n" +
		"    Command:\n" +
		"      sh\n" +
		"      -c\n" +
		"      true\n" +
		"    Environment:\t<none>\n" +
		"    Mounts:\t<none>\n" +
		"  Containers:\n" +
		"   agent:\n" +
		"    Image:\tagent:1\n" +
		"    Ports:\t9100/TCP (metrics), 53/UDP\n" +
		"    Host Ports:\t9100/TCP (metrics), 0/UDP\n" +
		"    Limits:\n" +
		"      memory:\t256Mi\n" +
		"    Readiness:\thttp-get http://:8080/healthz delay=0s timeout=1s period=10s successThreshold=1 failureThreshold=3\n" +
		"    Environment Variables from:\n" +
		"      cfg\tConfigMap\tOptional: false\n" +
		"    Environment:\n" +
		"      MODE:\tfast\n" +
		"      TOKEN:\t<set to the key 'token' in secret 's'>\tOptional: false\n" +
		"    Mounts:\n" +
		"      /run/agent from run (rw,path=\"sock\")\n" +
		"  Volumes:\n" +
		"   run:\n" +
		"    Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n" +
		"    Medium:\t\n" +
		"  Node-Selectors:\tkubernetes.io/os=linux\n" +
		"  Tolerations:\tdedicated=gpu:NoSchedule\n" +
		"\tnode.kubernetes.io/not-ready:NoExecute op=Exists for 300s\n"
	if got := describePodTemplate(tmpl); got != want {
		t.Errorf("describePodTemplate =\n%s\nwant\n%s", got, want)
	}
	if got := describePodTemplate(nil); got != "Pod Template:\n  <unset>" {
		t.Errorf("describePodTemplate(nil) = %q", got)
	}
}

func TestNodesTable(t *testing.T) {
	now := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	created := metav1.NewTime(now.Add(-90 * time.Minute))
	items := []NodeReport{
		{Metadata: ReportMeta{Name: "gpu-1"}, NodeExists: true,
			Exclusion: &ReportExclusion{Detail: "taint dedicated=gpu:NoSchedule", Message: "taint dedicated=gpu:NoSchedule not tolerated"}},
		{Metadata: ReportMeta{Name: "worker-1"}, NodeExists: true, Eligible: true, Healthy: true,
			Pod: &ReportPod{Name: "agent-abcde", Revision: 3, ReadyContainers: "1/1", Available: true, CreationTimestamp: created}},
		{Metadata: ReportMeta{Name: "worker-2"}, NodeExists: true, Eligible: true, Reason: strings.Repeat("r", 100),
			Pod:       &ReportPod{Name: "agent-fghij", RevisionHash: "5c8d9f7b4", ReadyContainers: "0/1", CreationTimestamp: created},
			OtherPods: []ReportPod{{Name: "agent-klmno"}}},
		{Metadata: ReportMeta{Name: "gone"}, Reason: "node does not exist: the controller deletes its agent pods",
			Pod: &ReportPod{Name: "agent-pqrst", Revision: 2, ReadyContainers: "1/1", CreationTimestamp: created}},
	}
	var buf bytes.Buffer
	if err := printNodesTable(&buf, items, now); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"NODE       ELIGIBLE                             POD                REVISION    READY   AVAILABLE   AGE   REASON\n" +
		"gpu-1      no: taint dedicated=gpu:NoSchedule   <none>             -           -       -           -     \n" +
		"worker-1   yes                                  agent-abcde        3           1/1     yes         90m   \n" +
		"worker-2   yes                                  agent-fghij (+1)   5c8d9f7b4   0/1     no          90m   " + strings.Repeat("r", 77) + "...\n" +
		"gone       no: node not found                   agent-pqrst        2           1/1     no          90m   " +
		"node does not exist: the controller deletes its agent pods\n"
	if got := buf.String(); got != want {
		t.Errorf("table =\n%s\nwant\n%s", got, want)
	}
}

func TestMentions(t *testing.T) {
	for _, tt := range []struct {
		msg, node string
		want      bool
	}{
		{"failed on node worker-1", "worker-1", true},
		{"worker-1: failed", "worker-1", true},
		{"failed on worker-10", "worker-1", false},
		{"failed on worker-10 and worker-1.", "worker-1", true},
		{"failed on worker-1.example.com", "worker-1", false},
		{"failed on worker-10 and worker-1, retrying", "worker-1", true},
		{"failed on my-worker-1", "worker-1", false},
	} {
		if got := mentions(tt.msg, tt.node); got != tt.want {
			t.Errorf("mentions(%q, %q) = %v", tt.msg, tt.node, got)
		}
	}
}

func rev(name string, n int64, cause string) *appsv1.ControllerRevision {
	cr := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: name}, Revision: n}
	if cause != "" {
		cr.Annotations = map[string]string{ChangeCauseAnnotation: cause}
	}
	return cr
}
