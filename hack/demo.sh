#!/usr/bin/env bash
# The demo: a local simulated cluster (hack/local-cluster.sh), the NodeAgentSet CRD, the controller
# running on this machine with exactly the rights of its ServiceAccount, the samples of config/samples,
# and a rolling update to watch. Everything stays up afterwards; `make demo-down` removes it.
#
#   hack/demo.sh up     (make demo)       build what is missing, start or reuse everything; safe to re-run
#                                         (the controller is restarted, the samples are re-applied)
#   hack/demo.sh down   (make demo-down)  stop the controller and delete the cluster
#   hack/demo.sh stop                     stop the controller only
#
# The controller runs as bin/manager with a kubeconfig (.demo/manager.kubeconfig) that impersonates
# system:serviceaccount:<namespace>:<name> of the ServiceAccount config/default renders, so it has the
# permissions of config/rbac and nothing more (a missing one shows up as "forbidden" in its log). Its
# log is .demo/manager.log, its pid .demo/manager.pid.
#
# Environment: K8S_VERSION (1.37.1), K8S_BIN (bin/k8s/$K8S_VERSION), DEMO_DIR (.demo), CLUSTER_NAME
# (nodeagentset), LOCAL_CLUSTER_WORKERS (4), DEMO_NAMESPACE (default), GO (go), DEMO_ROLLOUT_SET
# (local-metrics-agent), DEMO_ROLLOUT_IMAGE (registry.k8s.io/pause:3.10.1), DEMO_TIMEOUT (seconds
# each wait may take, 120).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export K8S_VERSION="${K8S_VERSION:-1.37.1}"
export K8S_BIN="${K8S_BIN:-$root/bin/k8s/$K8S_VERSION}"
export DEMO_DIR="${DEMO_DIR:-$root/.demo}"
export CLUSTER_NAME="${CLUSTER_NAME:-nodeagentset}"
WORKERS="${LOCAL_CLUSTER_WORKERS:-4}"
NAMESPACE="${DEMO_NAMESPACE:-default}"
GO="${GO:-go}"
ROLLOUT_SET="${DEMO_ROLLOUT_SET:-local-metrics-agent}"
NODES_SET="${DEMO_NODES_SET:-gpu-monitor}"
ROLLOUT_IMAGE="${DEMO_ROLLOUT_IMAGE:-registry.k8s.io/pause:3.10.1}"
TIMEOUT="${DEMO_TIMEOUT:-120}"

