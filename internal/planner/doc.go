// Package planner decides, from a snapshot of the world, what the NodeAgentSet controller should do.
//
// It is pure: its inputs are data (the set, the current revision hash, nodes, pods, the time, failed-pod
// backoff deadlines, the template verdict) and its outputs are data (pods to create and delete, each
// with a reason, the status counters, the resolved strategy, the rollout verdict, and a typed reason
// for every node that is excluded, lacks an available agent or runs an outdated one). It never talks to
// the API server, never emits events, never reads a clock. depguard enforces this in .golangci.yml.
//
// The Plan is the one contract: render.go alone turns its reason codes into sentences, for the status
// conditions, the controller's events and kubectl nas alike (docs/design/planner.md).
//
// The rules it implements are those of the upstream DaemonSet controller (Kubernetes 1.36), numbered
// as in ../shared/reference/upstream-daemonset.md section 1.
package planner
