#!/usr/bin/env bash
# envtest-assets.sh builds etcd and kube-apiserver from source via the Go module
# proxy and caches them outside the repository, for controller-runtime's envtest.
#
# Usage:  KUBEBUILDER_ASSETS="$(hack/envtest-assets.sh)" go test ./...
#
# The only thing written to stdout is the absolute path of the assets directory;
# all progress goes to stderr. The first run takes ~15 min on 2 cores (cold Go
# build cache); later runs return immediately.
#
# Why not setup-envtest / go install: setup-envtest needs to download release
# tarballs, and `go install` refuses both modules because their go.mod files
# carry `replace` directives. So each binary is built from a throw-away module
# that requires the real module and repeats its replaces with published versions.
#
# Needs only Go (and flock from util-linux, if present, to serialise concurrent
# runs).
set -euo pipefail
shopt -s inherit_errexit

ENVTEST_K8S_VERSION="${ENVTEST_K8S_VERSION:-v1.37.2}"
ENVTEST_ETCD_VERSION="${ENVTEST_ETCD_VERSION:-v3.6.16}"

k8s_version="v${ENVTEST_K8S_VERSION#v}"
etcd_version="v${ENVTEST_ETCD_VERSION#v}"

log() { printf '%s\n' "envtest-assets: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "go not found in PATH"

# k8s.io/kubernetes vX.Y.Z  <->  staging modules (k8s.io/api, ...) v0.Y.Z
if [[ ! "${k8s_version}" =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
	die "ENVTEST_K8S_VERSION must look like v1.37.2, got '${ENVTEST_K8S_VERSION}'"
fi
k8s_major="${BASH_REMATCH[1]}"
k8s_minor="${BASH_REMATCH[2]}"
k8s_patch="${BASH_REMATCH[3]}"
staging_version="v0.${k8s_minor}.${k8s_patch}"
if [[ ! "${etcd_version}" =~ ^v3\.[0-9]+\.[0-9]+$ ]]; then
	die "ENVTEST_ETCD_VERSION must look like v3.6.16, got '${ENVTEST_ETCD_VERSION}'"
fi

# The build happens in temp dirs outside this repo: don't let the caller's
# workspace or module flags leak in. Static binaries, no C toolchain needed.
export GOWORK=off GO111MODULE=on CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"

# Cache: $(go env GOCACHE)/../lanyard-envtest/k8s-<ver>-etcd-<ver>
gocache="$(go env GOCACHE)"
if [[ -z "${gocache}" || "${gocache}" == "off" ]]; then
	gocache="${XDG_CACHE_HOME:-${HOME}/.cache}/go-build"
fi
assets_dir="${gocache}/../lanyard-envtest/k8s-${k8s_version}-etcd-${etcd_version}"
mkdir -p "${assets_dir}"
assets_dir="$(cd "${assets_dir}" && pwd -P)"

# A binary counts as present if it runs and reports the pinned version. (Output
# is captured rather than piped to `grep -q`, which under pipefail can fail
# spuriously when grep exits early and the binary gets SIGPIPE.)
etcd_ok() {
	local v
	[[ -x "${assets_dir}/etcd" ]] || return 1
	v="$("${assets_dir}/etcd" --version 2>/dev/null)" || return 1
	[[ $'\n'"${v}"$'\n' == *$'\n'"etcd Version: ${etcd_version#v}"$'\n'* ]]
}
apiserver_ok() {
	local v
	[[ -x "${assets_dir}/kube-apiserver" ]] || return 1
	v="$("${assets_dir}/kube-apiserver" --version 2>/dev/null)" || return 1
	[[ $'\n'"${v}"$'\n' == *$'\n'"Kubernetes ${k8s_version}"$'\n'* ]]
}

# Fast path: everything already built.
if etcd_ok && apiserver_ok; then
	printf '%s\n' "${assets_dir}"
	exit 0
fi

# Serialise concurrent invocations (e.g. parallel make targets / CI jobs).
if command -v flock >/dev/null 2>&1; then
	exec 9>"${assets_dir}/.lock"
	if ! flock -n 9; then
		log "another envtest-assets.sh is building into ${assets_dir}; waiting..."
		flock 9
	fi
else
	log "flock not found; building without a lock"
fi

tmp_paths=()
cleanup() {
	local p
	for p in "${tmp_paths[@]+"${tmp_paths[@]}"}"; do
		# The Go module cache is read-only; make throw-away dirs removable.
		chmod -R u+w "${p}" 2>/dev/null || true
		rm -rf "${p}"
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# new_module <module-path>: creates a throw-away module dir in ${moddir}.
# (Sets a global rather than printing, so tmp_paths is updated in this shell.)
moddir=""
new_module() {
	moddir="$(mktemp -d "${TMPDIR:-/tmp}/lanyard-envtest.XXXXXX")"
	tmp_paths+=("${moddir}")
	(cd "${moddir}" && go mod init "$1") >/dev/null 2>&1 || die "go mod init failed in ${moddir}"
}

# write_tools <dir> <pkg>: blank-imports the main package so `go mod tidy`
# resolves its full dependency graph.
write_tools() {
	cat >"$1/tools.go" <<EOF
//go:build tools

package tools

import _ "$2"
EOF
}

# build_into <moddir> <pkg> <name> [go build flags...]: builds to a temp file in
# the cache dir, then renames it into place atomically.
build_into() {
	local dir="$1" pkg="$2" name="$3"
	shift 3
	local out="${assets_dir}/.${name}.tmp.$$"
	tmp_paths+=("${out}")
	(cd "${dir}" && go build -trimpath "$@" -o "${out}" "${pkg}") >&2
	mv -f "${out}" "${assets_dir}/${name}"
}

elapsed() {
	local s=$(($(date +%s) - $1))
	printf '%dm%02ds' $((s / 60)) $((s % 60))
}

build_etcd() {
	local start dir m
	start="$(date +%s)"
	log "building etcd ${etcd_version} (one-time, ~3 min on 2 cores)..."
	new_module lanyard.invalid/envtest-etcd
	dir="${moddir}"
	(
		cd "${dir}"
		go mod edit -require="go.etcd.io/etcd/server/v3@${etcd_version}"
		for m in api/v3 client/pkg/v3 client/v3 pkg/v3; do
			go mod edit -replace="go.etcd.io/etcd/${m}=go.etcd.io/etcd/${m}@${etcd_version}"
		done
	)
	write_tools "${dir}" go.etcd.io/etcd/server/v3
	(cd "${dir}" && go mod tidy) >&2
	build_into "${dir}" go.etcd.io/etcd/server/v3 etcd
	etcd_ok || die "built etcd does not report version ${etcd_version}"
	log "built etcd ${etcd_version} in $(elapsed "${start}")"
}

build_apiserver() {
	local start dir gomod staging m
	start="$(date +%s)"
	log "building kube-apiserver ${k8s_version} (one-time, ~12 min on 2 cores)..."
	new_module lanyard.invalid/envtest-kube-apiserver
	dir="${moddir}"

	# k8s.io/kubernetes replaces every k8s.io/X with ./staging/src/k8s.io/X;
	# repeat those replaces with the published staging module versions.
	gomod="$(cd "${dir}" && go mod download -json "k8s.io/kubernetes@${k8s_version}" |
		sed -n 's/^[[:space:]]*"GoMod":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p')"
	[[ -n "${gomod}" && -f "${gomod}" ]] || die "could not download k8s.io/kubernetes@${k8s_version}"
	staging="$(awk '
		{ sub(/^replace[[:space:]]+/, "") }
		$1 ~ /^k8s\.io\// && $2 == "=>" && $3 == ("./staging/src/" $1) { print $1 }
	' "${gomod}")"
	[[ -n "${staging}" ]] || die "no staging replaces found in ${gomod}"

	(
		cd "${dir}"
		go mod edit -require="k8s.io/kubernetes@${k8s_version}"
		while read -r m; do
			go mod edit -replace="${m}=${m}@${staging_version}"
		done <<<"${staging}"
	)
	write_tools "${dir}" k8s.io/kubernetes/cmd/kube-apiserver
	(cd "${dir}" && go mod tidy) >&2
	build_into "${dir}" k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver \
		-ldflags "-X k8s.io/component-base/version.gitVersion=${k8s_version} -X k8s.io/component-base/version.gitMajor=${k8s_major} -X k8s.io/component-base/version.gitMinor=${k8s_minor} -X k8s.io/component-base/version.gitTreeState=clean"
	apiserver_ok || die "built kube-apiserver does not report version ${k8s_version}"
	log "built kube-apiserver ${k8s_version} in $(elapsed "${start}")"
}

# Re-check under the lock: a concurrent run may have just finished.
etcd_ok || build_etcd
apiserver_ok || build_apiserver

printf '%s\n' "${assets_dir}"