manager="$root/bin/manager"
manager_log="$DEMO_DIR/manager.log"
manager_pid="$DEMO_DIR/manager.pid"
manager_kubeconfig="$DEMO_DIR/manager.kubeconfig"
kubeconfig="$DEMO_DIR/kubeconfig"
start=$SECONDS

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
log() { printf '[demo] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$kubeconfig" "$@"; }

# manager_running: the pid file names a live bin/manager (a stale pid may be someone else's process).
manager_running() {
  local pid argv0
  [[ -f "$manager_pid" ]] || return 1
  pid="$(cat "$manager_pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  argv0="$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | head -n1 || true)"
  [[ "$argv0" == "$manager" ]]
}

# stop_manager: SIGTERM (the manager gives up its leader lease on the way out, so the next one takes
# over at once), SIGKILL after 20 s.
stop_manager() {
  if manager_running; then
    local pid i
    pid="$(cat "$manager_pid")"
    log "stopping the controller (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "the controller did not stop within 20s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$manager_pid"
}

# wait_until DESCRIPTION COMMAND...: retry COMMAND every second until it succeeds or TIMEOUT passes.
wait_until() {
  local what="$1"; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${TIMEOUT}s waiting for $what"
    sleep 1
  done
}

# rbac_manifests: the Namespace, ServiceAccount and RBAC objects of config/default (its Deployment,
# Service and PodDisruptionBudget are left out: the controller runs on this machine instead).
rbac_manifests() {
  kubectl kustomize "$root/config/default" | awk '
    /^---$/ { if (keep) printf "---\n%s", doc; doc = ""; keep = 0; next }
    { doc = doc $0 "\n" }
    /^kind: (Namespace|ServiceAccount|Role|RoleBinding|ClusterRole|ClusterRoleBinding)$/ { keep = 1 }
    END { if (keep) printf "---\n%s", doc }'
}

# write_manager_kubeconfig NAMESPACE SA: the cluster's admin kubeconfig, impersonating the ServiceAccount
# (the API server adds the system:serviceaccounts groups to an impersonated ServiceAccount user). No
# token to expire while the demo stays up.
write_manager_kubeconfig() {
  local ns="$1" sa="$2" user
  user="$(kubectl config view -o jsonpath='{.contexts[0].context.user}')"
  [[ -n "$user" ]] || die "no user in $kubeconfig"
  cp "$kubeconfig" "$manager_kubeconfig.tmp"
  "$K8S_BIN/kubectl" --kubeconfig "$manager_kubeconfig.tmp" config set "users.$user.act-as" "system:serviceaccount:$ns:$sa" >/dev/null
  chmod 600 "$manager_kubeconfig.tmp"
  mv "$manager_kubeconfig.tmp" "$manager_kubeconfig"
}

crd_established() {
  [[ "$(kubectl get crd nodeagentsets.apps.nodeagentset.io -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')" == True ]]
}

sets_settled() {
  # Every set has observed its generation and has a Ready pod on each eligible node.
  local gen observed desired current ready
  while IFS='|' read -r _ gen observed desired current ready; do
    [[ -n "$gen" && "$observed" == "$gen" && -n "$desired" && "$current" == "$desired" && "$ready" == "$desired" ]] || return 1
  done < <(kubectl -n "$NAMESPACE" get nas -o jsonpath='{range .items[*]}{.metadata.name}|{.metadata.generation}|{.status.observedGeneration}|{.status.desiredNumberScheduled}|{.status.currentNumberScheduled}|{.status.numberReady}{"\n"}{end}')
  return 0
}

print_sets() {
  kubectl -n "$NAMESPACE" get nas -o wide
}

# print_pods: the namespace's pods grouped by node, the node's arch and gpu label in its header.
print_pods() {
  local nodes
  nodes="$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.labels.kubernetes\.io/arch}{" "}{.metadata.labels.gpu}{" "}{.spec.taints[*].key}{"\n"}{end}')"
  kubectl -n "$NAMESPACE" get pods --sort-by=.spec.nodeName --no-headers -o \
    custom-columns='NODE:.spec.nodeName,POD:.metadata.name,SET:.metadata.ownerReferences[0].name,PHASE:.status.phase,READY:.status.conditions[?(@.type=="Ready")].status,IP:.status.podIP,IMAGE:.spec.containers[*].image' |
    awk -v nodes="$nodes" '
      BEGIN {
        n = split(nodes, lines, "\n")
        for (i = 1; i <= n; i++) {
          split(lines[i], f, " "); info = f[2]
          if (f[3] == "true") info = info ", gpu"
          if (lines[i] ~ /control-plane/) info = info ", control-plane taint"
          desc[f[1]] = info
        }
      }
      {
        if ($1 != node) { node = $1; printf "%s%s (%s)\n", (NR > 1 ? "\n" : ""), node, desc[node] }
        printf "  %-34s %-20s %-8s ready=%-6s %-16s %s\n", $2, $3, $4, $5, $6, $7
      }'
}

# rollout_state SET: one line describing the set's rollout; exit status 0 once it is complete.
rollout_state() {
  local set="$1" gen observed desired updated available rev pods old new
  # Status counters that are 0 are omitted: '|' keeps the empty fields in place.
  IFS='|' read -r gen observed desired updated available rev < <(kubectl -n "$NAMESPACE" get nas "$set" -o \
    jsonpath='{.metadata.generation}|{.status.observedGeneration}|{.status.desiredNumberScheduled}|{.status.updatedNumberScheduled}|{.status.numberAvailable}|{.status.updateRevision}{"\n"}')
  pods="$(kubectl -n "$NAMESPACE" get pods -l "app.kubernetes.io/name=$set" -o \
    jsonpath='{range .items[*]}{.metadata.labels.controller-revision-hash} {.spec.nodeName} {.metadata.deletionTimestamp}{"\n"}{end}')"
  new="$(awk -v r="$rev" '$1 == r && NF == 2' <<<"$pods" | wc -l)"
  old="$(awk -v r="$rev" '$1 != r && NF == 2' <<<"$pods" | wc -l)"
  local doubled
  doubled="$(awk 'NF == 2 { n[$2]++ } END { s = ""; for (k in n) if (n[k] > 1) s = s " " k; print s }' <<<"$pods")"
  printf 'updated %s/%s  available %s/%s  pods: %s old, %s new%s\n' "${updated:-0}" "${desired:-?}" "${available:-0}" \
    "${desired:-?}" "$old" "$new" "${doubled:+  (old and new side by side on:$doubled)}"
  [[ -n "$gen" && "$observed" == "$gen" && "${updated:-0}" == "${desired:-0}" && "${available:-0}" == "${desired:-0}" && "$old" == 0 ]]
}

# watch_rollout SET: print the rollout's progress, a line per change, until it is complete.
watch_rollout() {
  local set="$1" t0=$SECONDS last="" line complete=""
  local deadline=$((SECONDS + TIMEOUT))
  while :; do
    if line="$(rollout_state "$set")"; then complete=1; fi
    [[ "$line" == "$last" ]] || printf '  %3ds  %s\n' "$((SECONDS - t0))" "$line"
    last="$line"
    [[ -z "$complete" ]] || break
    ((SECONDS < deadline)) || die "the rollout of $set did not complete within ${TIMEOUT}s"
    sleep 1
  done
  log "$set: rollout complete in $((SECONDS - t0))s"
}

up() {
  mkdir -p "$DEMO_DIR"
  # A running controller is replaced by a fresh build.
  stop_manager

  say "Building the cluster binaries (cached) and the controller"
  K8S_VERSION="$K8S_VERSION" K8S_BIN_DIR="$K8S_BIN" "$root/hack/k8s-binaries.sh" \
    kube-apiserver etcd kube-scheduler kube-controller-manager kubectl kwok kwokctl
  "$GO" build -o "$manager" ./cmd
  "$GO" build -o "$root/bin/kubectl-nas" ./cmd/kubectl-nas

  say "Starting the local cluster ($WORKERS workers and a control-plane node)"
  "$root/hack/local-cluster.sh" up "$WORKERS" >/dev/null

  say "Installing the CRD and the controller's ServiceAccount and RBAC"
  kubectl apply --server-side --force-conflicts -k "$root/config/crd"
  wait_until "the CRD to be established" crd_established
  local rbac ns sa
  rbac="$(rbac_manifests)"
  kubectl apply --server-side --force-conflicts -f - <<<"$rbac"
  read -r ns sa < <(kubectl create --dry-run=client -f - -o jsonpath='{.kind} {.metadata.namespace} {.metadata.name}{"\n"}' <<<"$rbac" |
    awk '$1 == "ServiceAccount" { print $2, $3 }')
  [[ -n "$ns" && -n "$sa" ]] || die "config/default renders no ServiceAccount"
  write_manager_kubeconfig "$ns" "$sa"

  say "Starting the controller as system:serviceaccount:$ns:$sa (log: ${manager_log#"$root"/})"
  : >"$manager_log"
  # Its own session: it outlives this script and a Ctrl-C in the terminal that started it.
  setsid "$manager" --kubeconfig "$manager_kubeconfig" \
    --leader-elect --leader-election-namespace "$ns" \
    --metrics-bind-address 0 --health-probe-bind-address 127.0.0.1:0 \
    </dev/null >>"$manager_log" 2>&1 &
  echo $! >"$manager_pid"
  local deadline=$((SECONDS + TIMEOUT))
  until grep -q '"Starting workers"' "$manager_log"; do
    manager_running || { tail -n 20 "$manager_log" >&2; die "the controller exited (log: $manager_log)"; }
    ((SECONDS < deadline)) || { tail -n 20 "$manager_log" >&2; die "the controller did not start within ${TIMEOUT}s"; }
    sleep 0.2
  done
  log "controller pid $(cat "$manager_pid"), leader of lease $ns/nodeagentset.apps.nodeagentset.io"

  say "Applying config/samples to namespace $NAMESPACE"
  kubectl -n "$NAMESPACE" apply --server-side --force-conflicts -k "$root/config/samples"
  wait_until "every set to have a Ready pod on each of its nodes" sets_settled

  # Pods that are not available yet are replaced outside the rollout's budget (as upstream does): wait
  # until the set is available everywhere (minReadySeconds), so the rollout shows the budget at work. On
  # a re-run this also waits for the set to roll back to the samples' image.
  say "Waiting for $ROLLOUT_SET to be available on every node"
  watch_rollout "$ROLLOUT_SET"

  say "The sets"
  print_sets
  say "Their pods, by node"
  print_pods

  say "Rolling $ROLLOUT_SET to $ROLLOUT_IMAGE"
  kubectl -n "$NAMESPACE" get nas "$ROLLOUT_SET" -o jsonpath='{.spec.updateStrategy}{"\n"}' | sed 's/^/  updateStrategy: /'
  kubectl -n "$NAMESPACE" patch nas "$ROLLOUT_SET" --type=json \
    -p "[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/image\",\"value\":\"$ROLLOUT_IMAGE\"}]"
  watch_rollout "$ROLLOUT_SET"
  print_sets

  say "Every node and the agent of $NODES_SET on it: kubectl nas nodes $NODES_SET"
  "$root/bin/kubectl-nas" --kubeconfig "$kubeconfig" -n "$NAMESPACE" nodes "$NODES_SET"

  if grep -qi forbidden "$manager_log"; then
    log "warning: the controller's log has 'forbidden' errors (a permission missing from config/rbac):"
    grep -i forbidden "$manager_log" | tail -n 5 >&2
  fi

  say "Done in $((SECONDS - start))s. The cluster and the controller stay up:"
  echo "export KUBECONFIG=$kubeconfig"
  echo "make demo-down to remove it"
  echo "kubectl plugin: bin/kubectl-nas (make install-plugin puts it on PATH as 'kubectl nas')"
}

down() {
  stop_manager
  "$root/hack/local-cluster.sh" down
  rm -f "$manager_kubeconfig"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  stop) stop_manager ;;
  *) echo "usage: $0 up | down | stop" >&2; exit 2 ;;
esac
