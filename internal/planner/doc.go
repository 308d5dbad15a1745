// Package planner decides, from a snapshot of the world, what the NodeAgentSet controller should do.
//
// It is pure: its inputs are data (the set, the current revision hash, nodes, pods, the time, failed-pod
// backoff deadlines) and its outputs are data (pods to create and delete, each with a reason, the
// status counters, and why every node that should have an agent does not). It never talks to the API
// server, never emits events, never reads a clock. depguard enforces this in .golangci.yml.
//
// The rules it implements are those of the upstream DaemonSet controller (Kubernetes 1.36), numbered
// as in ../shared/reference/upstream-daemonset.md section 1.
package planner
