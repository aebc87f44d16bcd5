#!/usr/bin/env bash
# Check a built operator image for the properties the Dockerfile promises (needs Docker; CI machines
# without Docker run tests/shipping/test_dockerfile.py, which checks the Dockerfile text instead).
#
#   docker build -t communication-operator:dev . && scripts/check-image.sh communication-operator:dev
#
# Checks: runs as a non-root numeric uid; tini is PID 1's program; helm is present at the pinned
# version; the operator starts its CLI with a read-only root filesystem and only a tmpfs at
# /tmp/operator; the final image holds no compiler or curl; helm can write its cache under the tmpfs.
set -euo pipefail

IMAGE=${1:?usage: scripts/check-image.sh IMAGE}
EXPECTED_HELM=${EXPECTED_HELM:-v4.2.4}
DOCKER=${DOCKER:-docker}

failures=0
pass() { printf 'PASS  %s\n' "$1"; }
fail() { printf 'FAIL  %s: %s\n' "$1" "$2" >&2; failures=$((failures + 1)); }

command -v "$DOCKER" >/dev/null || { echo "check-image: '$DOCKER' not found; this script needs Docker" >&2; exit 2; }
"$DOCKER" image inspect "$IMAGE" >/dev/null || { echo "check-image: image $IMAGE not found (build it first)" >&2; exit 2; }

# The same restrictions the Helm chart applies to the pod.
run_locked() {
  "$DOCKER" run --rm --read-only --tmpfs /tmp/operator:rw,uid=65532,gid=65532,mode=0700 \
    --cap-drop ALL --security-opt no-new-privileges "$@"
}

user=$("$DOCKER" image inspect --format '{{.Config.User}}' "$IMAGE")
uid=${user%%:*}
if [[ $uid =~ ^[0-9]+$ && $uid -ne 0 ]]; then pass "image user is numeric non-root ($user)"; else fail "image user" "expected a numeric non-zero uid, got '$user'"; fi

actual_uid=$(run_locked --entrypoint id "$IMAGE" -u) || actual_uid=error
if [[ $actual_uid == "$uid" ]]; then pass "process runs as uid $actual_uid"; else fail "process uid" "got $actual_uid"; fi

entrypoint=$("$DOCKER" image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE")
if [[ $entrypoint == '["tini","--","communication-operator"]' ]]; then pass "entrypoint is tini -- communication-operator"; else fail "entrypoint" "$entrypoint"; fi
if run_locked --entrypoint tini "$IMAGE" --version >/dev/null; then pass "tini runs"; else fail "tini" "tini --version failed"; fi

helm_version=$(run_locked --entrypoint helm "$IMAGE" version --short) || helm_version=error
if [[ $helm_version == "$EXPECTED_HELM"* ]]; then pass "helm $helm_version"; else fail "helm version" "expected $EXPECTED_HELM, got $helm_version"; fi

# helm must be able to write its repository config and cache with a read-only root filesystem.
if run_locked --entrypoint sh "$IMAGE" -c '
    set -e
    helm env | grep -q "^HELM_CACHE_HOME=\"/tmp/operator/"
    touch "$TMPDIR/probe"
    helm create "$TMPDIR/probe-chart" >/dev/null
    helm template probe "$TMPDIR/probe-chart" >/dev/null'; then
  pass "helm and temp files write under /tmp/operator with a read-only root"
else
  fail "writable dirs" "helm or TMPDIR could not write under /tmp/operator"
fi

if run_locked "$IMAGE" version >/dev/null; then pass "communication-operator version (read-only root)"; else fail "operator CLI" "communication-operator version failed"; fi

# No build tools in the final image.
leftovers=$(run_locked --entrypoint sh "$IMAGE" -c 'for t in gcc cc make curl wget git; do command -v "$t"; done; true')
if [[ -z $leftovers ]]; then pass "no compilers or downloaders in the image"; else fail "build tools present" "$(echo "$leftovers" | tr '\n' ' ')"; fi

# SIGTERM reaches the operator through tini: `docker stop` must finish well before its 10 s kill timeout.
cid=$("$DOCKER" run -d --read-only --tmpfs /tmp/operator:rw,uid=65532,gid=65532 --entrypoint tini "$IMAGE" -- sleep 300)
start=$(date +%s)
"$DOCKER" stop -t 10 "$cid" >/dev/null
elapsed=$(($(date +%s) - start))
"$DOCKER" rm -f "$cid" >/dev/null 2>&1 || true
if ((elapsed < 8)); then pass "SIGTERM is forwarded by tini (stopped in ${elapsed}s)"; else fail "signal forwarding" "stop took ${elapsed}s (SIGKILL after timeout?)"; fi

if ((failures > 0)); then
  echo "check-image: $failures check(s) failed for $IMAGE" >&2
  exit 1
fi
echo "check-image: all checks passed for $IMAGE"
