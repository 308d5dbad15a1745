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
}

// TemplateState is what the API server said of the current template's pod.
type TemplateState string

const (
	// TemplateUnchecked: no verdict for this template yet. A plan that would create pods asks for a
	// check instead (Plan.CheckTemplateOn) and creates nothing.
	TemplateUnchecked TemplateState = ""
	// TemplateAccepted: the dry-run create succeeded.
	TemplateAccepted TemplateState = "Accepted"
	// TemplateRejected: the API server definitely refuses the pod (validation, Pod Security, an
	// admission webhook's or policy's denial). No creates until RecheckAt.
	TemplateRejected TemplateState = "Rejected"
	// TemplateServiceAccountMissing: the pod's ServiceAccount does not exist (yet). No creates until
	// RecheckAt, which comes soon: the account is usually created a moment later.
	TemplateServiceAccountMissing TemplateState = "ServiceAccountMissing"
	// TemplateCheckFailed: the check itself failed (throttled, a server error, a timeout). Creates wait
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
	// backoff ends, a Ready pod becomes available); zero when nothing is pending.
	RequeueAfter time.Duration
	// Status holds the counters computed from the snapshot (rule 50).
	Status Counters
	// CurrentRevision is the revision hash most live pods carry (Hash when there are no pods).
	CurrentRevision string
	// Rollout summarises the progress of the current template.
	Rollout Rollout
	// SurgeBlockedByHostPort: maxSurge is set but the template binds host ports, so the rolling
	// update replaces delete-first, with maxSurge as its maxUnavailable.
	SurgeBlockedByHostPort bool
	// Nodes holds, keyed by name, every node that is excluded from the set or should run the agent but
	// has no available pod: what status messages and tools explain. Healthy nodes are left out.
	Nodes map[string]NodeState
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
	// Node is the node itself.
	Node *corev1.Node
	// Pod is the node's oldest agent pod, the one status looks at; nil when there is none.
	Pod *corev1.Pod
}

// Rollout is where the current template's rollout stands.
type Rollout struct {
	// Target is how many eligible nodes the rollout updates: all of them less the partition.
	Target int32
	// Partition is how many eligible nodes keep their pods (the last ones by name).
	Partition int32
	// FirstPartitionedNode is the first node, by name, of the partition; empty without one.
	FirstPartitionedNode string
	// UpdatedAvailable counts the nodes, outside the partition, that run an available pod of the
	// current template and no older pod.
	UpdatedAvailable int32
	// Complete: UpdatedAvailable reached Target.
	Complete bool
	// Paused: rollingUpdate.paused holds old pods back.
	Paused bool
	// LastProgress is the latest moment the rollout moved: its start, a pod of the current template
	// created, or one becoming available.
	LastProgress time.Time
	// Stuck lists the nodes, outside the partition, whose current-template pod is missing or not
	// available, in name order, with why.
	Stuck []StuckNode
}

// StuckNode is a node the rollout waits for.
type StuckNode struct {
	Node   string
	Reason string
}

// ReasonCode says, as data, why a node is not healthy: why it is not eligible, why it has no
// available agent pod, or why its available pod is not of the current template. Consumers (status
// conditions, events, metrics, kubectl nas) switch on the code and render sentences through the one
// renderer (render.go); none of them matches on a sentence.
type ReasonCode string

