package v1alpha1

// Condition types the controller owns on a NodeAgentSet. Conditions of any other type, written by
// someone else through the status subresource, are kept as they are.
const (
	// ConditionAvailable is True when every eligible node runs an available agent pod.
	ConditionAvailable = "Available"

	// ConditionProgressing is True while a rollout moves forward or has finished, and False when it
	// made no progress for progressDeadlineSeconds.
	ConditionProgressing = "Progressing"

	// ConditionPodTemplateValid is False when the API server refuses the template as a Pod (found with a
	// server-side dry-run); the controller then stops creating pods until the template changes.
	ConditionPodTemplateValid = "PodTemplateValid"

	// ConditionCanary says where the canary of the current template stands (see status.canary); only on
	// sets whose strategy has a canary.
	ConditionCanary = "Canary"
)

// Reasons of the Canary condition (and, for CanaryFailed, of the Progressing condition).
const (
	// ReasonCanaryProgressing: the canary nodes are being updated.
	ReasonCanaryProgressing = "CanaryProgressing"
	// ReasonCanaryWatching: every canary pod is available and watched for the canary's duration.
	ReasonCanaryWatching = "CanaryWatching"
	// ReasonCanaryWaitingForPromotion: the watch passed; the rollout waits for kubectl nas rollout promote.
	ReasonCanaryWaitingForPromotion = "CanaryWaitingForPromotion"
	// ReasonCanarySucceeded: the canary passed (or was promoted); the rollout goes on.
	ReasonCanarySucceeded = "CanarySucceeded"
	// ReasonCanaryFailed: the canary failed; status.canary.reason says why.
	ReasonCanaryFailed = "CanaryFailed"
	// ReasonCanaryAborted: a person aborted the canary; the canary nodes get the fleet's revision back.
	ReasonCanaryAborted = "CanaryAborted"
)

// Why a canary failed (status.canary.reason).
const (
	// CanaryTooManyRestarts: the canary pods' containers restarted more than maxRestarts times during the watch.
	CanaryTooManyRestarts = "TooManyRestarts"
	// CanaryPodUnavailable: a canary node was without an available pod for longer than the grace during the watch.
	CanaryPodUnavailable = "PodUnavailable"
	// CanaryProgressDeadlineExceeded: a canary node's pod was not available within progressDeadlineSeconds.
	CanaryProgressDeadlineExceeded = "ProgressDeadlineExceeded"
)

// Reasons of the Progressing condition during a canary.
const (
	// ReasonCanaryInProgress: the rollout is held at the canary nodes until the canary passes.
	ReasonCanaryInProgress = "CanaryInProgress"
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

// Reasons of the Progressing condition.
const (
	// ReasonRolloutComplete means every eligible node outside the partition runs an available pod of
	// the current template.
	ReasonRolloutComplete = "RolloutComplete"

	// ReasonRollingOut means pods of an older template are being replaced.
	ReasonRollingOut = "RollingOut"

	// ReasonRolloutPaused means rollingUpdate.paused is true and old pods remain.
	ReasonRolloutPaused = "RolloutPaused"

	// ReasonWaitingForDeletion means the strategy is OnDelete and old pods remain until deleted.
	ReasonWaitingForDeletion = "WaitingForDeletion"

	// ReasonProgressDeadlineExceeded means the rollout made no progress for progressDeadlineSeconds;
	// the message names the stuck nodes and why.
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
)

// Reasons of the PodTemplateValid condition.
const (
	// ReasonPodTemplateAccepted: a server-side dry-run create of the pod succeeded.
	ReasonPodTemplateAccepted = "PodTemplateAccepted"

	// ReasonServiceAccountMissing: the pod's ServiceAccount does not exist (yet); pods are created
	// once it does (also a reason of the Available condition).
	ReasonServiceAccountMissing = "ServiceAccountMissing"

	// ReasonSelectorMismatch: the selector does not parse, or does not match the template's labels (what
	// the schema cannot check: label key syntax, In and NotIn requirements of more than 8 values), so
	// the set's pods would not be its own; nothing is created or deleted until the spec is fixed.
	ReasonSelectorMismatch = "SelectorMismatch"

	// ReasonPodTemplateCheckFailed: the dry-run itself failed (throttled, a server error, a timeout);
	// the status is Unknown and the check is retried with a backoff.
	ReasonPodTemplateCheckFailed = "PodTemplateCheckFailed"
)

// Well-known labels and annotations, shared with the apps/v1 DaemonSet so that tools keep working.
const (
	// ControllerRevisionHashLabel names the ControllerRevision a pod was made from.
	ControllerRevisionHashLabel = "controller-revision-hash"

	// CanaryDecisionAnnotation on a set carries a person's decision on a canary,
	// "<promote|abort|retry>:<revision hash>:<time>", as kubectl nas rollout promote|abort|retry write
	// it. A decision for another revision is ignored; status.canary.decision records the value acted on.
	CanaryDecisionAnnotation = "apps.nodeagentset.io/canary-decision"
)

// The node readiness gate (spec.nodeReadinessGate).
const (
	// ConditionNodeReadinessGate is True when the controller lifts (and, in Continuous mode, puts back)
	// the gate taint, and False when it refuses the key and touches no node. Absent without a gate.
	ConditionNodeReadinessGate = "NodeReadinessGate"

	// ReasonGateActive: the key is allowed and no older set gates it; the message counts the gated nodes.
	ReasonGateActive = "GateActive"

	// ReasonGateKeyNotAllowed: the key does not start with a prefix the controller allows
	// (--readiness-gate-taint-prefixes).
	ReasonGateKeyNotAllowed = "KeyNotAllowed"

	// ReasonGateKeyConflict: an older NodeAgentSet gates the same key.
	ReasonGateKeyConflict = "KeyConflict"

	// ReadinessGateFinalizer keeps a Continuous set until the taints it put on nodes are removed.
	ReadinessGateFinalizer = "apps.nodeagentset.io/readiness-gate"
)
