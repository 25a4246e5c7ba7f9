# lanyard — build, generate, test.
SHELL := /bin/bash
GO ?= go
CONTROLLER_GEN = $(GO) tool controller-gen
FUZZTIME ?= 20000x
BIN ?= bin/lanyard
IMAGE ?= ghcr.io/lanyard-dev/lanyard
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
# The one way lanyard is built: the container image, the e2e suite and bench-memory all use it.
# Static (no cgo), reproducible paths, the version stamped into `lanyard version`.
LDFLAGS := -s -w -X github.com/lanyard-dev/lanyard/internal/cli.Version=$(VERSION)

.PHONY: all build image generate verify test unit bench-check e2e envtest-assets dev-cluster fuzz lint bench bench-go bench-suite bench-memory bench-load clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lanyard

## image: the container image (Dockerfile: this Makefile's build target in a Go image, copied onto
## distroless static nonroot). Needs a container engine.
image:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

## generate: regenerate deepcopy code, CRDs and RBAC (base, self-signed overlay) from the kubebuilder markers.
generate:
	$(CONTROLLER_GEN) object paths=./policy/...
	$(CONTROLLER_GEN) crd paths=./policy/... output:crd:dir=deploy/crds
	$(CONTROLLER_GEN) rbac:roleName=lanyard paths=./webhook/... output:rbac:dir=deploy/base/rbac
	$(CONTROLLER_GEN) rbac:roleName=lanyard-self-signed paths=./certs/... output:rbac:dir=deploy/overlays/self-signed/rbac

## verify: formatting, vet, tidy go.mod, generated files up to date.
verify:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	hack/verify-generated.sh

## test: every test — verification, unit and golden tests, the e2e suite against a real
## kube-apiserver + etcd (built once and cached outside the repository), short fuzzing.
test: verify lint unit bench-check e2e fuzz

## unit: unit, golden and CLI tests (no API server needed), under the race detector where a C
## toolchain is present (.ci/run installs gcc); packages that start goroutines fail on any left
## running (goleak).
RACE ?= $(shell command -v gcc >/dev/null 2>&1 && echo -race)
unit:
	$(if $(RACE),,@echo "no gcc: unit tests run without the race detector" >&2)
	$(GO) test $(RACE) -count=1 $$($(GO) list ./... | grep -v /e2e)

## bench-check: every Go benchmark of the hot path runs once (so none rots), and the allocation
## budgets per admission and per container hold — outside the race detector, which changes what
## allocates. Nothing here is timed.
bench-check:
	$(GO) test -count=1 -run 'Allocs|Allocations' -bench . -benchtime 1x ./mutate/ ./webhook/ ./policy/...

## envtest-assets: build (first time, ~15 min) or reuse etcd and kube-apiserver for envtest.
envtest-assets:
	@hack/envtest-assets.sh >/dev/null

## e2e: the end-to-end suite against a real API server.
e2e: envtest-assets
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" $(GO) test -count=1 -v -timeout 15m ./e2e/

fuzz:
	hack/fuzz.sh $(FUZZTIME)

## dev-cluster: a real kube-apiserver + etcd with lanyard's CRDs, webhook configurations and the
## example policy, for trying lanyard serve locally (see README).
dev-cluster: envtest-assets
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" $(GO) run ./hack/devcluster \
	  -apply examples/manifests/namespaces.yaml -apply examples/manifests/serviceaccounts.yaml -apply examples/policy

## bench-memory: RSS of lanyard serve with 20,000 ServiceAccounts + 20,000 IdentityAssociations.
bench-memory: envtest-assets build
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" $(GO) run ./bench/cachemem -lanyard $(BIN)

## bench-load: SPEC §9's load benchmark, lanyard against a floor server (bench/load/README.md). By
## default a smoke run: the floor server measured against another floor, no lanyard needed. For a
## real run, start `make dev-cluster`, `make build` and `bin/lanyard serve ...` (README "Run the
## webhook"), seed once with `go run ./bench/load -seed -kubeconfig /tmp/lanyard-dev/kubeconfig`,
## then: make bench-load LANYARD_TARGET=https://127.0.0.1:9443/mutate-v1-pod LANYARD_PID=<pid of
## lanyard serve> [LOAD_FLAGS='-shapes typical,large -workers 8 -duration 10s' or '-rate 500'].
bench-load:
	$(if $(LANYARD_TARGET),$(GO) run ./bench/load -target '$(LANYARD_TARGET)' $(if $(LANYARD_PID),-target-pid $(LANYARD_PID)) $(LOAD_FLAGS),$(GO) run ./bench/load -smoke $(LOAD_FLAGS))

## bench: the Go micro-benchmarks (bench-go), then SPEC §9's performance table (bench-suite),
## written into docs/performance.md. A few minutes.
bench:
	$(MAKE) --no-print-directory bench-go
	$(MAKE) --no-print-directory bench-suite

## bench-go: the in-process Go benchmarks (BenchmarkMutate, BenchmarkCacheMemory, ...).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./mutate/ ./policy/...

## bench-suite: lanyard (as make build builds it) and the floor server in one run on a real
## kube-apiserver + etcd at N = 1,000 and 20,000 ServiceAccounts + IdentityAssociations: CPU per
## admission, throughput, p99 at 500 req/s (steady and during the status catch-up after a fresh
## start), RSS; the table replaces the marked block of docs/performance.md. More flags (durations,
## rounds, sizes, -profile-dir for CPU profiles): BENCH_FLAGS='-rounds 3'; see bench/load/README.md.
bench-suite: envtest-assets build
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" $(GO) run ./bench/suite -lanyard $(BIN) -write-docs docs/performance.md $(BENCH_FLAGS)

## lint: golangci-lint (pinned, installed once outside the repository).
lint:
	hack/golangci-lint.sh

clean:
	rm -rf bin
