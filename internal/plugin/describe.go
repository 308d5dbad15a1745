package plugin

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// describePodTemplate renders a pod template the way `kubectl describe` (DescribePodTemplate) does,
// which is what kubectl rollout history --revision and rollout undo --dry-run print. It covers the
// fields agents use; like kubectl's, its output is tab-separated, not aligned.
func describePodTemplate(t *corev1.PodTemplateSpec) string {
	w := &prefixWriter{}
	w.write(0, "Pod Template:\n")
	if t == nil {
		w.write(1, "<unset>")
		return w.String()
	}
	w.multiline("  Labels", t.Labels, nil)
	if len(t.Annotations) > 0 {
		w.annotations("  Annotations", t.Annotations)
	}
	if t.Spec.ServiceAccountName != "" {
		w.write(1, "Service Account:\t%s\n", t.Spec.ServiceAccountName)
	}
	if len(t.Spec.InitContainers) > 0 {
		w.containers("Init Containers", t.Spec.InitContainers)
	}
	w.containers("Containers", t.Spec.Containers)
	w.volumes(t.Spec.Volumes)
	if t.Spec.PriorityClassName != "" {
		w.write(1, "Priority Class Name:\t%s\n", t.Spec.PriorityClassName)
	}
	w.multiline("  Node-Selectors", t.Spec.NodeSelector, nil)
	w.tolerations("  Tolerations", t.Spec.Tolerations)
	return w.String()
}

// prefixWriter indents by two spaces per level, as kubectl's describe.PrefixWriter does.
type prefixWriter struct{ strings.Builder }

func (w *prefixWriter) write(level int, format string, a ...any) {
	w.WriteString(strings.Repeat("  ", level))
	fmt.Fprintf(w, format, a...)
}

func (w *prefixWriter) multiline(title string, values map[string]string, skip map[string]bool) {
	w.write(0, "%s:\t", title)
	keys := make([]string, 0, len(values))
	for k := range values {
		if !skip[k] {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		w.write(0, "<none>\n")
		return
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			w.write(0, "\t")
		}
		w.write(0, "%s=%s\n", k, values[k])
	}
}

// maxAnnotationLen is where kubectl's describe wraps an annotation value onto its own lines.
const maxAnnotationLen = 140

func (w *prefixWriter) annotations(title string, annotations map[string]string) {
	w.write(0, "%s:\t", title)
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		// kubectl skips the last-applied configuration, which repeats the whole object.
		if k != corev1.LastAppliedConfigAnnotation {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		w.write(0, "<none>\n")
		return
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			w.write(0, "\t")
		}
		value := strings.TrimSuffix(annotations[k], "\n")
		if len(value)+len(k)+2 > maxAnnotationLen || strings.Contains(value, "\n") {
			w.write(0, "%s:\n", k)
			for _, s := range strings.Split(value, "\n") {
				if len(s) > maxAnnotationLen-2 {
					s = s[:maxAnnotationLen-2] + "..."
				}
				w.write(0, "\t  %s\n", s)
			}
		} else {
			w.write(0, "%s: %s\n", k, value)
		}
	}
}

func (w *prefixWriter) containers(label string, containers []corev1.Container) {
	none := ""
	if len(containers) == 0 {
		none = " <none>"
	}
	w.write(0, "  %s:%s\n", label, none)
	for _, c := range containers {
		w.write(1, " %s:\n", c.Name)
		w.write(2, "Image:\t%s\n", c.Image)
		w.ports("Port", "Ports", c.Ports, func(p corev1.ContainerPort) int32 { return p.ContainerPort })
		w.ports("Host Port", "Host Ports", c.Ports, func(p corev1.ContainerPort) int32 { return p.HostPort })
		lines := func(title string, values []string) {
			if len(values) == 0 {
				return
			}
			w.write(2, "%s:\n", title)
			for _, v := range values {
				for _, s := range strings.Split(v, "\n") {
					w.write(3, "%s\n", s)
				}
			}
		}
		lines("Command", c.Command)
		lines("Args", c.Args)
		w.resources(c.Resources)
		w.probe("Liveness", c.LivenessProbe)
		w.probe("Readiness", c.ReadinessProbe)
		w.probe("Startup", c.StartupProbe)
		w.env(c)
		w.mounts(c.VolumeMounts)
	}
}

