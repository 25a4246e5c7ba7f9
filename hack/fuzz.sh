#!/usr/bin/env bash
# Runs every fuzz test of the module for a bounded number of inputs each (default 20000x; a count,
# not a duration: a duration can end with a spurious "context deadline exceeded" on a loaded
# machine). go test -fuzz accepts one
# target per invocation.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-20000x}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "fuzz $pkg $target ($fuzztime)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
	done
done
