#!/usr/bin/env bash
# `make run`: run the operator and its sync controller (the two containers of the operator's
# pod) against the current kubeconfig; with none, start the local control plane (testenv)
# first, install the CRDs, apply examples/mesoscluster.yaml and print how to watch it.
# Ctrl-C stops them and, if it was started here, testenv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=".venv/bin/python"
kubectl="$("$python" -m testenv build | tail -1)/kubectl"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [[ -z "${KUBECONFIG:-}" && ! -f "$HOME/.kube/config" ]]; then
  echo "no kubeconfig: starting the local control plane (testenv) with 3 KWOK nodes"
  rm -f .testenv/ready
  "$python" -m testenv up --nodes 3 --dir .testenv &
  pids+=($!)
  for _ in $(seq 1 600); do
    [[ -f .testenv/ready ]] && break
    kill -0 "${pids[0]}" 2>/dev/null || { echo "testenv failed to start" >&2; exit 1; }
    sleep 0.5
  done
  [[ -f .testenv/ready ]] || { echo "testenv did not become ready" >&2; exit 1; }
  export KUBECONFIG="$PWD/.testenv/kubeconfig"
  started_testenv=1
fi

"$kubectl" apply -f crds/
"$kubectl" wait --for=condition=Established --timeout=60s crd -l app.kubernetes.io/part-of=orchestrator

.venv/bin/orchestrator run --health-port "${HEALTH_PORT:-8080}" &
pids=($! "${pids[@]}")
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:${HEALTH_PORT:-8080}/readyz" >/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "the operator exited" >&2; exit 1; }
  sleep 0.5
done

mkdir -p .zk-sync-state
.venv/bin/orchestrator zk-sync controller --state-dir .zk-sync-state \
  --health-port "${SYNC_HEALTH_PORT:-8081}" &
pids+=($!)

if [[ -n "${started_testenv:-}" ]]; then
  "$kubectl" apply -f examples/mesoscluster.yaml
fi
cat <<MSG

The operator is running (health, readiness and metrics on :${HEALTH_PORT:-8080}), and
the sync controller beside it (on :${SYNC_HEALTH_PORT:-8081}).
Watch it with:
  export KUBECONFIG=$KUBECONFIG
  $kubectl get mesosclusters -A -w
  $kubectl get mesoscluster demo -o yaml
Press Ctrl-C to stop.
MSG
wait "${pids[0]}"
