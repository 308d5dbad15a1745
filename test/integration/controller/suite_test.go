// Package controller tests the NodeAgentSet controller against a real API server (envtest). There is
// no scheduler and no kubelet: the tests play both, binding pods through the binding subresource and
// setting their phase and Ready condition.
package controller

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/nodeagentset/nodeagentset/internal/controller/nodeagentset"
	"github.com/nodeagentset/nodeagentset/test/integration/testenv"
)

var (
	ctx       context.Context
	cancel    context.CancelFunc
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8s       client.Client
	clientset *kubernetes.Clientset
	scheme    = testenv.Scheme()
	// managerWrites counts the writes of the suite's manager, by namespace or node.
	managerWrites = newWriteCounter()
)

func TestController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "NodeAgentSet controller integration suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	testEnv, cfg, err = testenv.Start(scheme)
	Expect(err).NotTo(HaveOccurred())

	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	clientset, err = kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())

	// The manager and the controller are wired as cmd/main.go wires them; the manager's requests go
	// through managerWrites, which counts its writes (random_specs_test.go looks for hot loops).
	config := nodeagentset.Config{MaxConcurrentReconciles: 2}
	mgrCfg := rest.CopyConfig(cfg)
	mgrCfg.Wrap(managerWrites.wrap)
	mgr, err := ctrl.NewManager(mgrCfg, nodeagentset.ManagerOptions(config))
	Expect(err).NotTo(HaveOccurred())
	_, err = nodeagentset.SetupWithManager(ctx, mgr, config)
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	cancel()
	// The manager needs a moment to stop its workers before the API server goes.
	time.Sleep(100 * time.Millisecond)
	Expect(testEnv.Stop()).To(Succeed())
})
