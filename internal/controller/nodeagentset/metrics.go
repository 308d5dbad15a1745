package nodeagentset

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// Metrics are the per-set series the controller exports next to controller-runtime's, in the style of
// kube-state-metrics' kube_daemonset_* series.
type Metrics struct {
	desired      *prometheus.GaugeVec
	current      *prometheus.GaugeVec
	ready        *prometheus.GaugeVec
	available    *prometheus.GaugeVec
	unavailable  *prometheus.GaugeVec
	updated      *prometheus.GaugeVec
	misscheduled *prometheus.GaugeVec
	progressing  *prometheus.GaugeVec
	stuck        *prometheus.GaugeVec
	canaryFailed *prometheus.GaugeVec
	created      *prometheus.CounterVec
	deleted      *prometheus.CounterVec
	gateLift     *prometheus.HistogramVec
	// unavailableNodes breaks status_number_unavailable down by reason; reasons remembers, per set,
	// the reasons it has a series for, so that a reason that no longer applies loses its series.
	unavailableNodes *prometheus.GaugeVec
	mu               sync.Mutex
	reasons          map[types.NamespacedName]map[string]bool
}

var setLabels = []string{"namespace", "nodeagentset"}

const unavailableNodesHelp = "Eligible nodes without an available agent pod, by reason (status.unavailableBreakdown); " +
	"the reasons sum to status_number_unavailable."

// NewMetrics creates the series and registers them with reg (controller-runtime's metrics.Registry
// in the manager).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nodeagentset_" + name, Help: help}, setLabels)
	}
	m := &Metrics{
		desired:      gauge("status_desired_number_scheduled", "Eligible nodes: nodes that should run the agent."),
		current:      gauge("status_current_number_scheduled", "Eligible nodes that run at least one agent pod."),
		ready:        gauge("status_number_ready", "Eligible nodes whose agent pod is Ready."),
		available:    gauge("status_number_available", "Eligible nodes whose agent pod is available (Ready for minReadySeconds)."),
		unavailable:  gauge("status_number_unavailable", "Eligible nodes without an available agent pod."),
		updated:      gauge("status_updated_number_scheduled", "Eligible nodes whose agent pod runs the current template."),
		misscheduled: gauge("status_number_misscheduled", "Nodes that run an agent pod but are not eligible."),
		progressing: gauge("rollout_progressing",
			"1 while a rollout of the current template is under way (not complete, not paused, within its deadline), else 0."),
		stuck: gauge("rollout_stuck",
			"1 when the rollout made no progress for progressDeadlineSeconds (Progressing=False, ProgressDeadlineExceeded), else 0."),
		canaryFailed: gauge("canary_failed",
			"1 when the canary of the current template failed (status.canary.phase Failed): the rollout goes no further, else 0."),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeagentset_pods_created_total", Help: "Agent pods created.",
		}, setLabels),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeagentset_pods_deleted_total",
			Help: "Agent pods deleted, by reason (Failed, Succeeded, Duplicate, NodeIneligible, NodeGone, SurgeReplaced, Outdated).",
		}, append(setLabels, "reason")),
		gateLift: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nodeagentset_readiness_gate_lift_seconds",
			Help: "Time from a node's creation to the lift of the readiness gate taint it registered with.",
			// 1 s to about 68 min.
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}, setLabels),
		unavailableNodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nodeagentset_unavailable_nodes",
			Help: unavailableNodesHelp,
		}, append(setLabels, "reason")),
		reasons: map[types.NamespacedName]map[string]bool{},
	}
	reg.MustRegister(m.gateLift)
	reg.MustRegister(m.desired, m.current, m.ready, m.available, m.unavailable, m.updated, m.misscheduled,
		m.progressing, m.stuck, m.canaryFailed, m.created, m.deleted, m.unavailableNodes)
	return m
}

// observeStatus sets the gauges of a set from the status it was just given.
func (m *Metrics) observeStatus(set *nasv1alpha1.NodeAgentSet, st *nasv1alpha1.NodeAgentSetStatus) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"namespace": set.Namespace, "nodeagentset": set.Name}
	m.desired.With(l).Set(float64(st.DesiredNumberScheduled))
	m.current.With(l).Set(float64(st.CurrentNumberScheduled))
	m.ready.With(l).Set(float64(st.NumberReady))
	m.available.With(l).Set(float64(st.NumberAvailable))
	m.unavailable.With(l).Set(float64(st.NumberUnavailable))
	m.updated.With(l).Set(float64(st.UpdatedNumberScheduled))
	m.misscheduled.With(l).Set(float64(st.NumberMisscheduled))
	progressing, stuck := 0.0, 0.0
	for _, c := range st.Conditions {
		if c.Type != nasv1alpha1.ConditionProgressing {
			continue
		}
		switch c.Reason {
		case nasv1alpha1.ReasonRollingOut:
			progressing = 1
		case nasv1alpha1.ReasonProgressDeadlineExceeded:
			stuck = 1
		}
	}
	m.progressing.With(l).Set(progressing)
	m.stuck.With(l).Set(stuck)
	canaryFailed := 0.0
	if st.Canary != nil && st.Canary.Phase == nasv1alpha1.CanaryFailed {
		canaryFailed = 1
	}
	m.canaryFailed.With(l).Set(canaryFailed)
	m.observeBreakdown(set, st.UnavailableBreakdown)
}

// observeBreakdown sets a series per unavailable reason of the set and deletes those of reasons that
// no longer apply.
func (m *Metrics) observeBreakdown(set *nasv1alpha1.NodeAgentSet, breakdown []nasv1alpha1.UnavailableReason) {
	key := types.NamespacedName{Namespace: set.Namespace, Name: set.Name}
	current := make(map[string]bool, len(breakdown))
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range breakdown {
		current[r.Reason] = true
		m.unavailableNodes.WithLabelValues(set.Namespace, set.Name, r.Reason).Set(float64(r.Count))
	}
	for reason := range m.reasons[key] {
		if !current[reason] {
			m.unavailableNodes.DeleteLabelValues(set.Namespace, set.Name, reason)
		}
	}
	m.reasons[key] = current
}

func (m *Metrics) podCreated(set *nasv1alpha1.NodeAgentSet) {
	if m != nil {
		m.created.WithLabelValues(set.Namespace, set.Name).Inc()
	}
}

func (m *Metrics) podDeleted(set *nasv1alpha1.NodeAgentSet, reason planner.DeleteReason) {
	if m != nil {
		m.deleted.WithLabelValues(set.Namespace, set.Name, string(reason)).Inc()
	}
}

// gateLifted observes the time from a node's creation to the lift of its gate.
func (m *Metrics) gateLifted(set *nasv1alpha1.NodeAgentSet, d time.Duration) {
	if m != nil {
		m.gateLift.WithLabelValues(set.Namespace, set.Name).Observe(d.Seconds())
	}
}

// forget drops every series of a set that no longer exists.
func (m *Metrics) forget(key types.NamespacedName) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"namespace": key.Namespace, "nodeagentset": key.Name}
	for _, g := range []*prometheus.GaugeVec{m.desired, m.current, m.ready, m.available, m.unavailable, m.updated, m.misscheduled, m.progressing, m.stuck,
		m.canaryFailed} {
		g.Delete(l)
	}
	m.created.Delete(l)
	m.gateLift.Delete(l)
	m.deleted.DeletePartialMatch(l)
	m.unavailableNodes.DeletePartialMatch(l)
	m.mu.Lock()
	delete(m.reasons, key)
	m.mu.Unlock()
}
