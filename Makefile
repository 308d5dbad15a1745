# NodeAgentSet. `make help` lists the targets.

IMG ?= ghcr.io/nodeagentset/nodeagentset:latest
# Kubernetes version of the binaries built by hack/k8s-binaries.sh (envtest, local cluster).
K8S_VERSION ?= 1.37.1

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

LOCALBIN ?= $(CURDIR)/bin
K8S_BIN ?= $(LOCALBIN)/k8s/$(K8S_VERSION)
GO ?= go

CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
KUSTOMIZE_VERSION ?= v5.8.3

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)

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
manifests: $(CONTROLLER_GEN) ## Generate the CRD and RBAC manifests from the markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases

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

.PHONY: verify
verify: manifests generate ## Regenerate everything and fail when the committed files differ.
	@git diff --exit-code -- api config || { echo "generated files are out of date: run 'make manifests generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- api config)" || { git status --porcelain -- api config; echo "untracked generated files: commit them"; exit 1; }

##@ Test

.PHONY: test
test: test-unit test-integration ## Run every test.

.PHONY: test-unit
test-unit: ## Unit tests (no API server): planner, pod building, status.
	$(GO) test ./api/... ./internal/... ./cmd/...

.PHONY: test-integration
test-integration: envtest-assets ## Integration tests against a real API server (envtest).
	$(GO) test ./test/integration/... -timeout 30m -v -ginkgo.v=false

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

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests $(KUSTOMIZE) ## Install the CRDs into the current cluster (server-side apply: the CRD is too large for client-side apply).
	$(KUSTOMIZE) build config/crd | kubectl apply --server-side --force-conflicts -f -

.PHONY: uninstall
uninstall: manifests $(KUSTOMIZE) ## Remove the CRDs from the current cluster.
	$(KUSTOMIZE) build config/crd | kubectl delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests $(KUSTOMIZE) ## Deploy the controller to the current cluster with image IMG.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | kubectl apply --server-side --force-conflicts -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) ## Remove the controller from the current cluster.
	$(KUSTOMIZE) build config/default | kubectl delete --ignore-not-found -f -

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

$(CONTROLLER_GEN): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

$(GOLANGCI_LINT): | $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

$(KUSTOMIZE): | $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

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
