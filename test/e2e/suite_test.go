//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	// The suite's controller-runtime clients log (with WithName); without a logger controller-runtime
	// prints a warning and a stack trace into the run's output.
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	SetDefaultEventuallyTimeout(2 * time.Minute)
	// Without it an Eventually given the spec's context waits as long as the context: a failing spec
	// would hang the suite until its -timeout.
	EnforceDefaultTimeoutsWhenUsingContexts()
	SetDefaultEventuallyPollingInterval(time.Second)
	SetDefaultConsistentlyDuration(3 * time.Second)
	SetDefaultConsistentlyPollingInterval(500 * time.Millisecond)
	RunSpecs(t, "NodeAgentSet e2e suite")
}

var env *environment

var _ = BeforeSuite(func(ctx SpecContext) {
	env = newEnvironment()
	env.start(ctx)
}, NodeTimeout(15*time.Minute))

// AfterSuite stops the controller and fails the suite when its log shows a refused request: the RBAC
// of config/rbac misses a permission the controller uses. The cluster goes in the cleanup that
// BeforeSuite registered (after this).
var _ = AfterSuite(func(ctx SpecContext) {
	if env == nil {
		return
	}
	env.stopManager()
	env.checkManagerLog()
}, NodeTimeout(2*time.Minute))

// Every spec: the controller must still be running, and a failed spec gets the end of its log and a
// copy of the cluster's component logs (kwok-controller's above all: a kwok that ignored node Leases
// failed three specs in CI runs before its log showed why; see expectDead).
var _ = AfterEach(func() {
	if report := CurrentSpecReport(); report.Failed() {
		AddReportEntry("controller log (last 40 lines)", env.managerLogTail(40))
		copyClusterLogs(filepath.Join(env.stateDir, "failed-specs", fmt.Sprintf("line-%d", report.LeafNodeLocation.LineNumber)))
	}
	Expect(env.managerExited()).To(BeFalse(), "the controller exited:\n%s", env.managerLogTail(40))
})