func (w *prefixWriter) ports(single, plural string, ports []corev1.ContainerPort, number func(corev1.ContainerPort) int32) {
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		s := fmt.Sprintf("%d/%s", number(p), p.Protocol)
		if p.Name != "" {
			s += " (" + p.Name + ")"
		}
		parts = append(parts, s)
	}
	joined := strings.Join(parts, ", ")
	switch {
	case strings.Contains(joined, ","):
		w.write(2, "%s:\t%s\n", plural, joined)
	case joined == "":
		w.write(2, "%s:\t<none>\n", single)
	default:
		w.write(2, "%s:\t%s\n", single, joined)
	}
}

func (w *prefixWriter) resources(r corev1.ResourceRequirements) {
	for _, section := range []struct {
		title string
		list  corev1.ResourceList
	}{{"Limits", r.Limits}, {"Requests", r.Requests}} {
		if len(section.list) == 0 {
			continue
		}
		w.write(2, "%s:\n", section.title)
		names := make([]string, 0, len(section.list))
		for n := range section.list {
			names = append(names, string(n))
		}
		sort.Strings(names)
		for _, n := range names {
			q := section.list[corev1.ResourceName(n)]
			w.write(3, "%s:\t%s\n", n, q.String())
		}
	}
}

func (w *prefixWriter) probe(title string, p *corev1.Probe) {
	if p == nil {
		return
	}
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds successThreshold=%d failureThreshold=%d",
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
	var what string
	switch {
	case p.Exec != nil:
		what = fmt.Sprintf("exec %v", p.Exec.Command)
	case p.HTTPGet != nil:
		u := &url.URL{Scheme: strings.ToLower(string(p.HTTPGet.Scheme)), Path: p.HTTPGet.Path, Host: p.HTTPGet.Host}
		if port := p.HTTPGet.Port.String(); port != "" {
			u.Host = net.JoinHostPort(p.HTTPGet.Host, port)
		}
		what = "http-get " + u.String()
	case p.TCPSocket != nil:
		what = fmt.Sprintf("tcp-socket %s:%s", p.TCPSocket.Host, p.TCPSocket.Port.String())
	case p.GRPC != nil:
		what = "grpc <pod>:" + strconv.Itoa(int(p.GRPC.Port))
		if p.GRPC.Service != nil {
			what += " " + *p.GRPC.Service
		}
	default:
		what = "unknown"
	}
	w.write(2, "%s:\t%s %s\n", title, what, attrs)
}