const (
	// Not eligible (Placement.ShouldRun is false).

	// ReasonNodeNameMismatch: the template's spec.nodeName names another node.
	ReasonNodeNameMismatch ReasonCode = "NodeNameMismatch"
	// ReasonNodeSelectorMismatch: a nodeSelector entry does not match the node's labels.
	ReasonNodeSelectorMismatch ReasonCode = "NodeSelectorMismatch"
	// ReasonNodeAffinityMismatch: no term of the required node affinity matches the node.
	ReasonNodeAffinityMismatch ReasonCode = "NodeAffinityMismatch"
	// ReasonTaintNotTolerated: the node has a NoSchedule or NoExecute taint the template does not tolerate.
	ReasonTaintNotTolerated ReasonCode = "TaintNotTolerated"

	// Eligible, without an available agent pod.

	// ReasonNoPod: no agent pod yet; the controller creates it.
	ReasonNoPod ReasonCode = "NoPod"
	// ReasonTemplateRejected: no pod can be created: the API server refuses the template.
	ReasonTemplateRejected ReasonCode = "TemplateRejected"
	// ReasonServiceAccountMissing: no pod can be created yet: its ServiceAccount does not exist.
	ReasonServiceAccountMissing ReasonCode = "ServiceAccountMissing"
	// ReasonFailedBackoff: the agent pod failed and its replacement waits for the backoff (Until).
	ReasonFailedBackoff ReasonCode = "FailedPodBackoff"
	// ReasonPodFailed: the agent pod failed; it is replaced.
	ReasonPodFailed ReasonCode = "PodFailed"
	// ReasonPodSucceeded: the agent pod exited; agents must run, so it is replaced.
	ReasonPodSucceeded ReasonCode = "PodSucceeded"
	// ReasonPodTerminating: the agent pod is being deleted.
	ReasonPodTerminating ReasonCode = "PodTerminating"
	// ReasonUnschedulable: the scheduler cannot place the pod (SchedulerReason, Message).
	ReasonUnschedulable ReasonCode = "Unschedulable"
	// ReasonNodeNotReady: the node's Ready condition is not True.
	ReasonNodeNotReady ReasonCode = "NodeNotReady"
	// ReasonImagePull: a container's image cannot be pulled (Container, WaitingReason).
	ReasonImagePull ReasonCode = "ImagePull"
	// ReasonCrashLoop: a container keeps crashing (Container, Restarts).
	ReasonCrashLoop ReasonCode = "CrashLoop"
	// ReasonContainerWaiting: a container waits for another reason (Container, WaitingReason).
	ReasonContainerWaiting ReasonCode = "ContainerWaiting"
	// ReasonNotScheduled: the pod is not bound to the node yet.
	ReasonNotScheduled ReasonCode = "NotScheduled"
	// ReasonPodStarting: the pod is bound and starting.
	ReasonPodStarting ReasonCode = "PodStarting"
	// ReasonPodNotReady: the pod runs but is not Ready.
	ReasonPodNotReady ReasonCode = "PodNotReady"
	// ReasonMinReadySeconds: the pod is Ready and counts as available at Until.
	ReasonMinReadySeconds ReasonCode = "WaitingForMinReadySeconds"

	// Eligible, with an available pod of an older template.

	// ReasonPartitioned: the node is in the rollout's partition and keeps its pod.
	ReasonPartitioned ReasonCode = "Partitioned"
	// ReasonPaused: the rollout is paused.
	ReasonPaused ReasonCode = "Paused"
	// ReasonOnDelete: the strategy is OnDelete: the pod is replaced once someone deletes it.
	ReasonOnDelete ReasonCode = "OnDelete"
	// ReasonWaitingForBudget: the rolling update replaces the pod once the budget allows.
	ReasonWaitingForBudget ReasonCode = "WaitingForBudget"
)

// RolloutPhase is the rollout verdict.
type RolloutPhase string

const (
	// RolloutComplete: every eligible node outside the partition runs an available pod of the current template.
	RolloutComplete RolloutPhase = "Complete"
	// RolloutProgressing: old pods are being replaced, within the progress deadline.
	RolloutProgressing RolloutPhase = "RollingOut"
	// RolloutPaused: rollingUpdate.paused holds old pods back.
	RolloutPaused RolloutPhase = "Paused"
	// RolloutWaitingForDeletion: the strategy is OnDelete and old pods remain.
	RolloutWaitingForDeletion RolloutPhase = "WaitingForDeletion"
	// RolloutDeadlineExceeded: no progress for the progress deadline.
	RolloutDeadlineExceeded RolloutPhase = "ProgressDeadlineExceeded"
)

// DefaultProgressDeadline applies when spec.progressDeadlineSeconds is unset (objects stored before
// the field had a default).
const DefaultProgressDeadline = 600 * time.Second
