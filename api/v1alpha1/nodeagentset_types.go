package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// NodeAgentSetUpdateStrategyType names how pods of an older template are replaced.
// +kubebuilder:validation:Enum=RollingUpdate;OnDelete
type NodeAgentSetUpdateStrategyType string

const (
	// RollingUpdateStrategyType replaces old pods automatically, within the rollingUpdate budget.
	RollingUpdateStrategyType NodeAgentSetUpdateStrategyType = "RollingUpdate"
	// OnDeleteStrategyType replaces an old pod only after someone deletes it.
	OnDeleteStrategyType NodeAgentSetUpdateStrategyType = "OnDelete"
)

// UnhealthyNodePolicy says whether unhealthy nodes count against a rolling update's budget.
// +kubebuilder:validation:Enum=Count;Skip
type UnhealthyNodePolicy string

const (
	// UnhealthyNodeCount counts unhealthy nodes like any other, as DaemonSets do: a node that stays
	// NotReady can hold the budget, and the rollout, for ever.
	UnhealthyNodeCount UnhealthyNodePolicy = "Count"
	// UnhealthyNodeSkip leaves unhealthy nodes out of the budget and out of the rollout's target until
	// they are healthy again; a node that broke after the rollout replaced its pod still counts.
	UnhealthyNodeSkip UnhealthyNodePolicy = "Skip"
)

