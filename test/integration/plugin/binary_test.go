package plugin

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The binary as kubectl runs it: its exit codes, and nothing on stderr but kubectl-style errors (no
// client-go logging from the watch, say).
var _ = Describe("the kubectl-nas binary", Serial, func() {
	var binary string
	BeforeEach(func() {
		binary = filepath.Join(GinkgoT().TempDir(), "kubectl-nas")
		build := exec.Command("go", "build", "-o", binary, "github.com/nodeagentset/nodeagentset/cmd/kubectl-nas")
		out, err := build.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
	})

	runBinary := func(args ...string) result {
		cmd := exec.Command(binary, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else {
			Expect(err).NotTo(HaveOccurred())
		}
		return result{out: out.String(), err: errOut.String(), code: code}
	}

	It("exits 0 on success and 1 on errors, with kubectl's messages only", func() {
		s := newScenario()
		s.createSet("agent", "example.com/agent:1")
		s.addNode("worker-1")
		s.setStatus("agent", counters(1, 1, 1))

		Expect(runBinary("-n", s.ns, "rollout", "status", "agent")).To(Equal(result{out: `node agent set "agent" successfully rolled out` + "\n"}))

		s.setStatus("agent", counters(1, 0, 0))
		r := runBinary("-n", s.ns, "rollout", "status", "agent", "--timeout", "1s")
		Expect(r).To(Equal(result{
			out:  `Waiting for node agent set "agent" rollout to finish: 0 out of 1 new pods have been updated...` + "\n",
			err:  "error: timed out waiting for the condition\n",
			code: 1,
		}))

		r = runBinary("-n", s.ns, "nodes", "agent")
		Expect(r.code).To(Equal(0))
		Expect(r.err).To(BeEmpty())
		Expect(lines(r.out)).To(HaveLen(2))

		Expect(runBinary("-n", s.ns, "rollout", "undo", "nope")).To(Equal(result{
			err: `Error from server (NotFound): nodeagentsets.apps.nodeagentset.io "nope" not found` + "\n", code: 1}))
		Expect(runBinary("-n", s.ns, "bogus").code).To(Equal(1))
		help := runBinary()
		Expect(help.code).To(Equal(0))
		Expect(help.out).To(ContainSubstring("kubectl nas why NAME NODE"))
	})

	It("stops watching on an interrupt", func() {
		s := newScenario()
		s.createSet("agent", "example.com/agent:1")
		s.setStatus("agent", counters(1, 0, 0))
		cmd := exec.Command(binary, "--kubeconfig", kubeconfig, "-n", s.ns, "rollout", "status", "agent")
		stdout, err := cmd.StdoutPipe()
		Expect(err).NotTo(HaveOccurred())
		Expect(cmd.Start()).To(Succeed())
		// Interrupt once it watches: it has printed the first status.
		line, err := bufio.NewReader(stdout).ReadString('\n')
		Expect(err).NotTo(HaveOccurred())
		Expect(line).To(HavePrefix("Waiting for node agent set"))
		Expect(cmd.Process.Signal(os.Interrupt)).To(Succeed())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		Eventually(done, 10*time.Second).Should(Receive(HaveOccurred()))
		Expect(cmd.ProcessState.ExitCode()).To(Equal(1))
	})
})
