# kubectl-mesh — run `make` or `make help` for the targets.

SHELL        := /usr/bin/env bash
.SHELLFLAGS  := -eu -o pipefail -c
.DEFAULT_GOAL := help

MODULE   := github.com/kubectl-mesh/kubectl-mesh
BIN      := $(CURDIR)/bin
LAB_DIR  := $(CURDIR)/.lab
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X $(MODULE)/pkg/version.Version=$(VERSION) -X $(MODULE)/pkg/version.Commit=$(COMMIT)
GO       ?= go
export GOTOOLCHAIN := local
# Some k8s.io modules are unknown to the checksum database; go.sum pins them.
export GONOSUMDB   := k8s.io

# Lab programs, built from the Go module proxy at the versions of hack/tools/go.mod.
K8S_VERSION  := v1.37.0
K8S_LDFLAGS  := -s -w $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,-X $(p).gitVersion=$(K8S_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=37 -X $(p).gitTreeState=clean)
LAB_TOOLS    := $(BIN)/kube-apiserver $(BIN)/etcd $(BIN)/kubectl
GOLANGCI     := $(BIN)/golangci-lint

TEST_FLAGS ?= -count=1 -timeout 30m

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Build

.PHONY: build
build: ## Build bin/kubectl-mesh (and bin/mesh-webhook when present).
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/kubectl-mesh ./cmd/kubectl-mesh
	@if [ -f cmd/mesh-webhook/main.go ]; then \
	  $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/mesh-webhook ./cmd/mesh-webhook; fi

.PHONY: tools
tools: $(LAB_TOOLS) ## Build the lab programs (kube-apiserver, etcd, kubectl) into bin/.

$(BIN)/kube-apiserver: hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && $(GO) build -trimpath -ldflags '$(K8S_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(BIN)/kubectl: hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && $(GO) build -trimpath -ldflags '$(K8S_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/kubectl

$(BIN)/etcd: hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && $(GO) build -trimpath -ldflags '-s -w' -o $@ go.etcd.io/etcd/server/v3

$(GOLANGCI): hack/lint/go.mod hack/lint/go.sum
	cd hack/lint && $(GO) build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

.PHONY: test-deps
test-deps: tools build krew-tools ## Install/build what the tests need (lab programs, openssl).
	@hack/ensure-packages.sh openssl

##@ Test

.PHONY: test
test: test-deps ## Run unit, end-to-end and conformance tests (starts real API servers; Istio's own pilot judges every route).
	$(GO) test $(TEST_FLAGS) ./...
	cd test/conformance && $(GO) test $(TEST_FLAGS) ./...

.PHONY: test-conformance
test-conformance: test-deps ## Export on a lab and follow every route through Istio's own pilot (test/conformance, its own module).
	cd test/conformance && $(GO) test $(TEST_FLAGS) ./...

.PHONY: test-unit
test-unit: ## Run unit tests only (no lab).
	$(GO) test $(TEST_FLAGS) -short ./...

FUZZTIME ?= 30s

.PHONY: fuzz
fuzz: ## Fuzz the four mesh-webhook admission handlers (ServiceEntries and DestinationRules, both modes) for FUZZTIME (default 30s).
	$(GO) test -run '^$$' -fuzz '^FuzzAdmissionReview$$' -fuzztime $(FUZZTIME) ./pkg/webhook

.PHONY: bench-webhook
bench-webhook: tools ## Interleaved create latency on a lab API server: ServiceEntries without admission, policy only, mesh-webhook ×1/×2, ClusterIP Services; an oversized entry; handler admissions/s per core.
	$(GO) run ./hack/bench-webhook -n 2000 -c 16 -rounds 3 -replicas 1,2 -oversized
	$(GO) test -run '^$$' -bench Admission -cpu 1 ./pkg/webhook

.PHONY: bench-export
bench-export: tools ## Export 100 Services to 3 lab clusters vs one kubectl apply per object: ratio and API requests per service.
	$(GO) run ./hack/bench-export -services 100

.PHONY: lint
lint: $(GOLANGCI) ## gofmt, go vet, golangci-lint and go mod tidy checks.
	@out=$$(gofmt -l cmd pkg test hack); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI) run ./...
	cd test/conformance && $(GO) vet ./... && $(GOLANGCI) run --config ../../.golangci.yml ./...
	@hack/check-tidy.sh . hack/tools hack/lint hack/release/krew hack/image test/conformance