// RollingUpdateNodeAgentSet is the budget of a rolling update.
//
// When maxUnavailable is omitted it is 1, unless maxSurge is non-zero, in which case it is 0: a user
// who writes only `maxSurge: 1` gets a surge rollout (upstream DaemonSets reject that manifest).
//
// +kubebuilder:validation:XValidation:rule="!has(self.maxUnavailable) || !has(self.maxSurge) || !((type(self.maxUnavailable) == int ? self.maxUnavailable != 0 : self.maxUnavailable != '0%') && (type(self.maxSurge) == int ? self.maxSurge != 0 : self.maxSurge != '0%'))",message="maxSurge and maxUnavailable cannot both be non-zero: to surge, set maxUnavailable: 0 (or omit maxUnavailable); otherwise set maxSurge: 0 (or omit maxSurge)"
// +kubebuilder:validation:XValidation:rule="!has(self.maxUnavailable) || (type(self.maxUnavailable) == int ? self.maxUnavailable != 0 : self.maxUnavailable != '0%') || (has(self.maxSurge) && (type(self.maxSurge) == int ? self.maxSurge != 0 : self.maxSurge != '0%'))",message="maxUnavailable and maxSurge cannot both be 0: set maxUnavailable to at least 1 (or omit maxUnavailable), or set maxSurge to at least 1"
type RollingUpdateNodeAgentSet struct {
	// maxUnavailable is the most eligible nodes that may be without an available agent pod during the
	// update: an absolute number or a percentage of the eligible nodes, rounded up. Omitted: 1, or 0
	// when maxSurge is non-zero.
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 && self <= 2147483647 : self.matches('^(100|[1-9]?[0-9])%$')",message="must be a non-negative integer or a percentage from 0% to 100% (an integer is at most 2147483647)"
	// +optional
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`

	// maxSurge is the most eligible nodes that may run an extra, new pod next to the old one during the
	// update (create first, then delete): an absolute number or a percentage of the eligible nodes,
	// rounded up. Omitted: 0. Only one of maxSurge and maxUnavailable may be non-zero.
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 && self <= 2147483647 : self.matches('^(100|[1-9]?[0-9])%$')",message="must be a non-negative integer or a percentage from 0% to 100% (an integer is at most 2147483647)"
	// +optional
	MaxSurge *intstr.IntOrString `json:"maxSurge,omitempty"`

	// partition is how many eligible nodes keep the pods they run when the template changes: an
	// absolute number or a percentage of the eligible nodes, rounded up. Nodes are taken in name order:
	// the first (eligible - partition) are updated, the last partition keep their pods. Lower it to
	// continue a staged rollout; 0 (the default) updates every node. A kept node whose pod is deleted
	// or fails gets a pod of the new template, as with OnDelete.
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 && self <= 2147483647 : self.matches('^(100|[1-9]?[0-9])%$')",message="must be a non-negative integer or a percentage from 0% to 100% (an integer is at most 2147483647)"
	// +optional
	Partition *intstr.IntOrString `json:"partition,omitempty"`

	// paused stops the rollout: no pod of an older template is replaced while it is true. Nodes without
	// an agent (new nodes, deleted or failed pods) still get a pod, of the current template.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// unhealthyNodePolicy says what the rolling update does with an unhealthy node: one that carries a
	// node.kubernetes.io/unreachable, not-ready or out-of-service taint, or whose Ready condition has not
	// been True for 30 seconds. Count (the default, as DaemonSets do) counts it against the budget: a
	// dead node can stop the rollout. Skip neither replaces its pod nor counts it, and the rollout
	// completes without it, listing it in status.skippedNodes; once healthy again, it is updated within
	// the budget. A node that was healthy when the rollout replaced its pod and broke after still counts.
	// +optional
	UnhealthyNodePolicy UnhealthyNodePolicy `json:"unhealthyNodePolicy,omitempty"`

	// canary first updates a few canary nodes, watches their new pods for a while, and only then lets
	// the rollout reach the other nodes (see docs/rollouts.md). Nodes outside the canary, including
	// nodes that join meanwhile, keep or get the revision the fleet runs until the canary succeeds.
	// +optional
	Canary *CanaryStrategy `json:"canary,omitempty"`
}

// CanaryFailurePolicy says what happens to the canary nodes when the canary fails.
// +kubebuilder:validation:Enum=Pause;Rollback
type CanaryFailurePolicy string

const (
	// CanaryFailurePause stops the rollout: nothing more is replaced, the canary nodes keep the new
	// pods for debugging.
	CanaryFailurePause CanaryFailurePolicy = "Pause"
	// CanaryFailureRollback gives the canary nodes pods of the revision the fleet runs back.
	CanaryFailureRollback CanaryFailurePolicy = "Rollback"
)

// CanaryStrategy is the canary stage of a rolling update. The verdict is kept in status.canary; the
// controller never writes the spec.
type CanaryStrategy struct {
	// nodes is how many eligible nodes run the new template first: an absolute number or a percentage
	// of the eligible nodes, rounded up. Omitted: 1, or every node nodeSelector matches.
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 1 && self <= 2147483647 : self.matches('^(100|[1-9][0-9]?)%$')",message="must be a positive integer or a percentage from 1% to 100% (an integer is at most 2147483647)"
	// +optional
	Nodes *intstr.IntOrString `json:"nodes,omitempty"`

	// nodeSelector limits the canary to the eligible nodes whose labels match; nodes then caps them.
	// Nodes are taken in name order, those that already run the new template first.
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="nodeSelector.matchExpressions operator must be one of In, NotIn, Exists, DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['In', 'NotIn']) || (has(e.values) && size(e.values) > 0))",message="nodeSelector.matchExpressions with operator In or NotIn must have at least one value"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['Exists', 'DoesNotExist']) || !has(e.values) || size(e.values) == 0)",message="nodeSelector.matchExpressions with operator Exists or DoesNotExist must not have values"
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// duration is how long the canary pods are watched once all of them are available, as a Go
	// duration (30s, 10m, 1h30m). Default 10m. Each number has at most 5 digits before its decimal
	// point and 9 after, and the whole at most 32 characters: the controller reads it into a
	// time.Duration, which ends at about 2,562,047 hours.
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]{1,5}(\.[0-9]{1,9})?(ms|s|m|h))+$`
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty"`

	// maxRestarts is how many container restarts of the canary pods during the watch are tolerated;
	// one more fails the canary. Default 0.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRestarts int32 `json:"maxRestarts,omitempty"`

	// onFailure is what a failed canary does: Pause (the default) replaces nothing more and leaves the
	// canary nodes with the new pods for debugging; Rollback gives them pods of the revision the fleet
	// runs back.
	// +kubebuilder:default=Pause
	// +optional
	OnFailure CanaryFailurePolicy `json:"onFailure,omitempty"`

	// autoPromote: a canary that passed its watch lets the rollout go on at once (the default). When
	// false it waits for `kubectl nas rollout promote NAME`.
	// +kubebuilder:default=true
	// +optional
	AutoPromote *bool `json:"autoPromote,omitempty"`
}

