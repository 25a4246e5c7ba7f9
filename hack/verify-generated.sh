#!/usr/bin/env bash
# Fails when the checked-in generated files (deepcopy, CRDs) differ from what controller-gen makes
# from the current markers. Generates into a temporary directory; the work tree is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go tool controller-gen object paths=./policy/... output:object:dir="$tmp/object"
go tool controller-gen crd paths=./policy/... output:crd:dir="$tmp/crds"
go tool controller-gen rbac:roleName=lanyard paths=./webhook/... output:rbac:dir="$tmp/rbac"
go tool controller-gen rbac:roleName=lanyard-self-signed paths=./certs/... output:rbac:dir="$tmp/rbac-self-signed"
status=0
for f in "$tmp"/object/*.go; do
	diff -u "policy/v1alpha1/$(basename "$f")" "$f" || status=1
done
for f in "$tmp"/crds/*.yaml; do
	diff -u "deploy/crds/$(basename "$f")" "$f" || status=1
done
diff -u deploy/base/rbac/role.yaml "$tmp/rbac/role.yaml" || status=1
diff -u deploy/overlays/self-signed/rbac/role.yaml "$tmp/rbac-self-signed/role.yaml" || status=1
if [ "$status" -ne 0 ]; then
	echo "generated files are stale: run 'make generate' and commit the result" >&2
fi
exit "$status"
