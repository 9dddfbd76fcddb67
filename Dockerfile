# One image for every process of the orchestrator; the command selects which:
#   orchestrator run        the operator (k8s/base)
#   orchestrator zk-sync    the ZooKeeper sync engine
#   orchestrator probe      the monitoring probe (one per node)
#   orchestrator app        the monitoring app (deploy/rollouts), serving the UI from
#                           $ORCHESTRATOR_UI_DIST (/opt/orchestrator/ui)
#   python -m sim ...       the Mesos/Marathon simulator (docker-compose's `mesos` profile)
#
# Needs BuildKit (docker buildx, or DOCKER_BUILDKIT=1 with Docker 20.10+): it skips the UI
# stage that is not selected. No `# syntax=` line on purpose: the built-in Dockerfile frontend
# is enough, and an offline build could not pull a frontend image.
#
# Real builds (network): `docker build -t orchestrator:dev .` — the UI is built in a node
# image, Python packages come from PyPI.
# Offline builds (no registry, no network; docs/delivery.md, tests/integration/
# test_delivery_image.py): a locally made base (scripts/make-base-image.sh), wheels made on the
# host in build/wheels, the UI built on the host:
#   docker build --build-arg PYTHON_IMAGE=orchestrator-base:bookworm-py311 \
#     --build-arg UI=ui-prebuilt -t orchestrator:dev .
#
# Bases are pinned by tag; CI (.github/workflows/ci.yml) may pin them by digest as well. Any
# PYTHON_IMAGE works that has `python3` 3.11 with the venv module, groupadd and useradd.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim
# Which stage provides the built UI: ui-node (build it here) or ui-prebuilt (ui/dist from the
# build context, built on the host with `cd ui && npm ci && npm run build`).
ARG UI=ui-node

# --- UI (React + Vite), built in a node image ---------------------------------------------
FROM ${NODE_IMAGE} AS ui-node
WORKDIR /ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY ui/index.html ui/tsconfig.json ui/vite.config.ts ./
COPY ui/src ./src
RUN npm run build

# --- UI, built on the host ----------------------------------------------------------------
FROM scratch AS ui-prebuilt
# A directory of the build context holding the built UI (index.html, assets/).
ARG UI_DIST=ui/dist
COPY ${UI_DIST} /ui/dist

FROM ${UI} AS ui

# --- build: the package and its dependencies in a venv ------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Wheels made on the host (`pip wheel . setuptools -w build/wheels`), if any: then pip
# installs from them only (--no-index), with no network. The brackets make the COPY a
# pattern, which may match nothing (also when build/ itself is missing: hence one on each
# part of the path): without build/wheels pip uses PyPI as usual.
COPY buil[d]/wheel[s] /wheels/
COPY pyproject.toml README.md ./
COPY orchestrator_operator ./orchestrator_operator
RUN set -eu; \
    if [ -n "$(ls -A /wheels 2>/dev/null)" ]; then set -- --no-index --find-links=/wheels; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install "$@" .; \
    /opt/venv/bin/orchestrator --help >/dev/null

# --- runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="orchestrator" \
      org.opencontainers.image.description="Kubernetes operator for Apache Mesos platforms: operator, ZooKeeper sync engine, monitoring probe and app" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    ORCHESTRATOR_UI_DIST=/opt/orchestrator/ui
RUN groupadd --system --gid 10001 orchestrator \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin orchestrator
# The venv refers to the base's python3 by path: the same base as the build stage.
COPY --from=build /opt/venv /opt/venv
WORKDIR /opt/orchestrator
# The simulator is a test peer outside the package; `python -m sim` runs it from here.
COPY sim ./sim
COPY --from=ui /ui/dist ./ui
RUN orchestrator --help >/dev/null && test -f ui/index.html
# Numeric user so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8080 9102 4040
ENTRYPOINT ["orchestrator"]
CMD ["--help"]
