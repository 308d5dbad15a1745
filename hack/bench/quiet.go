package main

import (
	"context"
	"os"
	"path/filepath"
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

// clusterCPU is the CPU seconds the cluster's processes have used so far.
func (b *bench) clusterCPU() float64 {
	total := 0.0
	for _, pid := range b.clusterPids() {
		cpu, _ := procStats(pid)
		total += cpu
	}
	return total
}

// clusterLoad is the cluster's CPU use over a window, in cores.
func (b *bench) clusterLoad(ctx context.Context, window time.Duration) (float64, error) {
	c0, t0 := b.clusterCPU(), time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(window):
	}
	return (b.clusterCPU() - c0) / time.Since(t0).Seconds(), nil
}

// measureIdleLoad records the cluster's CPU use with every node heart-beating and nothing else to do.
func (b *bench) measureIdleLoad(ctx context.Context) error {
	load, err := b.clusterLoad(ctx, 10*time.Second)
	if err != nil {
		return err
	}
	b.idleLoad = load
	logf("cluster idle: %.2f cores (kube-apiserver, etcd, kube-scheduler, kwok, kube-controller-manager)", load)
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
		if load <= b.idleLoad+0.1 {
			return nil
		}
		if time.Now().After(deadline) {
			logf("cluster still busy (%.2f cores, idle %.2f) two minutes after the last trial; going on", load, b.idleLoad)
			return nil
		}
	}
}