##@ Release

RELEASE_BASE_URL ?= https://github.com/kubectl-mesh/kubectl-mesh/releases/download/$(VERSION)
IMAGE            ?= ghcr.io/kubectl-mesh/mesh-webhook
KREW_TOOLS       := $(BIN)/krew $(BIN)/validate-krew-manifest

$(BIN)/krew: hack/release/krew/go.mod hack/release/krew/go.sum
	cd hack/release/krew && $(GO) build -o $@ sigs.k8s.io/krew/cmd/krew

$(BIN)/validate-krew-manifest: hack/release/krew/go.mod hack/release/krew/go.sum
	cd hack/release/krew && $(GO) build -o $@ sigs.k8s.io/krew/cmd/validate-krew-manifest

.PHONY: krew-tools
krew-tools: $(KREW_TOOLS) ## Build Krew and its manifest validator into bin/ (pinned in hack/release/krew/go.mod).

.PHONY: release
release: ## Cross-compile, archive, checksum and render the Krew manifest into dist/ (VERSION=vX.Y.Z, RELEASE_BASE_URL=…).
	$(GO) run ./hack/release build -version '$(VERSION)' -commit '$(COMMIT)' -base-url '$(RELEASE_BASE_URL)' -dist dist

.PHONY: krew-validate
krew-validate: krew-tools $(BIN)/kubectl ## Check dist/ with Krew's validator, install each linux archive with Krew, run it through kubectl.
	$(GO) run ./hack/release validate -dist dist

.PHONY: release-figures
release-figures: $(BIN)/kubectl ## Print dist/'s archive and binary sizes and the kubectl mesh --help cold-start time.
	$(GO) run ./hack/release figures -dist dist

IMAGE_ARCH ?= amd64
IMAGE_TAR  ?= $(CURDIR)/dist/mesh-webhook-image.tar

.PHONY: image
image: ## Build the mesh-webhook OCI image (oci-archive IMAGE_TAR) without Docker; tag IMAGE:VERSION, IMAGE_ARCH.
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o '$(IMAGE_TAR).bin/mesh-webhook' ./cmd/mesh-webhook
	cd hack/image && $(GO) run . -binary '$(IMAGE_TAR).bin/mesh-webhook' -arch $(IMAGE_ARCH) -image '$(IMAGE):$(VERSION)' -version '$(VERSION)' -out '$(IMAGE_TAR)'
	rm -rf '$(IMAGE_TAR).bin'

.PHONY: deploy-manifests
deploy-manifests: $(BIN)/kubectl ## Render deploy/webhook overlays with the image of VERSION into dist/deploy/ (IMAGE=repository).
	$(GO) run ./hack/release deploy -version '$(VERSION)' -image '$(IMAGE)' -dist dist

##@ Lab

.PHONY: lab-up
lab-up: tools build ## Start cluster1..cluster3 and the current-Istio east, west in the background; writes .lab/kubeconfig.
	$(GO) run ./hack/lab up -dir $(LAB_DIR)

.PHONY: lab-down
lab-down: ## Stop the lab's processes (by PID) and remove its data.
	$(GO) run ./hack/lab down -dir $(LAB_DIR)

.PHONY: lab-status
lab-status: ## Show whether the lab is running.
	$(GO) run ./hack/lab status -dir $(LAB_DIR)

.PHONY: demo
demo: build lab-up ## Walk through kubectl mesh on the lab (leaves the lab up).
	PATH="$(BIN):$$PATH" KUBECONFIG=$(LAB_DIR)/kubeconfig hack/demo.sh

##@ Cleanup

.PHONY: clean
clean: lab-down ## Stop the lab and remove build output (bin/, dist/, .lab/).
	rm -rf $(BIN) dist $(LAB_DIR)