// NodeAgentSetUpdateStrategy says how pods are replaced when the template changes.
//
// +kubebuilder:validation:XValidation:rule="!has(self.rollingUpdate) || !has(self.rollingUpdate.canary) || !has(self.type) || self.type == 'RollingUpdate'",message="rollingUpdate.canary requires type RollingUpdate"
type NodeAgentSetUpdateStrategy struct {
	// type is RollingUpdate (the default) or OnDelete.
	// +kubebuilder:default=RollingUpdate
	// +optional
	Type NodeAgentSetUpdateStrategyType `json:"type,omitempty"`

	// rollingUpdate is the budget of a RollingUpdate. Ignored with OnDelete.
	// +kubebuilder:default={maxUnavailable: 1, maxSurge: 0}
	// +optional
	RollingUpdate *RollingUpdateNodeAgentSet `json:"rollingUpdate,omitempty"`
}

// NodeReadinessGateMode says whether the gate only lifts a taint the node was registered with, or also
// puts it back while the agent is unavailable.
// +kubebuilder:validation:Enum=Bootstrap;Continuous
type NodeReadinessGateMode string

const (
	// BootstrapGateMode lifts the gate taint once the node's agent pod is available, and never adds it.
	BootstrapGateMode NodeReadinessGateMode = "Bootstrap"
	// ContinuousGateMode also puts the taint (NoSchedule) back on a node whose agent has been unavailable
	// for gracePeriodSeconds, and lifts it again once the agent is available.
	ContinuousGateMode NodeReadinessGateMode = "Continuous"
)

// NodeReadinessGate keeps workloads off a node until the set's agent pod on it is available: the node
// carries a taint (registered with it, or put back in Continuous mode) that the controller lifts.
// The set's pods tolerate the taint. The controller lifts only keys that start with a prefix the
// cluster admin allowed (--readiness-gate-taint-prefixes), and a key only one set may gate.
//
// +kubebuilder:validation:XValidation:rule="self.mode == 'Continuous' || !has(self.gracePeriodSeconds)",message="gracePeriodSeconds applies only to mode Continuous",fieldPath=".gracePeriodSeconds"
// +kubebuilder:validation:XValidation:rule="self.mode == 'Continuous' || !has(self.maxTaintedNodes)",message="maxTaintedNodes applies only to mode Continuous",fieldPath=".maxTaintedNodes"
// +kubebuilder:validation:XValidation:rule="self.mode != 'Continuous' || !has(self.effect) || self.effect == 'NoSchedule'",message="mode Continuous puts the taint back with effect NoSchedule only: NoExecute would evict every workload of a node whose agent restarts",fieldPath=".effect"
type NodeReadinessGate struct {
	// taintKey is the key of the taint this set lifts: a qualified name (an optional DNS subdomain
	// prefix and '/', then a name of at most 63 characters), e.g. readiness.nodeagentset.io/log-collector.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	// +kubebuilder:validation:XValidation:rule="self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$') && (self.contains('/') ? size(self.split('/')[0]) <= 253 && size(self.split('/')[1]) <= 63 : size(self) <= 63)",message="taintKey must be a qualified name: an optional DNS subdomain prefix and '/', then a name of 1-63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric (e.g. readiness.nodeagentset.io/log-collector)"
	// +required
	TaintKey string `json:"taintKey"`

	// mode is Bootstrap (the default: lift the taint once the agent is available, never add it) or
	// Continuous (also put it back while the agent is unavailable).
	// +kubebuilder:default=Bootstrap
	// +optional
	Mode NodeReadinessGateMode `json:"mode,omitempty"`

	// effect restricts the gate to taints of this effect; omitted, taints of the key with effect
	// NoSchedule or NoExecute are lifted. Continuous puts the taint back with effect NoSchedule, the
	// only effect it accepts.
	// +kubebuilder:validation:Enum=NoSchedule;NoExecute
	// +optional
	Effect corev1.TaintEffect `json:"effect,omitempty"`

	// gracePeriodSeconds (Continuous only) is how long the agent may be unavailable before the taint
	// returns. Default 30.
	// +kubebuilder:validation:Minimum=0
	// +optional
	GracePeriodSeconds *int32 `json:"gracePeriodSeconds,omitempty"`

	// maxTaintedNodes (Continuous only) is the most nodes this set keeps tainted at once: an absolute
	// number or a percentage of the eligible nodes, rounded up. Default 10%. A template that never
	// becomes ready thus cordons at most this many nodes.
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 && self <= 2147483647 : self.matches('^(100|[1-9]?[0-9])%$')",message="must be a non-negative integer or a percentage from 0% to 100% (an integer is at most 2147483647)"
	// +optional
	MaxTaintedNodes *intstr.IntOrString `json:"maxTaintedNodes,omitempty"`
}

