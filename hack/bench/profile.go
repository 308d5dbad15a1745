package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
)

// cpuProfileSeconds is the length of each CPU profile taken back to back during a trial; `go tool
// pprof` merges them: go tool pprof -top .demo/bench/profiles/cpu-nodeagentset-1-*.pb.gz.
const cpuProfileSeconds = 5

// profiler takes pprof profiles of the NodeAgentSet controller (--pprof-bind-address).
type profiler struct {
	url   string // http://127.0.0.1:port/debug/pprof
	dir   string
	httpc *http.Client
}

func (p *profiler) fetch(ctx context.Context, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.httpc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	f, err := os.Create(filepath.Join(p.dir, file))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// cpu takes CPU profiles back to back until the returned stop is called; stop waits for the last.
func (p *profiler) cpu(ctx context.Context, name string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for k := 1; ; k++ {
			select {
			case <-done:
				return
			default:
			}
			file := fmt.Sprintf("cpu-%s-%03d.pb.gz", name, k)
			if err := p.fetch(ctx, fmt.Sprintf("/profile?seconds=%d", cpuProfileSeconds), file); err != nil {
				logf("cpu profile %s: %v", file, err)
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// heap saves the heap profile (in-use and allocated since start).
func (p *profiler) heap(ctx context.Context, name string) {
	if err := p.fetch(ctx, "/heap", "heap-"+name+".pb.gz"); err != nil {
		logf("heap profile: %v", err)
	}
}
