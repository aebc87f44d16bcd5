#!/bin/bash
# Build kube-apiserver + kube-controller-manager 1.20.2 from Debian bookworm's `kubernetes`
# source package with Debian's Go 1.19, and take etcd 3.4 from Debian. Nothing is installed
# system-wide: .debs are unpacked with `dpkg -x` under a private apt state directory.
# Usage: build-k8s.sh OUT_DIR   (exits at once when OUT_DIR already holds the binaries)
set -euo pipefail
OUT=$(realpath -m "${1:?usage: build-k8s.sh OUT_DIR}")
K8S_SOURCE_VERSION=1.20.5+really1.20.2-1.1+deb12u1
if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/kube-controller-manager" ] && [ -x "$OUT/etcd" ]; then
  echo "devcluster: control plane cached in $OUT"; exit 0
fi
mkdir -p "$(dirname "$OUT")"
W=$(mktemp -d "$(dirname "$OUT")/build.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/apt/lists/partial" "$W/debs"
step() { echo "devcluster: [$(date +%H:%M:%S)] $*"; }
URI=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  URI=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$URI" ] && [ -f /etc/apt/sources.list ]; then
  URI=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list)
fi
[ -n "$URI" ] || { echo "devcluster: no Debian mirror found in /etc/apt" >&2; exit 1; }
echo "deb $URI bookworm main" > "$W/apt/sources.list"
echo "deb-src $URI bookworm main" >> "$W/apt/sources.list"
APT=(-o "Dir::Etc::SourceList=$W/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
     -o "Dir::State::Lists=$W/apt/lists" -o "Dir::Cache::archives=$W/debs")
step "fetching package lists"
apt-get "${APT[@]}" update -qq
cd "$W"
step "downloading kubernetes $K8S_SOURCE_VERSION source and Go 1.19 (about 120 MB)"
apt-get "${APT[@]}" source --download-only -qq "kubernetes=$K8S_SOURCE_VERSION" >/dev/null
(cd debs && apt-get "${APT[@]}" download -qq golang-1.19-go golang-1.19-src rsync libpopt0 \
  golang-github-modern-go-reflect2-dev etcd-server >/dev/null)
for d in debs/*.deb; do dpkg -x "$d" root; done
tar xzf kubernetes_1.20.5+really1.20.2.orig.tar.gz
# k8s 1.20 vendors reflect2 v1.0.1, which segfaults once built with Go >= 1.18; Debian ships 1.0.2.
R=kubernetes-1.20.2/vendor/github.com/modern-go/reflect2
rm -f "$R"/*.go "$R"/*.s && cp root/usr/share/gocode/src/github.com/modern-go/reflect2/*.{go,s} "$R"/
mkdir -p wbin   # k8s's make needs rsync; Debian's rsync needs libpopt0 (both unpacked, not installed)
printf '#!/bin/sh\nLD_LIBRARY_PATH=%s/root/usr/lib/x86_64-linux-gnu exec %s/root/usr/bin/rsync "$@"\n' "$W" "$W" > wbin/rsync
chmod +x wbin/rsync
export GOROOT=$W/root/usr/lib/go-1.19 PATH=$W/wbin:$W/root/usr/lib/go-1.19/bin:$PATH
export GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOCACHE=$W/gocache GOPATH=$W/gopath
export KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 KUBE_GIT_TREE_STATE=clean
step "compiling kube-apiserver and kube-controller-manager (about 8 minutes on 2 cores)"
(cd kubernetes-1.20.2 && make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" GOLDFLAGS="-s -w" > "$W/make.log" 2>&1) \
  || { tail -40 "$W/make.log" >&2; exit 1; }
mkdir -p "$W/out"
cp kubernetes-1.20.2/_output/bin/kube-apiserver kubernetes-1.20.2/_output/bin/kube-controller-manager root/usr/bin/etcd "$W/out"/
rm -rf "$OUT" && mv "$W/out" "$OUT"
step "built: $("$OUT/kube-apiserver" --version)"