// NodeAgentSetSpec is the desired state of a NodeAgentSet: the fields of an apps/v1 DaemonSetSpec, with
// the same JSON names.
//
// +kubebuilder:validation:XValidation:rule="!has(self.selector.matchLabels) || (has(self.template.metadata) && has(self.template.metadata.labels) ? self.selector.matchLabels.all(k, k in self.template.metadata.labels) : size(self.selector.matchLabels) == 0)",message="selector does not match template labels: every selector.matchLabels key must be in template.metadata.labels",fieldPath=".template.metadata.labels"
// +kubebuilder:validation:XValidation:rule="!has(self.selector.matchLabels) || !has(self.template.metadata) || !has(self.template.metadata.labels) || self.selector.matchLabels.all(k, v, self.template.metadata.labels[?k].orValue(v) in [v])",message="selector does not match template labels: every selector.matchLabels value must equal template.metadata.labels at the same key",fieldPath=".template.metadata.labels"
// +kubebuilder:validation:XValidation:rule="!has(self.selector.matchExpressions) || (has(self.template.metadata) && has(self.template.metadata.labels) ? self.selector.matchExpressions.all(e, e.operator != 'In' || (e.key in self.template.metadata.labels && (!has(e.values) || size(e.values) > 8 || optional.of(self.template.metadata.labels[e.key]) in [e.values[?0], e.values[?1], e.values[?2], e.values[?3], e.values[?4], e.values[?5], e.values[?6], e.values[?7]]))) : !self.selector.matchExpressions.exists(e, e.operator == 'In'))",message="selector does not match template labels: for every selector.matchExpressions requirement with operator In, template.metadata.labels must have its key, with one of its values",fieldPath=".template.metadata.labels"
// +kubebuilder:validation:XValidation:rule="!has(self.selector.matchExpressions) || !has(self.template.metadata) || !has(self.template.metadata.labels) || self.selector.matchExpressions.all(e, e.operator != 'NotIn' || !(e.key in self.template.metadata.labels) || !has(e.values) || size(e.values) > 8 || !(optional.of(self.template.metadata.labels[e.key]) in [e.values[?0], e.values[?1], e.values[?2], e.values[?3], e.values[?4], e.values[?5], e.values[?6], e.values[?7]]))",message="selector does not match template labels: for every selector.matchExpressions requirement with operator NotIn, template.metadata.labels must not have its key with one of its values",fieldPath=".template.metadata.labels"
// +kubebuilder:validation:XValidation:rule="!has(self.selector.matchExpressions) || (has(self.template.metadata) && has(self.template.metadata.labels) ? self.selector.matchExpressions.all(e, e.operator != 'Exists' || e.key in self.template.metadata.labels) : !self.selector.matchExpressions.exists(e, e.operator == 'Exists'))",message="selector does not match template labels: for every selector.matchExpressions requirement with operator Exists, template.metadata.labels must have its key",fieldPath=".template.metadata.labels"
// +kubebuilder:validation:XValidation:rule="!has(self.selector.matchExpressions) || !has(self.template.metadata) || !has(self.template.metadata.labels) || self.selector.matchExpressions.all(e, e.operator != 'DoesNotExist' || !(e.key in self.template.metadata.labels))",message="selector does not match template labels: for every selector.matchExpressions requirement with operator DoesNotExist, template.metadata.labels must not have its key",fieldPath=".template.metadata.labels"
// +kubebuilder:validation:XValidation:rule="!has(self.nodeOverrides) || !has(self.template.spec) || !has(self.template.spec.containers) || size(self.template.spec.containers) > 8 || (has(self.template.spec.initContainers) && size(self.template.spec.initContainers) > 8) || self.nodeOverrides.all(o, !has(o.containers) || o.containers.all(c, optional.of(c.name) in [self.template.spec.containers[?0].name, self.template.spec.containers[?1].name, self.template.spec.containers[?2].name, self.template.spec.containers[?3].name, self.template.spec.containers[?4].name, self.template.spec.containers[?5].name, self.template.spec.containers[?6].name, self.template.spec.containers[?7].name, self.template.spec.?initContainers[?0].name, self.template.spec.?initContainers[?1].name, self.template.spec.?initContainers[?2].name, self.template.spec.?initContainers[?3].name, self.template.spec.?initContainers[?4].name, self.template.spec.?initContainers[?5].name, self.template.spec.?initContainers[?6].name, self.template.spec.?initContainers[?7].name]))",message="every nodeOverrides container must name a container or init container of the template",fieldPath=".nodeOverrides"
type NodeAgentSetSpec struct {
	// selector is a label query over the pods of this set. It must match the template's labels, must
	// not be empty and cannot be changed after creation.
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="empty selector is invalid for a NodeAgentSet: set matchLabels or matchExpressions"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="selector.matchExpressions operator must be one of In, NotIn, Exists, DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['In', 'NotIn']) || (has(e.values) && size(e.values) > 0))",message="selector.matchExpressions with operator In or NotIn must have at least one value"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['Exists', 'DoesNotExist']) || !has(e.values) || size(e.values) == 0)",message="selector.matchExpressions with operator Exists or DoesNotExist must not have values"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="selector is immutable"
	// +required
	Selector *metav1.LabelSelector `json:"selector"`

	// template is the pod that runs on every eligible node. The controller adds the automatic
	// tolerations and pins the pod to its node through required node affinity; everything else,
	// including host access, is passed through untouched.
	// +kubebuilder:validation:XValidation:rule="has(self.spec) && has(self.spec.containers) && size(self.spec.containers) > 0",message="template.spec.containers must name at least one container",fieldPath=".spec.containers"
	// +kubebuilder:validation:XValidation:rule="!has(self.spec) || !has(self.spec.restartPolicy) || self.spec.restartPolicy == 'Always'",message="template.spec.restartPolicy must be Always (or omitted): agent pods are restarted in place",fieldPath=".spec.restartPolicy"
	// +kubebuilder:validation:XValidation:rule="!has(self.spec) || !has(self.spec.activeDeadlineSeconds)",message="template.spec.activeDeadlineSeconds is not supported: agent pods run until replaced; remove it",fieldPath=".spec.activeDeadlineSeconds"
	// +required
	Template corev1.PodTemplateSpec `json:"template"`

	// updateStrategy says how pods are replaced when the template changes.
	// +kubebuilder:default={type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}
	// +optional
	UpdateStrategy NodeAgentSetUpdateStrategy `json:"updateStrategy,omitempty"`

	// minReadySeconds is how long a new pod must be Ready, with no container crashing, before it
	// counts as available. Default 0: available as soon as it is Ready.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MinReadySeconds int32 `json:"minReadySeconds,omitempty"`

	// revisionHistoryLimit is how many old ControllerRevisions to keep for rollback. Revisions still
	// used by a pod are never deleted. Default 10.
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=0
	// +optional
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`

	// progressDeadlineSeconds is how long a rollout may go without progress (a node updated, or a new
	// pod becoming available) before the Progressing condition turns False with reason
	// ProgressDeadlineExceeded, naming the stuck nodes. The rollout itself goes on. Not counted while
	// paused. Default 600.
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=1
	// +optional
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// nodeReadinessGate keeps workloads off each node until the set's agent pod on it is available,
	// through a taint the controller lifts (and, in Continuous mode, puts back).
	// +optional
	NodeReadinessGate *NodeReadinessGate `json:"nodeReadinessGate,omitempty"`
	// nodeOverrides change the pod of some nodes: they are tried in order and the first whose
	// nodeSelector matches the node's labels is applied to the template for that node. A node that
	// matches none runs the template as is. Overrides do not change which nodes run the agent. The
	// revision covers the template and the overrides; editing one override replaces only the pods
	// whose rendered spec changes.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(o, self.exists_one(p, p.name == o.name))",message="nodeOverrides names must be unique"
	// +optional
	NodeOverrides []NodeOverride `json:"nodeOverrides,omitempty"`
}

// NodeOverride changes the pod of the nodes its selector matches.
type NodeOverride struct {
	// name identifies the override; pods record it in the apps.nodeagentset.io/override label.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`

	// nodeSelector selects the nodes by label; {} selects every node. The API server does not check its
	// operators (CEL over the expressions of up to 16 overrides exceeds the CRD's cost budget): a
	// selector it cannot parse matches no node, and kubectl nas why names the error on every node.
	// +required
	NodeSelector metav1.LabelSelector `json:"nodeSelector"`

	// containers are the changes per container (or init container) of the template, by name.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	Containers []ContainerOverride `json:"containers,omitempty"`
}

