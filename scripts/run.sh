#!/usr/bin/env bash
# `make run`: run the operator and its sync controller (the two containers of the operator's
# pod), the monitoring app with the web UI and a probe, against the current kubeconfig.
# With none, first start a local platform in .testenv/ (docs/getting-started.md): the control
# plane with 3 KWOK nodes whose pods in namespace `default` run as programs (a real ZooKeeper
# server behind each ZooKeeper pod, the simulator sim/ behind Mesos masters, agents and
# Marathon), then apply examples/mesoscluster.yaml.
# Ctrl-C stops everything it started; the next run starts from a fresh .testenv/.
#
# Environment: TESTENV_DIR (default .testenv), HEALTH_PORT (8080), SYNC_HEALTH_PORT (8081),
# UI_PORT (4040), UI_DIST (ui/dist, built when missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=".venv/bin/python"
orchestrator=".venv/bin/orchestrator"
kubectl="$("$python" -m testenv build | tail -1)/kubectl"
state="$(realpath -m "${TESTENV_DIR:-.testenv}")"
health_port="${HEALTH_PORT:-8080}"
sync_port="${SYNC_HEALTH_PORT:-8081}"
ui_port="${UI_PORT:-4040}"
ui_dist="${UI_DIST:-ui/dist}"

testenv_pid=""
pids=()
stop_all() {
  local pid alive
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 120); do # up to 60 s, then SIGKILL
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.5
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
}
cleanup() {
  trap - EXIT INT TERM
  echo "make run: stopping"
  # The programs first, then the control plane (which stops the pods' programs itself).
  ((${#pids[@]})) && stop_all "${pids[@]}"
  [[ -n "$testenv_pid" ]] && stop_all "$testenv_pid"
  wait 2>/dev/null || true
  [[ -n "${app_dir:-}" ]] && rm -rf "$app_dir"
  echo "make run: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A KUBECONFIG left from an earlier `make run` names a control plane that has stopped.
if [[ -n "${KUBECONFIG:-}" && "$(realpath -m "$KUBECONFIG")" == "$state/kubeconfig" ]]; then
  echo "make run: KUBECONFIG=$KUBECONFIG is the local control plane of an earlier make run," \
    "which has stopped: ignoring it and starting a fresh one (\`unset KUBECONFIG\` to skip this)"
  unset KUBECONFIG
fi

if [[ -n "${KUBECONFIG:-}" || -f "$HOME/.kube/config" ]]; then
  config="${KUBECONFIG:-$HOME/.kube/config}"
  if ! "$kubectl" get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
    server="$("$kubectl" config view --minify -o 'jsonpath={.clusters[0].cluster.server}' \
      2>/dev/null || true)"
    if [[ "$server" =~ ^https?://(127\.|localhost[:/]|\[::1\]) ]]; then
      echo "make run: $config points at $server, a local control plane that does not" \
        "answer (left from an earlier run that has stopped?): \`unset KUBECONFIG\` (or move" \
        "$config away) and make run starts its own local platform." >&2
    else
      echo "make run: the cluster of $config (${server:-no server named}) does not answer;" \
        "check it with \`kubectl --kubeconfig $config get --raw /readyz\`, or \`unset" \
        "KUBECONFIG\` (and move ~/.kube/config away) for a local platform." >&2
    fi
    exit 1
  fi
else
  reason="$("$python" -c 'from testenv.zookeeper import zookeeper_missing_reason as r; print(r() or "")')"
  if [[ -n "$reason" ]]; then
    echo "make run: the local platform runs real ZooKeeper servers: $reason" \
      "(\`make system-deps\` installs it)" >&2
    exit 1
  fi
  echo "no kubeconfig: starting a local platform in $state/ (a control plane with 3 KWOK" \
    "nodes; the pods of namespace default run as programs)"
  # The cluster's names for the ZooKeeper pods, read by every Python process started here
  # (testenv/site/sitecustomize.py) and by the ZooKeeper servers: testenv/cluster_dns.py.
  export TESTENV_HOSTS_FILE="$state/hosts"
  export PYTHONPATH="$PWD/testenv/site${PYTHONPATH:+:$PYTHONPATH}"
  rm -f "$state/ready"
  "$python" -m testenv up --nodes 3 --dir "$state" --sim-pods default &
  testenv_pid=$!
  for _ in $(seq 1 600); do
    [[ -f "$state/ready" ]] && break
    kill -0 "$testenv_pid" 2>/dev/null || {
      code=0
      wait "$testenv_pid" || code=$?
      ((code == 130)) && exit 130 # interrupted (Ctrl-C) while starting
      echo "make run: the local control plane failed to start (logs in $state/logs)" >&2
      exit 1
    }
    sleep 0.5
  done
  [[ -f "$state/ready" ]] || { echo "make run: testenv did not become ready" >&2; exit 1; }
  export KUBECONFIG="$state/kubeconfig"
  local_platform=1
fi

"$kubectl" apply -f crds/
"$kubectl" wait --for=condition=Established --timeout=60s crd -l app.kubernetes.io/part-of=orchestrator

"$orchestrator" run --health-host 127.0.0.1 --health-port "$health_port" &
pids+=($!)
for _ in $(seq 1 120); do
  "$python" -c 'import sys, urllib.request as r; r.urlopen(sys.argv[1], timeout=2)' \
    "http://127.0.0.1:$health_port/readyz" 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "make run: the operator exited" >&2; exit 1; }
  sleep 0.5
done

if [[ -n "${local_platform:-}" ]]; then
  sync_state="$state/zk-sync-state"
  app_dir="" # inside $state, which the next run empties
  token_file="$state/ui-token"
else
  sync_state=".zk-sync-state"
  app_dir="$(mktemp -d)"
  token_file="$app_dir/ui-token"
fi
mkdir -p "$sync_state"
"$orchestrator" zk-sync controller --state-dir "$sync_state" \
  --health-host 127.0.0.1 --health-port "$sync_port" &
pids+=($!)

# The monitoring app (with the UI when it can be built) and one probe on this host.
(umask 077 && "$python" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$token_file")
ui_args=()
if [[ ! -f "$ui_dist/index.html" ]] && command -v npm >/dev/null; then
  [[ -f ui/node_modules/.package-lock.json ]] || make --no-print-directory ui-deps || true
  if [[ -f ui/node_modules/.package-lock.json ]]; then
    echo "make run: building the UI into $ui_dist"
    "$python" -c 'import sys; from pathlib import Path; from testenv.monitor_app import build_ui
build_ui(Path(sys.argv[1]).resolve())' "$ui_dist" || true
  fi
fi
if [[ -f "$ui_dist/index.html" ]]; then
  ui_args=(--ui-dist "$ui_dist")
else
  echo "make run: no UI in $ui_dist (\`make ui-deps\` then \`cd ui && npm run build\`);" \
    "the app serves its API only"
fi
"$orchestrator" app --listen 127.0.0.1 --port "$ui_port" --token-file "$token_file" \
  "${ui_args[@]}" &
pids+=($!)
probe_args=()
[[ -S /var/run/docker.sock ]] || probe_args=(--no-docker)
"$orchestrator" probe --app "http://127.0.0.1:$ui_port" --token-file "$token_file" \
  "${probe_args[@]}" &
pids+=($!)

if [[ -n "${local_platform:-}" ]]; then
  "$kubectl" apply -f examples/mesoscluster.yaml
  # One line when the example is up (the operator's status, as `kubectl get` shows it);
  # short requests, so that stopping this loop leaves no kubectl behind.
  (
    phase() {
      "$kubectl" get mesoscluster demo --request-timeout=5s -o "jsonpath={.status.$1}" \
        2>/dev/null || true
    }
    until [[ "$(phase phase)" == Ready ]]; do sleep 1; done
    echo "make run: MesosCluster demo is Ready (leading master $(phase leadingMaster))"
  ) &
  pids+=($!)
fi
cat <<MSG

The operator is running (health, readiness and metrics on :$health_port), and
the sync controller beside it (on :$sync_port).
The UI: http://127.0.0.1:$ui_port/  (sign in with the token in $token_file:
  cat $token_file  -- it is not printed here)
Watch it with:
  export KUBECONFIG=$KUBECONFIG${TESTENV_HOSTS_FILE:+ TESTENV_HOSTS_FILE=$TESTENV_HOSTS_FILE PYTHONPATH=$PYTHONPATH}
  $kubectl get mesosclusters -A -w
  $kubectl get mesoscluster demo -o yaml
MSG
if [[ -n "${local_platform:-}" ]]; then
  cat <<MSG
Move demo to a new ZooKeeper ensemble (docs/zk-migration.md):
  $kubectl apply -f examples/zkmigration.yaml
  $orchestrator zk-migrate advance demo-to-zk-b --through 6
  $orchestrator zk-migrate status demo-to-zk-b --watch
Programs' logs: $state/simpods/logs/, the control plane's: $state/logs/.
MSG
fi
echo "Press Ctrl-C to stop."
wait "${pids[0]}"
