package v1alpha1

// Condition types the controller owns on a NodeAgentSet. Conditions of any other type, written by
// someone else through the status subresource, are kept as they are.
const (
	// ConditionAvailable is True when every eligible node runs an available agent pod.
	ConditionAvailable = "Available"

	// ConditionPodTemplateValid is False when the API server refuses the template as a Pod (found with a
	// server-side dry-run); the controller then stops creating pods until the template changes.
	ConditionPodTemplateValid = "PodTemplateValid"
)

// Reasons of the Available condition.
const (
	// ReasonAllNodesAvailable: every eligible node runs an available agent pod (also when no node is
	// eligible).
	ReasonAllNodesAvailable = "AllNodesAvailable"

	// ReasonNodesUnavailable: some eligible nodes have no available agent pod yet; the message says how
	// many and why.
	ReasonNodesUnavailable = "NodesUnavailable"

	// ReasonPodTemplateRejected: the API server refuses the template as a Pod, so no pod can be created.
	ReasonPodTemplateRejected = "PodTemplateRejected"
)

// Reasons of the PodTemplateValid condition.
const (
	// ReasonPodTemplateAccepted: a server-side dry-run create of the pod succeeded.
	ReasonPodTemplateAccepted = "PodTemplateAccepted"
)

// Well-known labels and annotations, shared with the apps/v1 DaemonSet so that tools keep working.
const (
	// ControllerRevisionHashLabel names the ControllerRevision a pod was made from.
	ControllerRevisionHashLabel = "controller-revision-hash"
)
