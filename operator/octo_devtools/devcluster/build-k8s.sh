#!/bin/bash
# Build kube-apiserver, kube-controller-manager, kube-scheduler and kubelet 1.20.2 from Debian bookworm's
# `kubernetes` source package with Debian's Go 1.19, take etcd 3.4 from Debian, and unpack the real node's
# runtime (containerd, runc, CNI plugins, busybox) from pinned Debian packages. Nothing is installed
# system-wide: .debs are unpacked with `dpkg -x` under a private apt state directory.
# Only what is missing from OUT_DIR is built or fetched (a cache holding the control plane gets the node
# parts added); every Go target still missing is built by one `make` so they share the build cache.
# Usage: build-k8s.sh OUT_DIR   (exits at once when OUT_DIR already holds everything)
set -euo pipefail
OUT=$(realpath -m "${1:?usage: build-k8s.sh OUT_DIR}")
K8S_SOURCE_VERSION=1.20.5+really1.20.2-1.1+deb12u1
# The real node's runtime, pinned (bookworm main); node-root/.pinned records what was unpacked.
NODE_PACKAGES=(
  "containerd=1.6.20~ds1-1+deb12u3"
  "runc=1.1.5+ds1-1+deb12u1"
  "containernetworking-plugins=1.1.1+ds1-3+b5"
  "busybox-static=1:1.35.0-4+deb12u1+b1"
)
# binary name -> make target
declare -A K8S_TARGETS=(
  [kube-apiserver]=cmd/kube-apiserver
  [kube-controller-manager]=cmd/kube-controller-manager
  [kube-scheduler]=cmd/kube-scheduler
  [kubelet]=cmd/kubelet
)
WHAT=()
for bin in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
  [ -x "$OUT/$bin" ] || WHAT+=("${K8S_TARGETS[$bin]}")
done
NEED_ETCD=0; [ -x "$OUT/etcd" ] || NEED_ETCD=1
NEED_NODE=0; [ "$(cat "$OUT/node-root/.pinned" 2>/dev/null)" = "${NODE_PACKAGES[*]}" ] || NEED_NODE=1
NEED_PAUSE=0; [ -x "$OUT/pause" ] || NEED_PAUSE=1
if [ ${#WHAT[@]} -eq 0 ] && [ $NEED_ETCD = 0 ] && [ $NEED_NODE = 0 ] && [ $NEED_PAUSE = 0 ]; then
  echo "devcluster: control plane and node cached in $OUT"; exit 0
fi
mkdir -p "$OUT"
W=$(mktemp -d "$(dirname "$OUT")/build.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/apt/lists/partial" "$W/debs" "$W/nodedebs"
step() { echo "devcluster: [$(date +%H:%M:%S)] $*"; }
# A reader never sees half a binary: copy next to the target, then rename.
install_bin() { cp "$1" "$OUT/$2.partial" && chmod 755 "$OUT/$2.partial" && mv -f "$OUT/$2.partial" "$OUT/$2"; }
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

if [ $NEED_NODE = 1 ]; then
  step "unpacking the node runtime: ${NODE_PACKAGES[*]}"
  (cd nodedebs && apt-get "${APT[@]}" download -qq "${NODE_PACKAGES[@]}" >/dev/null)
  rm -rf node-root && mkdir node-root
  for d in nodedebs/*.deb; do dpkg -x "$d" node-root; done
  echo "${NODE_PACKAGES[*]}" > node-root/.pinned
  rm -rf "$OUT/node-root.partial" && mv node-root "$OUT/node-root.partial"
  rm -rf "$OUT/node-root" && mv "$OUT/node-root.partial" "$OUT/node-root"
fi

GO_DEBS=()
if [ ${#WHAT[@]} -gt 0 ] || [ $NEED_PAUSE = 1 ]; then GO_DEBS+=(golang-1.19-go golang-1.19-src); fi
if [ ${#WHAT[@]} -gt 0 ]; then GO_DEBS+=(rsync libpopt0 golang-github-modern-go-reflect2-dev); fi
if [ $NEED_ETCD = 1 ]; then GO_DEBS+=(etcd-server); fi
if [ ${#GO_DEBS[@]} -gt 0 ]; then
  step "downloading ${GO_DEBS[*]}"
  (cd debs && apt-get "${APT[@]}" download -qq "${GO_DEBS[@]}" >/dev/null)
  for d in debs/*.deb; do dpkg -x "$d" root; done
fi
if [ $NEED_ETCD = 1 ]; then install_bin root/usr/bin/etcd etcd; fi
export GOROOT=$W/root/usr/lib/go-1.19 PATH=$W/wbin:$W/root/usr/lib/go-1.19/bin:$PATH
export GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOCACHE=$W/gocache GOPATH=$W/gopath

if [ $NEED_PAUSE = 1 ]; then
  step "building the pause binary for the node's sandbox image"
  mkdir -p pause
  cat > pause/main.go <<'GO'
// The node's sandbox ("pause") process: holds the pod's namespaces, reaps orphaned children, and exits
// on SIGINT/SIGTERM. Built with Debian's Go (static, no cgo) into the cache.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
GO
  (cd pause && GO111MODULE=off go build -trimpath -ldflags="-s -w" -o "$W/pause-bin" main.go)
  install_bin "$W/pause-bin" pause
fi

if [ ${#WHAT[@]} -gt 0 ]; then
  step "downloading kubernetes $K8S_SOURCE_VERSION source (about 35 MB)"
  apt-get "${APT[@]}" source --download-only -qq "kubernetes=$K8S_SOURCE_VERSION" >/dev/null
  tar xzf kubernetes_1.20.5+really1.20.2.orig.tar.gz
  # k8s 1.20 vendors reflect2 v1.0.1, which segfaults once built with Go >= 1.18; Debian ships 1.0.2.
  R=kubernetes-1.20.2/vendor/github.com/modern-go/reflect2
  rm -f "$R"/*.go "$R"/*.s && cp root/usr/share/gocode/src/github.com/modern-go/reflect2/*.{go,s} "$R"/
  mkdir -p wbin   # k8s's make needs rsync; Debian's rsync needs libpopt0 (both unpacked, not installed)
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s/root/usr/lib/x86_64-linux-gnu exec %s/root/usr/bin/rsync "$@"\n' "$W" "$W" > wbin/rsync
  chmod +x wbin/rsync
  export KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 KUBE_GIT_TREE_STATE=clean
  step "compiling ${WHAT[*]} (about 8 minutes for the control plane, 6 more for the node, on 2 cores)"
  # dockerless: without it the kubelet's cAdvisor retries /var/run/docker.sock for 5 s at startup.
  # The tag only selects files under the kubelet's docker support, so the other targets are unchanged.
  (cd kubernetes-1.20.2 && make WHAT="${WHAT[*]}" GOLDFLAGS="-s -w" GOFLAGS=-tags=dockerless > "$W/make.log" 2>&1) \
    || { tail -40 "$W/make.log" >&2; exit 1; }
  for target in "${WHAT[@]}"; do
    install_bin "kubernetes-1.20.2/_output/bin/${target#cmd/}" "${target#cmd/}"
  done
fi
step "built: $("$OUT/kube-apiserver" --version), $("$OUT/kubelet" --version), node runtime $(cat "$OUT/node-root/.pinned")"
