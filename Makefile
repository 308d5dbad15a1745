# NodeAgentSet. `make help` lists the targets.

IMG ?= ghcr.io/nodeagentset/nodeagentset:latest
# Kubernetes version of the binaries built by hack/k8s-binaries.sh (envtest, local cluster).
K8S_VERSION ?= 1.37.1

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

LOCALBIN ?= $(CURDIR)/bin
K8S_BIN ?= $(LOCALBIN)/k8s/$(K8S_VERSION)
# Our kubectl (built by hack/k8s-binaries.sh, `make cluster-binaries`) once it exists, else the one on PATH.
KUBECTL ?= $(if $(wildcard $(K8S_BIN)/kubectl),$(K8S_BIN)/kubectl,kubectl)
GO ?= go

CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
# Helm and promtool are built from hack/tools/go.mod, whose requirements pin these versions (keep the two
# in step: test/docs checks them), so that their hundreds of modules stay out of the main go.mod.
HELM_VERSION ?= v4.3.2
PROMTOOL_VERSION ?= v0.316.0
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
PROMTOOL ?= $(LOCALBIN)/promtool-$(PROMTOOL_VERSION)

# envtest's control plane: respect KUBEBUILDER_ASSETS when the user already set it.
KUBEBUILDER_ASSETS ?= $(K8S_BIN)
export KUBEBUILDER_ASSETS

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD and RBAC manifests from the markers (and the chart's copies of them).
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:generateEmbeddedObjectMeta=true paths="./..." output:crd:artifacts:config=config/crd/bases
	@rm -f $(CHART)/crds/*.yaml && cp config/crd/bases/*.yaml $(CHART)/crds/
	@cp config/rbac/role.yaml $(CHART)/files/manager-role.yaml
	@cp config/prometheus/prometheus_rule.yaml $(CHART)/files/prometheus-rule.yaml

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## go vet.
	$(GO) vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint (config in .golangci.yml).
	$(GOLANGCI_LINT) run ./...

.PHONY: lint-fix
lint-fix: $(GOLANGCI_LINT) ## golangci-lint with fixes.
	$(GOLANGCI_LINT) run --fix ./...

# The Helm chart: hand-written templates checked against config/default (test/chart), plus copies of
# config/'s generated files that `make manifests` refreshes.
CHART = charts/nodeagentset

# What controller-gen writes, and the chart's copies: make verify checks these, and only these, against the commit.
GENERATED = api/v1alpha1/zz_generated.deepcopy.go config/crd/bases config/rbac/role.yaml $(CHART)/crds $(CHART)/files

.PHONY: verify
verify: manifests generate verify-chart ## Regenerate everything and fail when the committed files differ; the chart must render config/default.
	@git diff --exit-code -- $(GENERATED) || { echo "generated files are out of date: run 'make manifests generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- $(GENERATED))" || { git status --porcelain -- $(GENERATED); echo "untracked generated files: commit them"; exit 1; }

##@ Test

.PHONY: test
test: test-unit test-alerts test-helm test-integration test-e2e ## Run every test.

.PHONY: test-helm
test-helm: $(HELM) ## helm lint and helm template of charts/nodeagentset; its objects must be config/default's (test/chart).
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) --set namespace.create=true,metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,image.digest=sha256:0000000000000000000000000000000000000000000000000000000000000000
	$(HELM) template nodeagentset $(CHART) --namespace nodeagentset-system >/dev/null
	HELM=$(HELM) $(GO) test ./test/chart/ -count=1

.PHONY: verify-chart
verify-chart: $(HELM) ## The chart renders config/default and config/prometheus (test/chart).
	HELM=$(HELM) $(GO) test ./test/chart/ -count=1

.PHONY: test-alerts
test-alerts: $(PROMTOOL) ## promtool's rule unit tests of config/prometheus/prometheus_rule.yaml's alerts (test/alerts).
	@tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	$(GO) run ./hack/promrules config/prometheus/prometheus_rule.yaml >"$$tmp/nodeagentset-rules.yaml"; \
	cp test/alerts/*_test.yaml "$$tmp/"; \
	$(PROMTOOL) check rules "$$tmp/nodeagentset-rules.yaml"; \
	$(PROMTOOL) test rules "$$tmp"/*_test.yaml

.PHONY: test-unit
test-unit: ## Unit tests (no API server): planner, pod building, status, rule citations (test/docs), hack's tools (image, release).
	$(GO) test ./api/... ./internal/... ./cmd/... ./test/docs/... ./hack/...

# How long make fuzz runs each fuzz target of the planner.
FUZZTIME ?= 2m
.PHONY: fuzz
fuzz: ## Property tests of the planner: each Fuzz target runs with -fuzz for FUZZTIME (2m); make test-unit runs only their seeds.
	@for target in $$($(GO) test ./internal/planner/ -list '^Fuzz' | grep '^Fuzz'); do \
		echo "== $$target ($(FUZZTIME))"; \
		$(GO) test ./internal/planner/ -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

.PHONY: test-integration
test-integration: envtest-assets ## Integration tests against a real API server (envtest).
	$(GO) test ./test/integration/... -timeout 30m -v -ginkgo.v=false

.PHONY: test-e2e
# The chaos spec runs last, on a cluster of its own: its faults reach kwok, and what they leave there
# (once, a kwok that waited minutes for node Leases) must reach no other spec (docs/design/chaos.md).
E2E_TEST = K8S_VERSION=$(K8S_VERSION) K8S_BIN=$(K8S_BIN) HELM=$(HELM) $(GO) test -tags e2e ./test/e2e/ -v -timeout 30m
test-e2e: cluster-binaries $(HELM) ## End-to-end tests on their own local cluster (nodeagentset-e2e), then the chaos spec short, then the benchmark's smoke run.
	$(E2E_TEST) -ginkgo.label-filter '!chaos'
	$(E2E_TEST) -ginkgo.label-filter chaos || { \
		f=$${E2E_STATE_DIR:-.demo/e2e}/chaos/violations.txt; \
		if [ -s "$$f" ]; then echo "chaos invariants violated ($$f):"; head -c 4000 "$$f"; fi; exit 1; }
	$(MAKE) bench-smoke

# The chaos spec of the e2e suite (docs/design/chaos.md) alone, long: make test runs it short (40 nodes, 60 s).
CHAOS_NODES ?= 300
CHAOS_DURATION ?= 5m
.PHONY: test-chaos
test-chaos: cluster-binaries ## The e2e chaos spec alone, long (CHAOS_NODES=300 CHAOS_DURATION=5m): faults during rollouts, invariants on every pod event.
	CHAOS_NODES=$(CHAOS_NODES) CHAOS_DURATION=$(CHAOS_DURATION) K8S_VERSION=$(K8S_VERSION) K8S_BIN=$(K8S_BIN) \
		$(GO) test -tags e2e ./test/e2e/ -v -timeout 60m -ginkgo.label-filter chaos -ginkgo.v

# The benchmark against the upstream DaemonSet controller on its own kwok cluster (docs/benchmarks.md).
NODES ?= 1000
PAIRS ?= 3
MODE ?= equal
# Pods of no DaemonSet or NodeAgentSet on every node during the whole run, in both controllers' caches:
# the controllers' memory with a realistic cluster, e.g. make bench NODES=1000 PAIRS=1 UNRELATED=20.
UNRELATED ?= 0
.PHONY: bench
bench: cluster-binaries ## Benchmark NodeAgentSet vs the DaemonSet controller (NODES=1000 PAIRS=3 MODE=equal|defaults UNRELATED=0).
	K8S_VERSION=$(K8S_VERSION) $(GO) run ./hack/bench --nodes $(NODES) --pairs $(PAIRS) --mode $(MODE) --unrelated-pods-per-node $(UNRELATED) --k8s-bin $(K8S_BIN)

.PHONY: bench-gate
bench-gate: cluster-binaries ## The readiness gate: NODES nodes join with the gate taint; agent available vs gate lifted, node writes.
	K8S_VERSION=$(K8S_VERSION) $(GO) run ./hack/bench --gate --nodes $(NODES) --mode $(MODE) --k8s-bin $(K8S_BIN)

# The soak (not in CI): the NodeAgentSet controller alone, at its shipped client defaults, three sets,
# node churn and a rollout every few minutes; fails unless its memory stays flat (docs/benchmarks.md, "Soak").
SOAK_DURATION ?= 30m
SOAK_ROLLOUT_EVERY ?= 3m
SOAK_CHURN_RATE ?= 1
.PHONY: soak
soak: cluster-binaries ## Soak: NODES nodes, SOAK_DURATION=30m of node churn (SOAK_CHURN_RATE=1/s), a rollout every SOAK_ROLLOUT_EVERY=3m; memory flat?
	K8S_VERSION=$(K8S_VERSION) $(GO) run ./hack/bench --soak --nodes $(NODES) --mode defaults --soak-duration $(SOAK_DURATION) \
		--soak-rollout-every $(SOAK_ROLLOUT_EVERY) --soak-churn-rate $(SOAK_CHURN_RATE) --k8s-bin $(K8S_BIN)

.PHONY: bench-planner
bench-planner: ## Go benchmarks of one planner pass at 1,000, 5,000 and 65,000 nodes.
	$(GO) test ./internal/planner/ -run '^$$' -bench . -benchmem -count 3

.PHONY: bench-smoke
bench-smoke: cluster-binaries ## The benchmark at 50 nodes, one pair, 10 s idle (about a minute): fails if either controller breaks a rollout rule.
	K8S_VERSION=$(K8S_VERSION) $(GO) run ./hack/bench --smoke --unrelated-pods-per-node $(UNRELATED) --k8s-bin $(K8S_BIN)

.PHONY: envtest-assets
envtest-assets: ## Build kube-apiserver and etcd from Go modules into bin/k8s/<version> (cached).
	@if [ "$(KUBEBUILDER_ASSETS)" = "$(K8S_BIN)" ]; then K8S_VERSION=$(K8S_VERSION) hack/k8s-binaries.sh kube-apiserver etcd; \
	else echo "using KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS)"; fi

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary into bin/manager.
	$(GO) build -o bin/manager ./cmd

.PHONY: run
run: manifests generate fmt vet ## Run the controller from your host against the current kubeconfig.
	$(GO) run ./cmd

# The release's version (the image tag, the plugin's archives): the nearest tag, else the commit.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Every timestamp in the image and the release's archives: the commit's time, so that the same commit
# gives the same bytes (docs/design/release.md).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_REPOSITORY ?= ghcr.io/nodeagentset/nodeagentset
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_DIR ?= $(LOCALBIN)/image

.PHONY: image
image: ## Build the manager's OCI image (IMAGE_PLATFORMS) without Docker into IMAGE_DIR; prints the index digest.
	$(GO) run ./hack/image build --out $(IMAGE_DIR) --platforms $(IMAGE_PLATFORMS) --repository $(IMAGE_REPOSITORY) \
		--tag $(VERSION) --source-date-epoch $(SOURCE_DATE_EPOCH) --revision "$$(git rev-parse HEAD 2>/dev/null)"

# Where make release writes the release's assets (replaced).
RELEASE_DIR ?= dist

.PHONY: release
release: image $(HELM) ## A release into RELEASE_DIR (VERSION=v0.1.0): the image, install.yaml, the chart, kubectl-nas archives, SHA256SUMS, krew/nas.yaml.
	$(GO) run ./hack/release --version $(VERSION) --out $(RELEASE_DIR) --image-dir $(IMAGE_DIR) --helm $(HELM) \
		--source-date-epoch $(SOURCE_DATE_EPOCH)
	@cat $(RELEASE_DIR)/SHA256SUMS

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine; `make image` does not).
	docker build -t $(IMG) .

# kubectl runs any executable named kubectl-<name> on PATH as `kubectl <name>`. PLUGIN_DIR: where
# install-plugin puts kubectl-nas; default GOBIN, else GOPATH/bin.
PLUGIN_DIR ?= $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)

.PHONY: build-plugin
build-plugin: ## Build the kubectl plugin into bin/kubectl-nas.
	$(GO) build -trimpath -ldflags "-s -w" -o bin/kubectl-nas ./cmd/kubectl-nas

.PHONY: install-plugin
install-plugin: build-plugin ## Install kubectl-nas into PLUGIN_DIR (on PATH), for `kubectl nas`.
	install -d "$(PLUGIN_DIR)"
	install -m 0755 bin/kubectl-nas "$(PLUGIN_DIR)/kubectl-nas"
	@echo "installed $(PLUGIN_DIR)/kubectl-nas"
	@case ":$$PATH:" in *":$(PLUGIN_DIR):"*) ;; *) echo "note: $(PLUGIN_DIR) is not on PATH: add it, or run make install-plugin PLUGIN_DIR=<a folder on PATH>";; esac

##@ Deployment

# kustomize through `kubectl kustomize` (kubectl 1.37 bundles kustomize v5.8): the standalone kustomize
# v5.8.3 needs Go 1.27 to install.
.PHONY: install
install: manifests ## Install the CRDs into the current cluster (server-side apply: the CRD is too large for client-side apply).
	$(KUBECTL) kustomize config/crd | $(KUBECTL) apply --server-side --force-conflicts -f -

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs from the current cluster.
	$(KUBECTL) kustomize config/crd | $(KUBECTL) delete --ignore-not-found -f -

# deploy sets the image in a throw-away overlay of config/default (in the git-ignored .demo/: kustomize
# takes relative paths only), so that it leaves the tree clean.
.PHONY: deploy
deploy: manifests ## Deploy the controller to the current cluster with image IMG.
	@mkdir -p .demo; tmp="$$(mktemp -d .demo/deploy.XXXXXX)"; trap 'rm -rf "$$tmp"' EXIT; img='$(IMG)'; name="$$img"; ref=""; \
	case "$$img" in \
	  *@*) name="$${img%@*}"; ref="  digest: \"$${img#*@}\"" ;; \
	  *:*) tag="$${img##*:}"; if [[ "$$tag" != */* ]]; then name="$${img%:*}"; ref="  newTag: \"$$tag\""; fi ;; \
	esac; \
	{ printf 'resources:\n- %s\nimages:\n- name: controller\n  newName: "%s"\n' "../../config/default" "$$name"; \
	  [ -z "$$ref" ] || echo "$$ref"; } >"$$tmp/kustomization.yaml"; \
	echo "deploying config/default with image $$img"; \
	$(KUBECTL) kustomize "$$tmp" | $(KUBECTL) apply --server-side --force-conflicts -f -