// ContainerOverride changes one container of the template.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.resources) && has(self.resourcesFromAllocatable))",message="set resources or resourcesFromAllocatable, not both"
type ContainerOverride struct {
	// name is the container's name in the template (containers or initContainers).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`

	// image replaces the container's image.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// env is merged by name: a variable the template has is replaced in place, new ones are appended
	// sorted by name (they may refer to the template's variables with $(NAME), not to each other).
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// resources are merged by resource name into the container's requests and limits.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// resourcesFromAllocatable sizes requests and limits as a share of the node's allocatable, merged by
	// resource name into the container's requests and limits.
	// +optional
	ResourcesFromAllocatable *AllocatableShare `json:"resourcesFromAllocatable,omitempty"`
}

// AllocatableShare sizes a container from its node's status.allocatable: each percentage of the
// allocatable quantity is rounded down (cpu to whole millicores, memory, hugepages and
// ephemeral-storage to whole Mi, other resources to whole units; at least one unit when the
// percentage is above 0), then clamped to min and max. A limit below its request is raised to it.
//
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min.all(k, !(k in self.max) || !isQuantity(self.min[k]) || !isQuantity(self.max[k]) || quantity(self.min[k]).compareTo(quantity(self.max[k])) <= 0)",message="min must not be above max for any resource"
type AllocatableShare struct {
	// requests are percentages of the allocatable, such as "1%" or "0.5%", by resource name.
	// +kubebuilder:validation:MaxProperties=8
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].matches('^(100([.]0+)?|[0-9]{1,2}([.][0-9]{1,4})?)%$'))",message="percentages must be from 0% to 100%, such as 1% or 0.5%"
	// +optional
	Requests map[corev1.ResourceName]Percentage `json:"requests,omitempty"`

	// limits are percentages of the allocatable, such as "2%", by resource name.
	// +kubebuilder:validation:MaxProperties=8
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].matches('^(100([.]0+)?|[0-9]{1,2}([.][0-9]{1,4})?)%$'))",message="percentages must be from 0% to 100%, such as 1% or 0.5%"
	// +optional
	Limits map[corev1.ResourceName]Percentage `json:"limits,omitempty"`

	// min is the least quantity per resource, such as "128Mi", whatever the node's size.
	// +kubebuilder:validation:MaxProperties=8
	// +kubebuilder:validation:XValidation:rule="self.all(k, isQuantity(self[k]))",message="must be quantities, such as 128Mi or 100m"
	// +optional
	Min map[corev1.ResourceName]QuantityString `json:"min,omitempty"`

	// max is the largest quantity per resource, such as "2Gi", whatever the node's size.
	// +kubebuilder:validation:MaxProperties=8
	// +kubebuilder:validation:XValidation:rule="self.all(k, isQuantity(self[k]))",message="must be quantities, such as 128Mi or 100m"
	// +optional
	Max map[corev1.ResourceName]QuantityString `json:"max,omitempty"`
}