func (w *prefixWriter) env(c corev1.Container) {
	if len(c.EnvFrom) > 0 {
		w.write(2, "Environment Variables from:\n")
		for _, e := range c.EnvFrom {
			from, name, optional := "", "", false
			switch {
			case e.ConfigMapRef != nil:
				from, name, optional = "ConfigMap", e.ConfigMapRef.Name, e.ConfigMapRef.Optional != nil && *e.ConfigMapRef.Optional
			case e.SecretRef != nil:
				from, name, optional = "Secret", e.SecretRef.Name, e.SecretRef.Optional != nil && *e.SecretRef.Optional
			}
			if e.Prefix == "" {
				w.write(3, "%s\t%s\tOptional: %t\n", name, from, optional)
			} else {
				w.write(3, "%s\t%s with prefix '%s'\tOptional: %t\n", name, from, e.Prefix, optional)
			}
		}
	}
	if len(c.Env) == 0 {
		w.write(2, "Environment:\t<none>\n")
		return
	}
	w.write(2, "Environment:\n")
	for _, e := range c.Env {
		switch from := e.ValueFrom; {
		case from == nil:
			for i, s := range strings.Split(e.Value, "\n") {
				if i == 0 {
					w.write(3, "%s:\t%s\n", e.Name, s)
				} else {
					w.write(3, "\t%s\n", s)
				}
			}
		case from.FieldRef != nil:
			w.write(3, "%s:\t (%s:%s)\n", e.Name, from.FieldRef.APIVersion, from.FieldRef.FieldPath)
		case from.ResourceFieldRef != nil:
			w.write(3, "%s:\t (%s)\n", e.Name, from.ResourceFieldRef.Resource)
		case from.SecretKeyRef != nil:
			optional := from.SecretKeyRef.Optional != nil && *from.SecretKeyRef.Optional
			w.write(3, "%s:\t<set to the key '%s' in secret '%s'>\tOptional: %t\n", e.Name, from.SecretKeyRef.Key, from.SecretKeyRef.Name, optional)
		case from.ConfigMapKeyRef != nil:
			optional := from.ConfigMapKeyRef.Optional != nil && *from.ConfigMapKeyRef.Optional
			w.write(3, "%s:\t<set to the key '%s' of config map '%s'>\tOptional: %t\n", e.Name, from.ConfigMapKeyRef.Key, from.ConfigMapKeyRef.Name, optional)
		}
	}
}

func (w *prefixWriter) mounts(mounts []corev1.VolumeMount) {
	if len(mounts) == 0 {
		w.write(2, "Mounts:\t<none>\n")
		return
	}
	w.write(2, "Mounts:\n")
	sorted := append([]corev1.VolumeMount(nil), mounts...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].MountPath < sorted[j].MountPath })
	for _, m := range sorted {
		flags := []string{"rw"}
		if m.ReadOnly {
			flags[0] = "ro"
		}
		if m.SubPath != "" {
			flags = append(flags, fmt.Sprintf("path=%q", m.SubPath))
		}
		w.write(3, "%s from %s (%s)\n", m.MountPath, m.Name, strings.Join(flags, ","))
	}
}

