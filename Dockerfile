# syntax=docker/dockerfile:1
# Container image of the communication-operator.
#
#   docker build -t communication-operator:0.1.0 .
#   scripts/check-image.sh communication-operator:0.1.0
#
# Two stages: the builder has pip, curl and the downloaded archives; the final stage receives only the
# virtualenv, the helm binary and tini, runs as uid 65532 and writes nothing outside /tmp/operator (an
# emptyDir in the Helm chart), so the root filesystem can be mounted read-only.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

# Helm is pinned by version and by the sha256 of the official archive. The sums are the ones the Helm
# project publishes next to each archive (https://get.helm.sh/helm-v4.2.4-linux-<arch>.tar.gz.sha256sum,
# also listed in the v4.2.4 release notes). helm 4, as the upstream image ships now: server-side apply,
# --rollback-on-failure, --force-conflicts. The operator also runs with helm 3 (build with
# HELM_VERSION=v3.19.0, HELM_SHA256_AMD64=a7f81ce08007091b86d8bd696eb4d86b8d0f2e1b9f6c714be62f82f96a594496,
# HELM_SHA256_ARM64=440cf7add0aee27ebc93fada965523c1dc2e0ab340d4348da2215737fc0d76ad).
# To move to another helm version, change all three arguments together.
ARG HELM_VERSION=v4.2.4
ARG HELM_SHA256_AMD64=c306b46f719b0a4da32d0f78ee21bf90ce8d602f15b22ab753f0674d1670a7f3
ARG HELM_SHA256_ARM64=564de2191b881e9f71b5606b25345821ea1682f06ab90499d3ab22b530176da1
# Set by BuildKit for the platform being built; amd64 when building without BuildKit.
ARG TARGETARCH=amd64

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl tini \
 && rm -rf /var/lib/apt/lists/*

RUN set -eu; \
    case "${TARGETARCH}" in \
      amd64) helm_sha256="${HELM_SHA256_AMD64}" ;; \
      arm64) helm_sha256="${HELM_SHA256_ARM64}" ;; \
      *) echo "no pinned helm sha256 for architecture ${TARGETARCH}" >&2; exit 1 ;; \
    esac; \
    curl --fail --silent --show-error --location --proto '=https' --retry 3 \
      "https://get.helm.sh/helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz" -o /tmp/helm.tar.gz; \
    echo "${helm_sha256}  /tmp/helm.tar.gz" | sha256sum -c -; \
    tar -xzf /tmp/helm.tar.gz -C /tmp "linux-${TARGETARCH}/helm"; \
    install -m 0755 "/tmp/linux-${TARGETARCH}/helm" /usr/local/bin/helm; \
    rm -rf /tmp/helm.tar.gz "/tmp/linux-${TARGETARCH}"; \
    /usr/local/bin/helm version --short

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# Build the wheel, then install it with its pinned dependencies into a venv that is copied as a whole.
# pip compiles the bytecode here, because the final image cannot write __pycache__ at run time.
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install /dist/*.whl \
 && /opt/venv/bin/communication-operator version


FROM ${PYTHON_IMAGE} AS final

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="communication-operator" \
      org.opencontainers.image.description="Connects a Kubernetes cluster to an OctoMesh Communication Controller and deploys its workloads with Helm" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"

# A fixed numeric uid/gid (the conventional "nonroot" 65532) so Kubernetes can verify runAsNonRoot.
RUN groupadd --system --gid 65532 operator \
 && useradd --system --uid 65532 --gid 65532 --home-dir /tmp/operator --no-create-home \
      --shell /usr/sbin/nologin operator \
 && mkdir -p /tmp/operator \
 && chown 65532:65532 /tmp/operator

COPY --from=builder /usr/bin/tini /usr/bin/tini
COPY --from=builder /usr/local/bin/helm /usr/local/bin/helm
COPY --from=builder /opt/venv /opt/venv

# Everything that writes goes under /tmp/operator: helm's repository cache and config, kubectl-style
# discovery caches, temp files (values files handed to helm) and HOME.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp/operator \
    TMPDIR=/tmp/operator \
    HELM_CACHE_HOME=/tmp/operator/helm/cache \
    HELM_CONFIG_HOME=/tmp/operator/helm/config \
    HELM_DATA_HOME=/tmp/operator/helm/data \
    KUBECACHEDIR=/tmp/operator/kube-cache \
    OPERATOR__LOG__FORMAT=json

USER 65532:65532
WORKDIR /tmp/operator

# 8080: liveness (/healthz); 9090: Prometheus metrics (/metrics).
EXPOSE 8080 9090

# tini runs as PID 1: it forwards SIGTERM to the operator (which then stops its helm runs cleanly
# instead of leaving releases pending) and reaps the processes helm leaves behind.
ENTRYPOINT ["tini", "--", "communication-operator"]
CMD ["run"]
