package validation

import (
	. "github.com/onsi/ginkgo/v2"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// Messages and fields of the rules on spec.nodeOverrides.
const (
	msgOverrideNames      = "nodeOverrides names must be unique"
	msgOverrideContainer  = "every nodeOverrides container must name a container or init container of the template"
	msgResourcesBoth      = "set resources or resourcesFromAllocatable, not both"
	msgMinAboveMax        = "min must not be above max for any resource"
	msgPercent            = "percentages must be from 0% to 100%, such as 1% or 0.5%"
	msgQuantity           = "must be quantities, such as 128Mi or 100m"
	fieldOverrides        = "spec.nodeOverrides"
	fieldOverrideShare    = "spec.nodeOverrides[0].containers[0].resourcesFromAllocatable"
	fieldOverrideRequests = "spec.nodeOverrides[0].containers[0].resourcesFromAllocatable.requests"
	fieldOverrideLimits   = "spec.nodeOverrides[0].containers[0].resourcesFromAllocatable.limits"
	fieldOverrideCtr      = "spec.nodeOverrides[0].containers[0]"
)

// withOverrides sets spec.nodeOverrides.
func withOverrides(overrides ...nasv1alpha1.NodeOverride) mutation {
	return func(n *nasv1alpha1.NodeAgentSet) { n.Spec.NodeOverrides = overrides }
}

// override is an override named name for the nodes labelled gpu=true, changing the given containers.
func override(name string, containers ...nasv1alpha1.ContainerOverride) nasv1alpha1.NodeOverride {
	return nasv1alpha1.NodeOverride{
		Name:         name,
		NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"gpu": "true"}},
		Containers:   containers,
	}
}

// share is a resourcesFromAllocatable for container agent.
func share(requests, limits map[corev1.ResourceName]nasv1alpha1.Percentage,
	minimum, maximum map[corev1.ResourceName]nasv1alpha1.QuantityString) nasv1alpha1.ContainerOverride {
	return nasv1alpha1.ContainerOverride{Name: "agent", ResourcesFromAllocatable: &nasv1alpha1.AllocatableShare{
		Requests: requests, Limits: limits, Min: minimum, Max: maximum,
	}}
}

func memoryPercent(p string) map[corev1.ResourceName]nasv1alpha1.Percentage {
	return map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: nasv1alpha1.Percentage(p)}
}

func memory(q string) map[corev1.ResourceName]nasv1alpha1.QuantityString {
	return map[corev1.ResourceName]nasv1alpha1.QuantityString{corev1.ResourceMemory: nasv1alpha1.QuantityString(q)}
}

var _ = Describe("NodeAgentSet CRD validation of nodeOverrides", func() {
	var ns string

	BeforeEach(func() {
		ns = newNamespace()
	})

	DescribeTable("creating a NodeAgentSet",
		func(m mutation, want outcome) {
			n := newNAS(ns)
			m(n)
			expectOutcome(k8sClient.Create(ctx, n), want)
		},
		Entry("the mixed-fleet example is accepted", withOverrides(
			override("gpu", nasv1alpha1.ContainerOverride{
				Name: "agent", Image: "registry.example.com/agent:1.0-cuda",
				Env: []corev1.EnvVar{{Name: "GPU_METRICS", Value: "on"}},
				Resources: &corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
				},
			}),
			nasv1alpha1.NodeOverride{Name: "by-size", Containers: []nasv1alpha1.ContainerOverride{
				share(map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: "1%", corev1.ResourceCPU: "0.5%"},
					memoryPercent("2%"), memory("128Mi"), memory("2Gi")),
			}},
		), accepted),
		Entry("an override of an init container is accepted",
			all(func(n *nasv1alpha1.NodeAgentSet) {
				n.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "registry.example.com/setup:1.0"}}
			}, withOverrides(override("gpu", nasv1alpha1.ContainerOverride{Name: "setup", Image: "registry.example.com/setup:cuda"}))),
			accepted),
		Entry("0% and 100% are accepted", withOverrides(override("gpu", share(memoryPercent("0%"), memoryPercent("100%"), nil, nil))), accepted),
		Entry("min equal to max is accepted", withOverrides(override("gpu", share(memoryPercent("1%"), nil, memory("1Gi"), memory("1024Mi")))), accepted),
		Entry("two overrides with different names are accepted", withOverrides(override("gpu"), override("gpu-large")), accepted),
		Entry("duplicate override names are rejected", withOverrides(override("gpu"), override("gpu")),
			rejected(fieldOverrides, msgOverrideNames)),
		Entry("a container not in the template is rejected",
			withOverrides(override("gpu", nasv1alpha1.ContainerOverride{Name: "sidecar", Image: "x"})),
			rejected(fieldOverrides, msgOverrideContainer)),
		Entry("resources and resourcesFromAllocatable for one container are rejected",
			withOverrides(override("gpu", nasv1alpha1.ContainerOverride{
				Name:                     "agent",
				Resources:                &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
				ResourcesFromAllocatable: &nasv1alpha1.AllocatableShare{Requests: memoryPercent("1%")},
			})),
			rejected(fieldOverrideCtr, msgResourcesBoth)),
		Entry("min above max is rejected",
			withOverrides(override("gpu", share(memoryPercent("1%"), nil, memory("2Gi"), memory("1Gi")))),
			rejected(fieldOverrideShare, msgMinAboveMax)),
		Entry("a request percentage above 100% is rejected",
			withOverrides(override("gpu", share(memoryPercent("150%"), nil, nil, nil))),
			rejected(fieldOverrideRequests, msgPercent)),
		Entry("a limit percentage without % is rejected",
			withOverrides(override("gpu", share(nil, memoryPercent("5"), nil, nil))),
			rejected(fieldOverrideLimits, msgPercent)),
		Entry("a min that is not a quantity is rejected",
			withOverrides(override("gpu", share(memoryPercent("1%"), nil, memory("lots"), nil))),
			rejected(fieldOverrideShare+".min", msgQuantity)),
		Entry("a negative percentage is rejected",
			withOverrides(override("gpu", share(memoryPercent("-1%"), nil, nil, nil))),
			rejected(fieldOverrideRequests, msgPercent)),
	)
})
