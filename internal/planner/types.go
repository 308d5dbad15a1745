package planner

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// Input is everything the planner looks at. It is a snapshot: the planner never changes it.
type Input struct {
	// Set is the NodeAgentSet; its spec decides placement and budgets.
	Set *nasv1alpha1.NodeAgentSet
	// Hash is the controller-revision-hash of the current template.
	Hash string
	// Nodes are all nodes of the cluster.
	Nodes []*corev1.Node
	// Pods are the set's pods: owned pods whose labels match the selector, plus adopted orphans.
	Pods []*corev1.Pod
	// Now is the time of the snapshot.
	Now time.Time
	// RolloutStartedAt is when the current rollout began: the current revision became current, or the
	// spec last changed. Progress is measured from it at the earliest.
	RolloutStartedAt time.Time
	// FailedPodBackoffUntil maps a node name to the time before which a failed agent pod on it must
	// not be deleted again, nor replaced (rule 30). Nodes not in the map are not in backoff.
	FailedPodBackoffUntil map[string]time.Time
	// Template is the controller's latest verdict on the current template (a server-side dry-run of
	// its pod). The zero value means "not checked yet".
	Template TemplateVerdict
	// Gate is what the controller knows about the set's nodeReadinessGate beyond the set (gate.go).
	Gate GateInput
	// Revisions are the pod templates of the set's older revisions, by hash: a canary holds nodes at
	// one of them (the stable revision); the plan hands on the ones its creates use.
	Revisions map[string]*corev1.PodTemplateSpec
	// RevisionOverrides are the nodeOverrides of the older revisions that had any, by hash: a pod a
	// canary holds at such a revision is built from that revision's override for its node.
	RevisionOverrides map[string][]nasv1alpha1.NodeOverride
}

// TemplateState is what the API server said of the current template's pod.
type TemplateState string

const (
	// TemplateUnchecked means there is no verdict for this template yet. A plan that would create pods asks for a
	// check instead (Plan.CheckTemplateOn) and creates nothing.
	TemplateUnchecked TemplateState = ""
	// TemplateAccepted means the dry-run create succeeded.
	TemplateAccepted TemplateState = "Accepted"
	// TemplateRejected means the API server definitely refuses the pod (validation, Pod Security, an
	// admission webhook's or policy's denial). No creates until RecheckAt.
	TemplateRejected TemplateState = "Rejected"
	// TemplateServiceAccountMissing means the pod's ServiceAccount does not exist (yet). No creates until
	// RecheckAt, which comes soon: the account is usually created a moment later.
	TemplateServiceAccountMissing TemplateState = "ServiceAccountMissing"
	// TemplateCheckFailed means the check itself failed (throttled, a server error, a timeout). Creates wait
	// until RecheckAt; deletes go ahead.
	TemplateCheckFailed TemplateState = "CheckFailed"
)

// TemplateVerdict is the API server's answer about the current template.
type TemplateVerdict struct {
	State TemplateState
	// Message is the API server's words, for Rejected, ServiceAccountMissing and CheckFailed.
	Message string
	// RecheckAt is when a verdict other than Accepted may be asked again; the plan requeues for it.
	RecheckAt time.Time
}

// DeleteReason says why the plan deletes a pod; the controller turns it into an event.
type DeleteReason string

const (
	// DeleteFailed means the pod failed; it is replaced on a later pass (rule 22).
	DeleteFailed DeleteReason = "Failed"
	// DeleteSucceeded means the pod exited; agents must run until replaced (rule 22).
	DeleteSucceeded DeleteReason = "Succeeded"
	// DeleteDuplicate means another pod of the set already runs on the node (rules 23, 24).
	DeleteDuplicate DeleteReason = "Duplicate"
	// DeleteNodeIneligible means the node no longer qualifies and must not keep the pod (rule 25).
	DeleteNodeIneligible DeleteReason = "NodeIneligible"
	// DeleteNodeGone means the pod's node no longer exists (rule 27).
	DeleteNodeGone DeleteReason = "NodeGone"
	// DeleteSurgeReplaced means a new pod on the node is available, so the old one goes (rule 24).
	DeleteSurgeReplaced DeleteReason = "SurgeReplaced"
	// DeleteOutdated means the rolling update replaces this old pod (rules 46, 47).
	DeleteOutdated DeleteReason = "Outdated"
)