// Percentage is a share such as "1%" or "0.5%", from 0% to 100%.
// +kubebuilder:validation:MaxLength=9
type Percentage string

// QuantityString is a resource quantity written as a string, such as "128Mi".
// +kubebuilder:validation:MaxLength=32
type QuantityString string

// NodeAgentSetStatus is the observed state of a NodeAgentSet, recomputed from the cluster on every
// reconcile.
type NodeAgentSetStatus struct {
	// currentNumberScheduled is the number of eligible nodes that run at least one agent pod.
	CurrentNumberScheduled int32 `json:"currentNumberScheduled"`

	// numberMisscheduled is the number of nodes that run an agent pod but are not eligible.
	NumberMisscheduled int32 `json:"numberMisscheduled"`

	// desiredNumberScheduled is the number of eligible nodes.
	DesiredNumberScheduled int32 `json:"desiredNumberScheduled"`

	// numberReady is the number of eligible nodes whose agent pod is Ready.
	NumberReady int32 `json:"numberReady"`

	// observedGeneration is the generation last fully reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// updatedNumberScheduled is the number of eligible nodes whose agent pod runs the current template.
	// +optional
	UpdatedNumberScheduled int32 `json:"updatedNumberScheduled"`

	// numberAvailable is the number of eligible nodes whose agent pod has been Ready for
	// minReadySeconds.
	// +optional
	NumberAvailable int32 `json:"numberAvailable"`

	// numberUnavailable is desiredNumberScheduled minus numberAvailable.
	// +optional
	NumberUnavailable int32 `json:"numberUnavailable"`

	// updateRevision is the controller-revision-hash of the current template's ControllerRevision: the
	// revision every new pod gets.
	// +optional
	UpdateRevision string `json:"updateRevision,omitempty"`

	// currentRevision is the controller-revision-hash most agent pods run; it equals updateRevision
	// once a rollout is complete.
	// +optional
	CurrentRevision string `json:"currentRevision,omitempty"`

	// collisionCount counts hash collisions of the template's ControllerRevision name; it is mixed
	// into the hash to find a free name.
	// +optional
	CollisionCount *int32 `json:"collisionCount,omitempty"`

	// numberGated is the number of eligible nodes that carry the nodeReadinessGate taint (once the
	// controller's node writes of its last pass land).
	// +optional
	NumberGated int32 `json:"numberGated,omitempty"`
	// unavailableBreakdown breaks numberUnavailable down by reason, most nodes first: the counts sum
	// to numberUnavailable. Each reason names its first nodes by name.
	// +listType=map
	// +listMapKey=reason
	// +kubebuilder:validation:MaxItems=64
	// +optional
	UnavailableBreakdown []UnavailableReason `json:"unavailableBreakdown,omitempty"`

	// topUnavailableReason is the reason of unavailableBreakdown's first entry: why most unavailable
	// nodes have no available agent. Empty when every eligible node runs an available agent.
	// +optional
	TopUnavailableReason string `json:"topUnavailableReason,omitempty"`

	// skippedNodes are the unhealthy nodes the rollout leaves out with unhealthyNodePolicy Skip.
	// +optional
	SkippedNodes *SkippedNodes `json:"skippedNodes,omitempty"`

	// canary is the verdict of the canary of the current template, when the strategy has one. The
	// controller alone writes it; a person's decision is the annotation
	// apps.nodeagentset.io/canary-decision (kubectl nas rollout promote|abort|retry).
	// +optional
	Canary *CanaryStatus `json:"canary,omitempty"`

	// conditions are the latest observations of the set's state. The controller owns the types it
	// documents (Available, ...) and keeps conditions of other types as it finds them.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// MaxNodesPerReason caps the node names status lists per unavailable reason and for skipped nodes.
const MaxNodesPerReason = 5

// UnavailableReason is one reason eligible nodes have no available agent pod.
type UnavailableReason struct {
	// reason is the planner's reason code, such as NodeNotReady, InsufficientResources, ImagePull,
	// CrashLoop, PodNotReady, PodTerminating, FailedPodBackoff or NodeShutdown.
	// +kubebuilder:validation:MaxLength=64
	// +required
	Reason string `json:"reason"`
	// count is how many eligible nodes have no available agent pod for this reason.
	// +required
	Count int32 `json:"count"`
	// nodes are the first nodes with this reason, by name (at most 5).
	// +kubebuilder:validation:MaxItems=5
	// +optional
	Nodes []string `json:"nodes,omitempty"`
}

// SkippedNodes are the unhealthy nodes a rollout leaves out (unhealthyNodePolicy Skip).
type SkippedNodes struct {
	// count is how many nodes the rollout skips.
	// +required
	Count int32 `json:"count"`
	// nodes are the first skipped nodes, by name (at most 5).
	// +kubebuilder:validation:MaxItems=5
	// +optional
	Nodes []string `json:"nodes,omitempty"`
}

// CanaryPhase is where the canary of a revision stands.
type CanaryPhase string

const (
	// CanaryProgressing means the canary nodes are being updated.
	CanaryProgressing CanaryPhase = "Progressing"
	// CanaryWatching means every canary node runs an available pod of the revision, watched for duration.
	CanaryWatching CanaryPhase = "Watching"
	// CanaryWaitingForPromotion means the watch passed and autoPromote is false: the rollout waits for
	// kubectl nas rollout promote.
	CanaryWaitingForPromotion CanaryPhase = "WaitingForPromotion"
	// CanarySucceeded means the rollout goes on to every node.
	CanarySucceeded CanaryPhase = "Succeeded"
	// CanaryFailed means the canary failed; onFailure says what happened to the canary nodes.
	CanaryFailed CanaryPhase = "Failed"
	// CanaryAborted means a person aborted the canary: the canary nodes get the fleet's revision back.
	CanaryAborted CanaryPhase = "Aborted"
)

// CanaryStatus is the verdict of the canary of one revision.
type CanaryStatus struct {
	// revision is the controller-revision-hash under test.
	Revision string `json:"revision"`

	// stableRevision is the controller-revision-hash the fleet ran when the canary started: what the
	// other nodes keep or get until the canary succeeds, and what Rollback restores.
	// +optional
	StableRevision string `json:"stableRevision,omitempty"`

	// phase is where the canary stands.
	Phase CanaryPhase `json:"phase"`

	// reason is why the canary failed: TooManyRestarts, PodUnavailable or ProgressDeadlineExceeded.
	// +optional
	Reason string `json:"reason,omitempty"`

	// startedAt is when the canary of this revision (or its last retry) started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`

	// watchStartedAt is when every canary pod was first available: the watch runs from then for duration.
	// +optional
	WatchStartedAt *metav1.Time `json:"watchStartedAt,omitempty"`

	// completedAt is when the canary reached its verdict: succeeded (the rollout's progress deadline
	// counts from then), failed or aborted.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`

	// unavailableSince is when a canary node lost its available pod during the watch.
	// +optional
	UnavailableSince *metav1.Time `json:"unavailableSince,omitempty"`

	// nodes are the canary nodes, chosen when the canary started.
	// +listType=atomic
	// +optional
	Nodes []string `json:"nodes,omitempty"`

	// restartBaseline is the restart count of every canary pod (by name) when the watch started: the
	// restarts during the watch are counted from it, also across controller restarts.
	// +mapType=atomic
	// +optional
	RestartBaseline map[string]int32 `json:"restartBaseline,omitempty"`

	// restarts is how many container restarts of the canary pods the watch has seen.
	// +optional
	Restarts int32 `json:"restarts,omitempty"`

	// decision is the value of the apps.nodeagentset.io/canary-decision annotation last acted on.
	// +optional
	Decision string `json:"decision,omitempty"`

	// message says in words where the canary stands.
	// +optional
	Message string `json:"message,omitempty"`
}

// NodeAgentSet runs exactly one pod of its template on every eligible node.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=nas,categories=all
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=".status.desiredNumberScheduled"
// +kubebuilder:printcolumn:name="Current",type=integer,JSONPath=".status.currentNumberScheduled"
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=".status.numberReady"
// +kubebuilder:printcolumn:name="Up-to-date",type=integer,JSONPath=".status.updatedNumberScheduled"
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=".status.numberAvailable"
// +kubebuilder:printcolumn:name="Unavailable-Reason",type=string,JSONPath=".status.topUnavailableReason"
// +kubebuilder:printcolumn:name="Node Selector",type=string,JSONPath=".spec.template.spec.nodeSelector"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="Containers",type=string,JSONPath=".spec.template.spec.containers[*].name",priority=1
// +kubebuilder:printcolumn:name="Images",type=string,JSONPath=".spec.template.spec.containers[*].image",priority=1
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=".spec.selector",priority=1
type NodeAgentSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec NodeAgentSetSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status NodeAgentSetStatus `json:"status,omitempty"`
}

// NodeAgentSetList is a list of NodeAgentSets.
//
// +kubebuilder:object:root=true
type NodeAgentSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeAgentSet `json:"items"`
}
