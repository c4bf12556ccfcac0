# syntax=docker/dockerfile:1
# unsamv2 CPU image: Prefect flow-run pods (the Ray driver), CPU Ray nodes, CI.
#   docker build -f infra/docker/cpu.Dockerfile -t ghcr.io/unsamv2/unsamv2:0.1.0-cpu .
# Versions: the base image is pinned by tag (add @sha256:<digest> when you publish); every Python
# package is pinned by requirements/constraints.txt (the ARGs below must match it; a test checks).
FROM python:3.11.14-slim-bookworm

ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ARG SAM2_VERSION=1.1.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/unsamv2 \
    SAM2_BUILD_CUDA=0 \
    RAY_USAGE_STATS_ENABLED=0 \
    RAY_AUTH_MODE=token \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

# git: Prefect's git_clone pull step; wget: KubeRay health probes; tini: signal handling.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git wget ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1000 unsamv2 \
    && useradd --uid 1000 --gid 1000 --create-home --home-dir /home/unsamv2 --shell /bin/bash unsamv2 \
    && python -m venv /opt/venv

# Dependency layers (change only with the pins): torch first, then sam2 without build isolation
# (so pip builds it against this torch, not a second downloaded one), then the project's deps.
COPY requirements/constraints.txt /opt/build/constraints.txt
RUN pip install -c /opt/build/constraints.txt --extra-index-url ${TORCH_INDEX_URL} \
        torch==${TORCH_VERSION}+cpu torchvision==${TORCHVISION_VERSION}+cpu \
    && pip install -c /opt/build/constraints.txt setuptools
RUN pip install -c /opt/build/constraints.txt --no-build-isolation sam2==${SAM2_VERSION}
COPY pyproject.toml infra/docker/requirements_from_pyproject.py /opt/build/
RUN python /opt/build/requirements_from_pyproject.py /opt/build/pyproject.toml all > /opt/build/requirements.txt \
    && pip install -c /opt/build/constraints.txt -r /opt/build/requirements.txt

# Flow-run pods of the Kubernetes work pool start through this: they join the Ray cluster as a
# node without CPUs/GPUs, so Ray Data's driver runs on a Ray node (infra/docker/ray-driver-entrypoint.sh).
COPY --chmod=0755 infra/docker/ray-driver-entrypoint.sh /usr/local/bin/unsamv2-ray-driver

# Source last: a code change rebuilds only these layers.
WORKDIR /opt/unsamv2
COPY pyproject.toml README.md prefect.yaml ./
COPY unsamv2 ./unsamv2
COPY tasks ./tasks
COPY flows ./flows
RUN pip install --no-deps --no-build-isolation . \
    && rm -rf build *.egg-info \
    && chown -R unsamv2:unsamv2 /opt/unsamv2

USER unsamv2
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["unsamv2", "--help"]
