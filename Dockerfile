# syntax=docker/dockerfile:1
# One image for every process of the orchestrator; the command selects which:
#   orchestrator run        the operator (k8s/base)
#   orchestrator zk-sync    the ZooKeeper sync engine
#   orchestrator probe      the monitoring probe (one per node)
#   orchestrator app        the monitoring app (deploy/rollouts)
#   python -m sim ...       the Mesos/Marathon simulator (docker-compose's `mesos` profile)
# The base is pinned by tag; CI (.github/workflows/ci.yml) may pin it by digest as well.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: wheels for the package and all its dependencies ---------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY orchestrator_operator ./orchestrator_operator
RUN pip wheel --wheel-dir /wheels .

# --- UI (React + Vite) --------------------------------------------------------------------
# When ui/ lands, build it here (FROM node:22-bookworm-slim AS ui; npm ci; npm run build)
# and copy ui/dist into the runtime stage (/opt/orchestrator/ui); the monitoring app
# serves the built assets from there.

# --- runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="orchestrator" \
      org.opencontainers.image.description="Kubernetes operator for Apache Mesos platforms: operator, ZooKeeper sync engine, monitoring probe and app" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 orchestrator \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin orchestrator
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels orchestrator-operator \
 && orchestrator --help >/dev/null
WORKDIR /opt/orchestrator
# The simulator is a test peer outside the package; `python -m sim` runs it from here.
COPY sim ./sim
# Numeric user so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8080 9102 4040
ENTRYPOINT ["orchestrator"]
CMD ["--help"]
