package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// controllers holds the two controller processes and their metrics endpoints.
type controllers struct {
	kcm, nas   *proc
	kcmMetrics string
	nasMetrics string
	nasPprof   string
	httpc      *http.Client
}

// nodeMonitorGracePeriod is kube-controller-manager's --node-monitor-grace-period in the bench: longer
// than any run, so that no late kwok lease makes a node NotReady (see kcmFlags).
const nodeMonitorGracePeriod = 24 * time.Hour

// kcmFlags are kube-controller-manager's flags in cluster directory cd, serving on port; startControllers
// adds the client budget of the mode.
func kcmFlags(cd string, port int) []string {
	return []string{
		// The node lifecycle controller must never judge kwok's nodes: at 10,000 nodes on a saturated
		// machine kwok renews some leases minutes late, and once a lease is older than the grace period
		// kube-controller-manager marks the node's pods NotReady. A kubelet would set them Ready again;
		// kwok never does, and the run waited for 115 such pods until it was stopped (2026-12-06).
		// kwokctl passes 3m20s; the bench measures controllers, not node failure.
		"--node-monitor-period=25s", "--node-monitor-grace-period=" + nodeMonitorGracePeriod.String(),
		"--kubeconfig=" + filepath.Join(cd, "kubeconfig.yaml"),
		"--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		"--root-ca-file=" + filepath.Join(cd, "pki", "ca.crt"),
		"--service-account-private-key-file=" + filepath.Join(cd, "pki", "admin.key"),
		"--controllers=" + kcmControllers, "--leader-elect=false",
	}
}

func (c config) startControllers(ctx context.Context) (*controllers, error) {
	cd := c.clusterDir()
	kcmPort, err := freePort()
	if err != nil {
		return nil, err
	}
	kcmArgs := kcmFlags(cd, kcmPort)
	nasMetricsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	pprofPort, err := freePort()
	if err != nil {
		return nil, err
	}
	nasArgs := []string{
		"--kubeconfig=" + filepath.Join(c.dir, "kubeconfig"),
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(nasMetricsPort), "--metrics-secure=false",
		"--pprof-bind-address=127.0.0.1:" + strconv.Itoa(pprofPort),
		"--health-probe-bind-address=127.0.0.1:0",
	}
	if c.nasLogLevel > 0 {
		nasArgs = append(nasArgs, "--zap-log-level="+strconv.Itoa(c.nasLogLevel))
	}
	if c.mode == "equal" {
		kcmArgs = append(kcmArgs, "--kube-api-qps=20", "--kube-api-burst=30")
		nasArgs = append(nasArgs, "--kube-api-qps=20", "--kube-api-burst=30")
	}
	ctrls := &controllers{
		kcmMetrics: fmt.Sprintf("https://127.0.0.1:%d/metrics", kcmPort),
		nasMetrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", nasMetricsPort),
		nasPprof:   fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", pprofPort),
		httpc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kcm's self-signed serving cert on loopback
		}},
	}
	logf("starting kube-controller-manager (%s)", strings.Join(kcmArgs[len(kcmArgs)-3:], " "))
	ctrls.kcm, err = start("kube-controller-manager", filepath.Join(c.dir, "kube-controller-manager.log"),
		filepath.Join(c.k8sBin, "kube-controller-manager"), kcmArgs...)
	if err != nil {
		return ctrls, err
	}
	logf("starting the NodeAgentSet controller (%s)", strings.Join(nasArgs[4:], " "))
	ctrls.nas, err = start("manager", filepath.Join(c.dir, "manager.log"), filepath.Join(c.dir, "manager"), nasArgs...)
	if err != nil {
		return ctrls, err
	}
	for _, u := range []string{ctrls.kcmMetrics, ctrls.nasMetrics} {
		if err := poll(ctx, 60*time.Second, func() bool { _, _, e := ctrls.scrape(u); return e == nil }); err != nil {
			return ctrls, fmt.Errorf("metrics endpoint %s: %w", u, err)
		}
	}
	return ctrls, nil
}

