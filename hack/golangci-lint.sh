#!/usr/bin/env bash
# Runs golangci-lint at a pinned version, installed once from the Go module proxy into a cache
# outside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${GOLANGCI_LINT_VERSION:-v2.15.0}
bin_dir="$(cd "$(go env GOCACHE)/.." && pwd)/lanyard-tools/golangci-lint-${version}"
if [ ! -x "$bin_dir/golangci-lint" ]; then
	echo "installing golangci-lint ${version} (one-time)..." >&2
	mkdir -p "$bin_dir"
	(cd "$(mktemp -d)" && GOBIN="$bin_dir" GOFLAGS=-mod=mod go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@${version}")
fi
exec "$bin_dir/golangci-lint" run ./...
