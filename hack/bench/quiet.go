package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The cluster's own processes (kube-apiserver, etcd, kube-scheduler, kwok and kube-controller-manager)
// keep working for a while after a trial's pods are gone: events, garbage collection, etcd
// compaction. A trial that starts then shares the machine's cores with that work, so each trial (and
// each reference) starts only once the cluster is back near the CPU it used when idle.

// clusterPids are the pids of the cluster's processes, kube-controller-manager included.
func (b *bench) clusterPids() []int {
	var pids []int
	files, _ := filepath.Glob(filepath.Join(b.c.clusterDir(), "pids", "*.pid"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
			pids = append(pids, pid)
		}
	}
	return append(pids, b.ct.kcm.cmd.Process.Pid)
}

// clusterCPU is the CPU seconds each of the cluster's processes has used so far, by name.
func (b *bench) clusterCPU() map[string]float64 {
	out := map[string]float64{}
	for _, pid := range b.clusterPids() {
		cpu, _ := procStats(pid)
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		out[strings.TrimSpace(string(comm))] += cpu
	}
	return out
}

// clusterLoad is the CPU use of each of the cluster's processes over a window, in cores.
func (b *bench) clusterLoad(ctx context.Context, window time.Duration) (map[string]float64, error) {
	c0, t0 := b.clusterCPU(), time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(window):
	}
	c1, secs := b.clusterCPU(), time.Since(t0).Seconds()
	out := map[string]float64{}
	for name, cpu := range c1 {
		out[name] = (cpu - c0[name]) / secs
	}
	return out, nil
}

func total(load map[string]float64) float64 {
	t := 0.0
	for _, v := range load {
		t += v
	}
	return t
}

func describeLoad(load map[string]float64) string {
	names := make([]string, 0, len(load))
	for n := range load {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", n, load[n]))
	}
	return strings.Join(parts, ", ")
}

// measureIdleLoad records the cluster's CPU use with every node heart-beating and nothing else to do.
func (b *bench) measureIdleLoad(ctx context.Context) error {
	load, err := b.clusterLoad(ctx, 10*time.Second)
	if err != nil {
		return err
	}
	b.idleLoad = total(load)
	logf("cluster idle: %.2f cores (%s)", b.idleLoad, describeLoad(load))
	return nil
}

// waitClusterQuiet waits, at most two minutes, until the cluster's CPU use over 2 s is within 0.1
// core of its idle figure.
func (b *bench) waitClusterQuiet(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		load, err := b.clusterLoad(ctx, 2*time.Second)
		if err != nil {
			return err
		}
		if total(load) <= b.idleLoad+0.1 {
			return nil
		}
		if time.Now().After(deadline) {
			logf("cluster still busy (%.2f cores: %s; idle %.2f) two minutes after the last trial; going on",
				total(load), describeLoad(load), b.idleLoad)
			return nil
		}
	}
}
