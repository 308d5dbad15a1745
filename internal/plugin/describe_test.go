package plugin

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

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

func TestDescribeNodeOverrides(t *testing.T) {
	if got := describeNodeOverrides(nil); got != "" {
		t.Errorf("no overrides: %q, want nothing", got)
	}
	got := describeNodeOverrides([]nasv1alpha1.NodeOverride{
		{
			Name:         "gpu",
			NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"gpu": "true"}},
			Containers: []nasv1alpha1.ContainerOverride{{
				Name: "agent", Image: "agent:cuda", Env: []corev1.EnvVar{{Name: "GPU_METRICS", Value: "on"}},
				Resources: &corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi"), corev1.ResourceCPU: resource.MustParse("200m")},
				},
			}},
		},
		{
			Name: "by-size",
			Containers: []nasv1alpha1.ContainerOverride{{Name: "agent", ResourcesFromAllocatable: &nasv1alpha1.AllocatableShare{
				Requests: map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: "1%"},
				Min:      map[corev1.ResourceName]nasv1alpha1.QuantityString{corev1.ResourceMemory: "128Mi"},
			}}},
		},
	})
	want := "Node Overrides:\n" +
		"  gpu:\tgpu=true\n" +
		"    agent:\timage agent:cuda; env GPU_METRICS=on; requests cpu=200m,memory=512Mi\n" +
		"  by-size:\tevery node\n" +
		"    agent:\trequests memory=1% of allocatable; min memory=128Mi\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
