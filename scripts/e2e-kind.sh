#!/usr/bin/env bash
# The kind end-to-end run (docs/e2e.md): a fresh kind cluster, the operator image built and loaded into
# it, then `pytest tests/e2e`, whose session fixture starts the controller simulator and a chart
# repository on this host, installs charts/communication-operator pointing at them (via the kind
# network's gateway address) and plays the scenarios against real kubelets. The cluster is deleted at
# the end, also on failure.
#
# Needs docker, kind, helm and kubectl on PATH and the project in .venv (scripts/bootstrap, or
# `python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'`). It cannot run on this project's own
# CI machines (no Docker); .github/workflows/e2e-kind.yml runs it on GitHub Actions.
#
#   scripts/e2e-kind.sh                 # extra arguments go to pytest, e.g. -k restart -x
#   E2E_KEEP_CLUSTER=1 scripts/e2e-kind.sh   # leave the cluster for debugging
#
# Environment: E2E_CLUSTER_NAME (communication-operator-e2e), E2E_IMAGE (communication-operator:e2e),
# KIND_NODE_IMAGE (kind's default node image), E2E_HOST_ADDRESS (the kind network's IPv4 gateway).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${E2E_CLUSTER_NAME:-communication-operator-e2e}
IMAGE=${E2E_IMAGE:-communication-operator:e2e}
step() { echo "e2e-kind: [$(date +%H:%M:%S)] $*"; }

for tool in docker kind helm kubectl; do
  command -v "$tool" >/dev/null || { echo "e2e-kind: '$tool' is not on PATH; this script needs docker, kind, helm and kubectl" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "e2e-kind: docker is installed but the daemon does not answer (docker info failed)" >&2; exit 2; }
[ -x .venv/bin/pytest ] || { echo "e2e-kind: no .venv with pytest; run scripts/bootstrap or: python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'" >&2; exit 2; }

workdir=$(mktemp -d)
kubeconfig=$workdir/kubeconfig
cleanup() {
  status=$?
  if [ -n "${E2E_KEEP_CLUSTER:-}" ]; then
    step "keeping cluster $CLUSTER (kubeconfig: $kubeconfig); delete it with: kind delete cluster --name $CLUSTER"
  else
    step "deleting cluster $CLUSTER"
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    rm -rf "$workdir"
  fi
  exit "$status"
}
trap cleanup EXIT

step "creating kind cluster $CLUSTER"
kind create cluster --name "$CLUSTER" --kubeconfig "$kubeconfig" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}

step "building $IMAGE"
docker build -t "$IMAGE" .

step "loading $IMAGE into the cluster"
kind load docker-image "$IMAGE" --name "$CLUSTER"

if [ -z "${E2E_HOST_ADDRESS:-}" ]; then
  # Pods reach the host through the kind bridge network's gateway (host.docker.internal does not
  # resolve inside kind on Linux). kind networks also have an IPv6 gateway; take the IPv4 one.
  E2E_HOST_ADDRESS=$(docker network inspect kind --format '{{range .IPAM.Config}}{{.Gateway}} {{end}}' \
    | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' | head -n 1 || true)
  [ -n "$E2E_HOST_ADDRESS" ] || { echo "e2e-kind: could not find the kind network's IPv4 gateway; set E2E_HOST_ADDRESS" >&2; exit 2; }
fi

step "running tests/e2e (host address as pods see it: $E2E_HOST_ADDRESS)"
E2E_KUBECONFIG=$kubeconfig E2E_IMAGE=$IMAGE E2E_HOST_ADDRESS=$E2E_HOST_ADDRESS \
  .venv/bin/pytest tests/e2e -m e2e -v "$@"
