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
	// not be deleted again (rule 30). Nodes not in the map are not in backoff.
	FailedPodBackoffUntil map[string]time.Time
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
	Creates []string
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