func (w *prefixWriter) volumes(volumes []corev1.Volume) {
	if len(volumes) == 0 {
		w.write(0, "  Volumes:\t<none>\n")
		return
	}
	w.write(0, "  Volumes:\n")
	for _, v := range volumes {
		w.write(1, " %s:\n", v.Name)
		src := v.VolumeSource
		switch {
		case src.HostPath != nil:
			hostPathType := "<none>"
			if src.HostPath.Type != nil {
				hostPathType = string(*src.HostPath.Type)
			}
			w.write(2, "Type:\tHostPath (bare host directory volume)\n")
			w.write(2, "Path:\t%s\n", src.HostPath.Path)
			w.write(2, "HostPathType:\t%s\n", hostPathType)
		case src.EmptyDir != nil:
			w.write(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
			w.write(2, "Medium:\t%s\n", src.EmptyDir.Medium)
		case src.ConfigMap != nil:
			w.write(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n")
			w.write(2, "Name:\t%s\n", src.ConfigMap.Name)
			w.write(2, "Optional:\t%v\n", src.ConfigMap.Optional != nil && *src.ConfigMap.Optional)
		case src.Secret != nil:
			w.write(2, "Type:\tSecret (a volume populated by a Secret)\n")
			w.write(2, "SecretName:\t%v\n", src.Secret.SecretName)
			w.write(2, "Optional:\t%v\n", src.Secret.Optional != nil && *src.Secret.Optional)
		case src.Projected != nil:
			w.write(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
		case src.PersistentVolumeClaim != nil:
			w.write(2, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n")
			w.write(2, "ClaimName:\t%v\n", src.PersistentVolumeClaim.ClaimName)
			w.write(2, "ReadOnly:\t%v\n", src.PersistentVolumeClaim.ReadOnly)
		case src.CSI != nil:
			w.write(2, "Type:\tCSI (a Container Storage Interface (CSI) volume source)\n")
			w.write(2, "Driver:\t%v\n", src.CSI.Driver)
		default:
			w.write(2, "<unknown>\n")
		}
	}
}

func (w *prefixWriter) tolerations(title string, tolerations []corev1.Toleration) {
	w.write(0, "%s:\t", title)
	if len(tolerations) == 0 {
		w.write(0, "<none>\n")
		return
	}
	sorted := append([]corev1.Toleration(nil), tolerations...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
	for i, t := range sorted {
		if i > 0 {
			w.write(0, "\t")
		}
		w.write(0, "%s\n", tolerationString(t))
	}
}

// tolerationString renders a toleration as kubectl describe does: key=value:Effect, " op=Exists" for
// an Exists toleration, " for Ns" with tolerationSeconds.
func tolerationString(t corev1.Toleration) string {
	var b strings.Builder
	b.WriteString(t.Key)
	if t.Value != "" {
		b.WriteString("=" + t.Value)
	}
	if t.Effect != "" {
		b.WriteString(":" + string(t.Effect))
	}
	if t.Operator == corev1.TolerationOpExists && t.Value == "" {
		if t.Key != "" || t.Effect != "" {
			b.WriteString(" ")
		}
		b.WriteString("op=Exists")
	}
	if t.TolerationSeconds != nil {
		fmt.Fprintf(&b, " for %ds", *t.TolerationSeconds)
	}
	return b.String()
}

// describeNodeOverrides renders a set's nodeOverrides after its pod template, in the same
// tab-separated style: each override with its selector, then what it changes per container.
func describeNodeOverrides(overrides []nasv1alpha1.NodeOverride) string {
	if len(overrides) == 0 {
		return ""
	}
	w := &prefixWriter{}
	w.write(0, "Node Overrides:\n")
	for _, o := range overrides {
		sel := metav1.FormatLabelSelector(&o.NodeSelector)
		if sel == "" || sel == "<none>" {
			sel = "every node"
		}
		w.write(1, "%s:\t%s\n", o.Name, sel)
		for _, c := range o.Containers {
			var parts []string
			if c.Image != "" {
				parts = append(parts, "image "+c.Image)
			}
			for _, e := range c.Env {
				parts = append(parts, "env "+e.Name+"="+e.Value)
			}
			if r := c.Resources; r != nil {
				parts = appendList(parts, "requests", r.Requests)
				parts = appendList(parts, "limits", r.Limits)
			}
			if s := c.ResourcesFromAllocatable; s != nil {
				parts = appendShares(parts, "requests", s.Requests)
				parts = appendShares(parts, "limits", s.Limits)
				parts = appendBounds(parts, "min", s.Min)
				parts = appendBounds(parts, "max", s.Max)
			}
			w.write(2, "%s:\t%s\n", c.Name, strings.Join(parts, "; "))
		}
	}
	return w.String()
}

func appendList(parts []string, name string, l corev1.ResourceList) []string {
	if len(l) == 0 {
		return parts
	}
	kv := make([]string, 0, len(l))
	for k, q := range l {
		kv = append(kv, string(k)+"="+q.String())
	}
	sort.Strings(kv)
	return append(parts, name+" "+strings.Join(kv, ","))
}

func appendShares(parts []string, name string, l map[corev1.ResourceName]nasv1alpha1.Percentage) []string {
	if len(l) == 0 {
		return parts
	}
	kv := make([]string, 0, len(l))
	for k, p := range l {
		kv = append(kv, string(k)+"="+string(p))
	}
	sort.Strings(kv)
	return append(parts, name+" "+strings.Join(kv, ",")+" of allocatable")
}

func appendBounds(parts []string, name string, l map[corev1.ResourceName]nasv1alpha1.QuantityString) []string {
	if len(l) == 0 {
		return parts
	}
	kv := make([]string, 0, len(l))
	for k, q := range l {
		kv = append(kv, string(k)+"="+string(q))
	}
	sort.Strings(kv)
	return append(parts, name+" "+strings.Join(kv, ","))
}