// Deletion is one pod the plan deletes.
type Deletion struct {
	Pod    *corev1.Pod
	Node   string
	Reason DeleteReason
}

// Plan is what the controller should do now.
type Plan struct {
	// Creates lists the nodes that get a new agent pod of the current revision, in node-name order.
	// It is empty unless the API server accepted the current template (see Template).
	Creates []string
	// CheckTemplateOn names the node on which the controller should check the current template (a
	// server-side dry-run create of its pod) before anything is created: the plan would create pods,
	// but the template is unchecked or its recheck is due. The controller plans again with the verdict.
	CheckTemplateOn string
	// Template echoes Input.Template: the verdict this plan was made with.
	Template TemplateVerdict
	// Deletes lists the pods to delete, in node-name order.
	Deletes []Deletion
	// RequeueAfter is how long until the world changes without an event telling us (a failed pod's
	// backoff ends, a Ready pod becomes available, the progress deadline passes, a template recheck
	// is due); zero when nothing is pending.
	RequeueAfter time.Duration
	// Status holds the counters computed from the snapshot (rule 50).
	Status Counters
	// CurrentRevision is the revision hash most live pods carry (Hash when there are no pods).
	CurrentRevision string
	// Rollout summarises the progress of the current template.
	Rollout Rollout
	// Strategy is the update strategy resolved against the eligible nodes.
	Strategy Strategy
	// Unavailable breaks the eligible nodes without an available agent pod down by reason code, most
	// nodes first: the counts sum to Status.NumberUnavailable (breakdown.go).
	Unavailable []UnavailableGroup
	// Overrides holds, keyed by name, what each eligible node should run when the set has
	// nodeOverrides: the override that applies (or none), its rendered template and spec hash, and why
	// the earlier overrides did not match. Empty for a set without overrides.
	Overrides map[string]NodeOverride
	// CheckOverridesOn names, when CheckTemplateOn is set and the set has overrides, one more node per
	// other override applied to an eligible node (the first by name): the controller dry-runs each
	// node's pod too, so the check covers every override in use.
	CheckOverridesOn []string
	// Relabels lists the pods that equal what their node should run but carry an older revision hash
	// (an edit of another override, or of nothing this node runs): the controller sets their
	// controller-revision-hash label to the current hash instead of replacing them.
	Relabels []Relabel
	// Nodes holds, keyed by name, every node that is excluded from the set, should run the agent but
	// has no available pod, or runs an available pod of an older template: what status messages and
	// tools explain, each with its typed reason. Nodes with an available pod of the current template
	// are left out.
	Nodes map[string]NodeState
	// Gate is the node readiness gate's verdict and node writes (gate.go).
	Gate GatePlan
	// Canary is the next status.canary: the verdict of the canary of the current template; nil when
	// the strategy has none.
	Canary *nasv1alpha1.CanaryStatus
	// CreateRevisions maps a node of Creates to the hash of the revision its pod is made of, when
	// that is not the current one: a canary holds the node at the stable revision.
	CreateRevisions map[string]string
	// RevisionTemplates are the templates of the revisions CreateRevisions names, from Input.Revisions.
	RevisionTemplates map[string]*corev1.PodTemplateSpec
	// CreateOverrides is what each node of CreateRevisions whose revision had nodeOverrides gets: that
	// revision's override for the node, rendered as Overrides renders the current one's.
	CreateOverrides map[string]NodeOverride
}

// Relabel is a pod whose controller-revision-hash label the controller sets to the current hash.
type Relabel struct {
	Pod  *corev1.Pod
	Node string
}