.PHONY: undeploy
undeploy: ## Remove the controller from the current cluster.
	$(KUBECTL) kustomize config/default | $(KUBECTL) delete --ignore-not-found -f -

##@ Local cluster

# Worker nodes of the local cluster (plus one control-plane node): make cluster-up LOCAL_CLUSTER_WORKERS=10
LOCAL_CLUSTER_WORKERS ?= 4

.PHONY: cluster-binaries
cluster-binaries: ## Build the local cluster's binaries (control plane, kubectl, kwok, kwokctl) into bin/k8s/<version> (cached).
	K8S_VERSION=$(K8S_VERSION) K8S_BIN_DIR=$(K8S_BIN) hack/k8s-binaries.sh kube-apiserver etcd kube-scheduler kube-controller-manager kubectl kwok kwokctl

.PHONY: cluster-up
cluster-up: cluster-binaries ## Start (or reuse) the local kwok cluster on 127.0.0.1; prints the KUBECONFIG to export.
	K8S_VERSION=$(K8S_VERSION) K8S_BIN=$(K8S_BIN) hack/local-cluster.sh up $(LOCAL_CLUSTER_WORKERS)

.PHONY: cluster-down
cluster-down: ## Delete the local cluster.
	K8S_VERSION=$(K8S_VERSION) K8S_BIN=$(K8S_BIN) hack/local-cluster.sh down

