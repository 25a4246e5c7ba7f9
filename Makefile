# lanyard — build, generate, test.
GO ?= go
CONTROLLER_GEN = $(GO) tool controller-gen
FUZZTIME ?= 5s
BIN ?= bin/lanyard

.PHONY: all build generate verify test unit fuzz lint bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/lanyard

## generate: regenerate deepcopy code, CRDs and RBAC from the kubebuilder markers.
generate:
	$(CONTROLLER_GEN) object paths=./policy/...
	$(CONTROLLER_GEN) crd paths=./policy/... output:crd:dir=deploy/crds
	$(CONTROLLER_GEN) rbac:roleName=lanyard paths=./webhook/... output:rbac:dir=deploy/base/rbac

## verify: formatting, vet, tidy go.mod, generated files up to date.
verify:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	hack/verify-generated.sh

## test: every test — verification, unit and golden tests, and a short run of each fuzz test.
test: verify unit fuzz

unit:
	$(GO) test -count=1 ./...

fuzz:
	hack/fuzz.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./mutate/ ./policy/...

lint:
	$(GO) vet ./...
	@command -v golangci-lint >/dev/null && golangci-lint run ./... || echo "golangci-lint not installed; ran go vet"

clean:
	rm -rf bin