// Strategy is the update strategy resolved against the number of eligible nodes: what the rollout
// actually does, for consumers that must not scale or decide again.
type Strategy struct {
	Type nasv1alpha1.NodeAgentSetUpdateStrategyType
	// MaxUnavailable and MaxSurge are the budgets in nodes.
	MaxUnavailable int32
	MaxSurge       int32
	// Surge means the rolling update creates first (maxSurge > 0 and no host port conflict).
	Surge bool
	// Paused means rollingUpdate.paused replaces nothing.
	Paused bool
	// Partition is spec's partition in nodes, at most the eligible nodes.
	Partition int32
	// FirstPartitionedNode is the first node, by name, the partition holds; empty without one.
	FirstPartitionedNode string
	// ProgressDeadline is spec.progressDeadlineSeconds, else DefaultProgressDeadline.
	ProgressDeadline time.Duration
	// HostPortFallback: maxSurge was asked for, but the template binds host ports, so the rolling
	// update replaces delete-first with a safe budget (MaxUnavailable).
	HostPortFallback bool
	// HostPorts are the host ports the template binds.
	HostPorts []int32
}

// Counters are the status counters of rule 50.
type Counters struct {
	DesiredNumberScheduled int32
	CurrentNumberScheduled int32
	NumberMisscheduled     int32
	NumberReady            int32
	NumberAvailable        int32
	NumberUnavailable      int32
	UpdatedNumberScheduled int32
}

// NodeState is a node that is excluded or lacks an available agent pod.
type NodeState struct {
	Placement Placement
	// Reason says, as data, why the node is not healthy or not updated.
	Reason NodeReason
	// Node is the node itself.
	Node *corev1.Node
	// Pod is the node's oldest agent pod, the one status looks at; nil when there is none.
	Pod *corev1.Pod
	// Partitioned means the rollout's partition holds the node (it runs a pod of an older template).
	Partitioned bool
}

// Rollout is where the current template's rollout stands.
type Rollout struct {
	// Target is how many eligible nodes the rollout updates: all of them less the partition.
	Target int32
	// Partition is how many eligible nodes the partition holds: the last ones by name among those
	// that still run a pod of an older template.
	Partition int32
	// FirstPartitionedNode is the first node, by name, of the partition; empty without one.
	FirstPartitionedNode string
	// UpdatedAvailable counts the nodes, outside the partition, that run an available pod of the
	// current template and no older pod.
	UpdatedAvailable int32
	// Complete means UpdatedAvailable reached Target.
	Complete bool
	// Paused means rollingUpdate.paused holds old pods back.
	Paused bool
	// LastProgress is the latest moment the rollout moved: its start, a pod of the current template
	// created, or one becoming available.
	LastProgress time.Time
	// Phase is the rollout verdict.
	Phase RolloutPhase
	// Deadline is when the rollout counts as stuck without progress; zero when no deadline applies
	// (complete, paused, OnDelete, or no start time).
	Deadline time.Time
	// Stuck lists the nodes, outside the partition, whose current-template pod is missing or not
	// available, in name order, with why.
	Stuck []StuckNode
	// Skipped lists the unhealthy nodes the rollout leaves out (unhealthyNodePolicy Skip), in name
	// order, each with reason SkippedUnhealthyNode. They are not in Target.
	Skipped []StuckNode
}

// UnavailableGroup is one reason code of Plan.Unavailable: how many eligible nodes have no available
// agent pod for it, and the first of them by name.
type UnavailableGroup struct {
	Code  ReasonCode
	Count int32
	// Nodes are the first nodes with the code, by name, at most MaxNodesPerGroup.
	Nodes []string
}

// StuckNode is a node the rollout waits for.
type StuckNode struct {
	Node   string
	Reason NodeReason
}