func (ct *controllers) stop() {
	if ct == nil {
		return
	}
	ct.nas.stop()
	ct.kcm.stop()
}

// diagSeries are the NodeAgentSet controller's own series the bench logs per phase: its passes and
// how long its reads waited for the cache to show its writes.
var diagSeries = []string{
	"controller_runtime_reconcile_time_seconds_sum", "controller_runtime_reconcile_time_seconds_count",
	"controller_runtime_client_consistency_wait_duration_seconds_sum",
}

// scrape sums rest_client_requests_total by method, and each of diagSeries and soakSeries over its
// labels; a series of soakSeriesBy also by its label, under "name/value".
func (ct *controllers) scrape(url string) (req, diag map[string]float64, err error) {
	resp, err := ct.httpc.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	req, diag = map[string]float64{}, map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		j := strings.LastIndex(line, " ")
		if j < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(line[j+1:], 64)
		if err != nil {
			continue
		}
		name := line[:j]
		if k := strings.IndexByte(name, '{'); k >= 0 {
			name = name[:k]
		}
		if slices.Contains(diagSeries, name) || slices.Contains(soakSeries, name) {
			diag[name] += v
			if label, ok := soakSeriesBy[name]; ok {
				diag[name+"/"+labelValue(line, label)] += v
			}
			continue
		}
		if name != "rest_client_requests_total" {
			continue
		}
		if m := labelValue(line, "method"); m != "" {
			req[m] += v
		}
	}
	return req, diag, sc.Err()
}

// labelValue is the value of label key in a metric line of the text format, "" without it.
func labelValue(line, key string) string {
	i := strings.Index(line, key+`="`)
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	return v[:strings.IndexByte(v, '"')]
}

// procStats: CPU seconds (user+system) and peak RSS (VmHWM, MiB) of a pid.
func procStats(pid int) (cpu, hwmMiB float64) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
		if len(f) > 12 {
			u, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			cpu = (u + st) / clkTck
		}
	}
	return cpu, procStatusMiB(pid, "VmHWM")
}

// procStatusMiB is the field of /proc/<pid>/status given in kB (VmHWM, VmRSS), in MiB; 0 when
// unknown.
func procStatusMiB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

type snapshot struct {
	req  map[string]float64
	diag map[string]float64
	cpu  float64
	hwm  float64
}

func (ct *controllers) snap(kind string) (snapshot, error) {
	p, url := ct.kcm, ct.kcmMetrics
	if kind == kindNAS {
		p, url = ct.nas, ct.nasMetrics
	}
	r, d, err := ct.scrape(url)
	if err != nil {
		return snapshot{}, err
	}
	cpu, hwm := procStats(p.cmd.Process.Pid)
	return snapshot{req: r, diag: d, cpu: cpu, hwm: hwm}, nil
}

// passes describes the NodeAgentSet controller's passes between two snapshots: how many, the seconds
// they took, and the seconds its reads waited for the cache to show its own writes.
func passes(a, b snapshot) string {
	d := func(k string) float64 { return b.diag[k] - a.diag[k] }
	return fmt.Sprintf("%.0f passes in %.1fs, %.1fs of them waiting for the cache",
		d("controller_runtime_reconcile_time_seconds_count"), d("controller_runtime_reconcile_time_seconds_sum"),
		d("controller_runtime_client_consistency_wait_duration_seconds_sum"))
}

func delta(a, b snapshot) map[string]float64 {
	d := map[string]float64{}
	for k, v := range b.req {
		if x := v - a.req[k]; x != 0 {
			d[k] = x
		}
	}
	return d
}

func writes(d map[string]float64) float64 {
	t := 0.0
	for _, m := range writeMethods {
		t += d[m]
	}
	return t
}

// peakRSS is each controller's peak RSS so far (VmHWM, MiB), by kind.
func (ct *controllers) peakRSS() map[string]float64 {
	_, ds := procStats(ct.kcm.cmd.Process.Pid)
	_, nas := procStats(ct.nas.cmd.Process.Pid)
	return map[string]float64{kindDS: ds, kindNAS: nas}
}