.PHONY: demo
demo: ## Local cluster + CRD + the controller (as its ServiceAccount) + config/samples + a rolling update; stays up.
	K8S_VERSION=$(K8S_VERSION) K8S_BIN=$(K8S_BIN) LOCAL_CLUSTER_WORKERS=$(LOCAL_CLUSTER_WORKERS) GO=$(GO) hack/demo.sh up

.PHONY: demo-down
demo-down: ## Stop the demo's controller and delete the local cluster.
	K8S_VERSION=$(K8S_VERSION) K8S_BIN=$(K8S_BIN) hack/demo.sh down

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

$(CONTROLLER_GEN): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

$(GOLANGCI_LINT): | $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))


$(HELM): | $(LOCALBIN)
	$(call go-build-tool,$(HELM),helm.sh/helm/v4/cmd/helm)

$(PROMTOOL): | $(LOCALBIN)
	$(call go-build-tool,$(PROMTOOL),github.com/prometheus/prometheus/cmd/promtool)

.PHONY: helm promtool
helm: $(HELM) ## Build helm from hack/tools/go.mod into bin/ (cached; about 4 minutes cold).
promtool: $(PROMTOOL) ## Build promtool from hack/tools/go.mod into bin/ (cached; about 5 minutes cold).

# go-build-tool builds a command of the tools module (hack/tools/go.mod) into bin/ under a versioned name.
define go-build-tool
@[ -f "$(1)" ] || { \
	set -e; \
	echo "building $(2) from hack/tools/go.mod"; \
	(cd hack/tools && $(GO) build -o "$(1).tmp-$$$$" $(2)); \
	mv "$(1).tmp-$$$$" "$(1)"; \
}
endef

# go-install-tool installs a Go module's command into bin/ under a versioned name.
define go-install-tool
@[ -f "$(1)" ] || { \
	set -e; \
	echo "installing $(2)@$(3)"; \
	GOBIN=$(LOCALBIN)/.gobin-$$$$ $(GO) install $(2)@$(3); \
	mv $(LOCALBIN)/.gobin-$$$$/$$(basename $(2)) $(1); \
	rm -rf $(LOCALBIN)/.gobin-$$$$; \
}
endef