// NodeReason is why a node is not healthy, as data: a code and the details its sentence needs. Render
// it with String (render.go); never parse the sentence.
type NodeReason struct {
	Code ReasonCode
	// Taint is the untolerated taint (TaintNotTolerated).
	Taint *corev1.Taint
	// NodeName is the node the template's spec.nodeName names (NodeNameMismatch).
	NodeName string
	// SelectorKey and SelectorValue are the first nodeSelector entry that fails (NodeSelectorMismatch);
	// empty when none could be named.
	SelectorKey   string
	SelectorValue string
	// AffinityTerms is how many required node affinity terms there are, none matching (NodeAffinityMismatch).
	AffinityTerms int
	// Container, WaitingReason and Restarts describe a waiting container (ImagePull, CrashLoop,
	// ContainerWaiting).
	Container     string
	WaitingReason string
	Restarts      int32
	// SchedulerReason is the PodScheduled condition's reason (Unschedulable).
	SchedulerReason string
	// Message is the extra words of the cause: the scheduler's message (Unschedulable), the pod's
	// status reason (PodFailed, FailedPodBackoff), the API server's words (TemplateRejected,
	// ServiceAccountMissing).
	Message string
	// Until is when the wait ends: the backoff (FailedPodBackoff), availability (WaitingForMinReadySeconds).
	Until time.Time
	// Resources are the resources the node lacks, as the scheduler names them: cpu, memory, pods, ...
	// (InsufficientResources).
	Resources []string
	// Since is when the node broke (SkippedUnhealthyNode); zero when unknown.
	Since time.Time
}

// ReasonCode says, as data, why a node is not healthy: why it is not eligible, why it has no
// available agent pod, or why its available pod is not of the current template. Consumers (status
// conditions, events, metrics, kubectl nas) switch on the code and render sentences through the one
// renderer (render.go); none of them matches on a sentence.
type ReasonCode string

const (
	// Not eligible (Placement.ShouldRun is false).

	// ReasonNodeNameMismatch means the template's spec.nodeName names another node.
	ReasonNodeNameMismatch ReasonCode = "NodeNameMismatch"
	// ReasonNodeSelectorMismatch means a nodeSelector entry does not match the node's labels.
	ReasonNodeSelectorMismatch ReasonCode = "NodeSelectorMismatch"
	// ReasonNodeAffinityMismatch means no term of the required node affinity matches the node.
	ReasonNodeAffinityMismatch ReasonCode = "NodeAffinityMismatch"
	// ReasonTaintNotTolerated means the node has a NoSchedule or NoExecute taint the template does not tolerate.
	ReasonTaintNotTolerated ReasonCode = "TaintNotTolerated"

	// Eligible, without an available agent pod.

	// ReasonNoPod means no agent pod yet; the controller creates it.
	ReasonNoPod ReasonCode = "NoPod"
	// ReasonTemplateRejected means no pod can be created: the API server refuses the template.
	ReasonTemplateRejected ReasonCode = "TemplateRejected"
	// ReasonServiceAccountMissing means no pod can be created yet: its ServiceAccount does not exist.
	ReasonServiceAccountMissing ReasonCode = "ServiceAccountMissing"
	// ReasonFailedBackoff means the agent pod failed and its replacement waits for the backoff (Until).
	ReasonFailedBackoff ReasonCode = "FailedPodBackoff"
	// ReasonPodFailed means the agent pod failed; it is replaced.
	ReasonPodFailed ReasonCode = "PodFailed"
	// ReasonPodSucceeded means the agent pod exited; agents must run, so it is replaced.
	ReasonPodSucceeded ReasonCode = "PodSucceeded"
	// ReasonPodTerminating means the agent pod is being deleted.
	ReasonPodTerminating ReasonCode = "PodTerminating"
	// ReasonUnschedulable means the scheduler cannot place the pod (SchedulerReason, Message).
	ReasonUnschedulable ReasonCode = "Unschedulable"
	// ReasonInsufficientResources means the scheduler cannot place the pod because the node is full
	// (Resources, SchedulerReason, Message).
	ReasonInsufficientResources ReasonCode = "InsufficientResources"
	// ReasonNodeShutdown means the kubelet terminated the agent pod for a graceful node shutdown and the
	// node is not Ready: the pod stays, and is replaced once the node is Ready again.
	ReasonNodeShutdown ReasonCode = "NodeShutdown"
	// ReasonNodeNotReady means the node's Ready condition is not True.
	ReasonNodeNotReady ReasonCode = "NodeNotReady"
	// ReasonImagePull means a container's image cannot be pulled (Container, WaitingReason).
	ReasonImagePull ReasonCode = "ImagePull"
	// ReasonCrashLoop means a container keeps crashing (Container, Restarts).
	ReasonCrashLoop ReasonCode = "CrashLoop"
	// ReasonContainerWaiting means a container waits for another reason (Container, WaitingReason).
	ReasonContainerWaiting ReasonCode = "ContainerWaiting"
	// ReasonNotScheduled means the pod is not bound to the node yet.
	ReasonNotScheduled ReasonCode = "NotScheduled"
	// ReasonPodStarting means the pod is bound and starting.
	ReasonPodStarting ReasonCode = "PodStarting"
	// ReasonPodNotReady means the pod runs but is not Ready.
	ReasonPodNotReady ReasonCode = "PodNotReady"
	// ReasonMinReadySeconds means the pod is Ready and counts as available at Until.
	ReasonMinReadySeconds ReasonCode = "WaitingForMinReadySeconds"

	// Eligible, with an available pod of an older template.

	// ReasonPartitioned means the node is in the rollout's partition and keeps its pod.
	ReasonPartitioned ReasonCode = "Partitioned"
	// ReasonPaused means the rollout is paused.
	ReasonPaused ReasonCode = "Paused"
	// ReasonOnDelete means the strategy is OnDelete: the pod is replaced once someone deletes it.
	ReasonOnDelete ReasonCode = "OnDelete"
	// ReasonWaitingForBudget means the rolling update replaces the pod once the budget allows.
	ReasonWaitingForBudget ReasonCode = "WaitingForBudget"
	// ReasonSkippedUnhealthy means the node is unhealthy and unhealthyNodePolicy Skip leaves it out of
	// the rollout until it is healthy again (Taint: the health taint, if any; Since). Rollout.Skipped
	// carries it too.
	ReasonSkippedUnhealthy ReasonCode = "SkippedUnhealthyNode"
	// ReasonWaitingForCanary means the node is outside the canary: it keeps the fleet's revision until
	// the canary succeeds.
	ReasonWaitingForCanary ReasonCode = "WaitingForCanary"
	// ReasonCanaryRolledBack means the node is a canary node of a failed or aborted canary: it runs the
	// fleet's revision again.
	ReasonCanaryRolledBack ReasonCode = "CanaryRolledBack"
)

// RolloutPhase is the rollout verdict.
type RolloutPhase string

const (
	// RolloutComplete means every eligible node outside the partition runs an available pod of the current template.
	RolloutComplete RolloutPhase = "Complete"
	// RolloutProgressing means old pods are being replaced, within the progress deadline.
	RolloutProgressing RolloutPhase = "RollingOut"
	// RolloutPaused means rollingUpdate.paused holds old pods back.
	RolloutPaused RolloutPhase = "Paused"
	// RolloutWaitingForDeletion means the strategy is OnDelete and old pods remain.
	RolloutWaitingForDeletion RolloutPhase = "WaitingForDeletion"
	// RolloutDeadlineExceeded means no progress for the progress deadline.
	RolloutDeadlineExceeded RolloutPhase = "ProgressDeadlineExceeded"
	// RolloutCanary means the rollout is held at the canary nodes until the canary passes.
	RolloutCanary RolloutPhase = "Canary"
	// RolloutCanaryFailed means the canary failed: the rollout goes no further.
	RolloutCanaryFailed RolloutPhase = "CanaryFailed"
	// RolloutCanaryAborted means a person aborted the canary: the rollout goes no further.
	RolloutCanaryAborted RolloutPhase = "CanaryAborted"
)

// DefaultProgressDeadline applies when spec.progressDeadlineSeconds is unset (objects stored before
// the field had a default).
const DefaultProgressDeadline = 600 * time.Second
