#!/usr/bin/env bash
# A local simulated Kubernetes cluster for demos and end-to-end tests, without Docker: kwokctl's "binary"
# runtime runs a real etcd, kube-apiserver, kube-scheduler and kube-controller-manager (built from Go
# modules by hack/k8s-binaries.sh) plus kwok-controller, which plays the kubelet of fake Nodes (it marks
# them Ready, keeps their leases, and moves the Pods bound to them to Running/Ready). No container runs.
# Everything listens on 127.0.0.1 and lives under .demo/ (git-ignored).
#
#   hack/local-cluster.sh up [WORKERS]   create the cluster, or reuse it when it is already up (fast);
#                                        WORKERS worker nodes (default 4) plus one control-plane node.
#                                        Prints `export KUBECONFIG=...` on stdout (the rest goes to stderr),
#                                        so a script can: eval "$(hack/local-cluster.sh up)"
#   hack/local-cluster.sh create         delete the cluster if there is one, create it afresh and wait for its
#                                        API server: no nodes, no other wait (the benchmark's start)
#   hack/local-cluster.sh down           delete the cluster (no error when there is none)
#   hack/local-cluster.sh kubeconfig     print the path of the cluster's kubeconfig
#   hack/local-cluster.sh status         print the components' state and the nodes
#
# Environment: CLUSTER_NAME (nodeagentset), K8S_VERSION (1.37.1), K8S_BIN (bin/k8s/$K8S_VERSION),
# DEMO_DIR (.demo), KWOK_WORKDIR ($DEMO_DIR/kwok), LOCAL_CLUSTER_TIMEOUT (seconds, 180),
# LOCAL_CLUSTER_APISERVER_PORT (random free port when unset), KWOKCTL_CONFIG (the kwokctl configuration,
# hack/kwok/kwokctl.yaml), LOCAL_CLUSTER_DISABLE (components kwokctl must not run, comma-separated: the
# benchmark runs kube-controller-manager itself).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S_VERSION="${K8S_VERSION:-1.37.1}"
K8S_BIN="${K8S_BIN:-$root/bin/k8s/$K8S_VERSION}"
CLUSTER_NAME="${CLUSTER_NAME:-nodeagentset}"
DEMO_DIR="${DEMO_DIR:-$root/.demo}"
TIMEOUT="${LOCAL_CLUSTER_TIMEOUT:-180}"
KWOKCTL_CONFIG="${KWOKCTL_CONFIG:-$root/hack/kwok/kwokctl.yaml}"
# kwokctl keeps its clusters (pki, etcd data, logs, pids) and download cache under $KWOK_WORKDIR.
export KWOK_WORKDIR="${KWOK_WORKDIR:-$DEMO_DIR/kwok}"
# kwokctl runs `kubectl` from PATH first and only then its configured kubectl: ours goes first, the
# system's (too old for a 1.37 server) never runs.
export PATH="$K8S_BIN:$PATH"
export KWOK_KUBECTL_BINARY="$K8S_BIN/kubectl"
export KWOK_KUBE_VERSION="v$K8S_VERSION"
kubeconfig="$DEMO_DIR/kubeconfig"
cluster_dir="$KWOK_WORKDIR/clusters/$CLUSTER_NAME"

log() { printf '[local-cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$kubeconfig" "$@"; }
# fd 9 is up's lock: the components kwokctl starts must not inherit it (they would hold it forever).
kwokctl() { "$K8S_BIN/kwokctl" --name "$CLUSTER_NAME" "$@" 9>&-; }
# kwokctl logs JSON when stderr is not a terminal: keep the level and the message, to stderr.
kwokctl_logged() {
  kwokctl "$@" 2>&1 | sed -E 's/^\{.*"level":"([A-Z]+)".*"msg":"([^"]*)".*"cluster":"[^"]*"(.*"human":"([^"]*)")?.*$/[kwokctl] \1 \2 \4/' >&2
}

ensure_binaries() {
  # Cached: a no-op (a version check per binary) once they are built.
  K8S_VERSION="$K8S_VERSION" K8S_BIN_DIR="$K8S_BIN" "$root/hack/k8s-binaries.sh" \
    kube-apiserver etcd kube-scheduler kube-controller-manager kubectl kwok kwokctl
}

cluster_exists() { [[ -f "$cluster_dir/kwok.yaml" ]]; }

# kwokctl tracks each component by a pid file alone and SIGKILLs that pid on stop/delete: after a reboot
# the pid may belong to an unrelated process. Drop every pid file whose process is not the component's
# own binary (kwokctl then sees the component as stopped).
sanitize_pid_files() {
  local f name pid argv0
  for f in "$cluster_dir"/pids/*.pid; do
    [[ -f "$f" ]] || continue
    name="$(basename "$f" .pid)"
    pid="$(cat "$f" 2>/dev/null || true)"
    argv0=""
    [[ "$pid" =~ ^[0-9]+$ ]] && argv0="$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | head -n1 || true)"
    if [[ "$argv0" != "$cluster_dir/bin/$name" ]]; then
      rm -f "$f"
    fi
  done
}

# kill_strays: SIGKILL any process still running one of this cluster's component binaries (one that
# lost its pid file), each by its pid.
kill_strays() {
  local d pid argv0
  for d in /proc/[0-9]*; do
    pid="${d#/proc/}"
    argv0="$(tr '\0' '\n' 2>/dev/null <"$d/cmdline" | head -n1 || true)"
    if [[ "$argv0" == "$cluster_dir/bin/"* ]]; then
      log "killing stray ${argv0##*/} (pid $pid)"
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}

api_ready() { kubectl get --raw /readyz >/dev/null 2>&1; }

# wait_for DESCRIPTION COMMAND...: retries COMMAND every second until it succeeds or TIMEOUT passes.
wait_for() {
  local what="$1"; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${TIMEOUT}s waiting for $what"
      status >&2 || true
      return 1
    fi
    sleep 1
  done
}

create_cluster() {
  mkdir -p "$DEMO_DIR"
  local args=(
    --runtime binary
    --kube-apiserver-binary "$K8S_BIN/kube-apiserver"
    --etcd-binary "$K8S_BIN/etcd"
    --kube-scheduler-binary "$K8S_BIN/kube-scheduler"
    --kube-controller-manager-binary "$K8S_BIN/kube-controller-manager"
    --kwok-controller-binary "$K8S_BIN/kwok"
    --kubeconfig "$kubeconfig"
    --wait "${TIMEOUT}s"
    --timeout "${TIMEOUT}s"
  )
  [[ -n "${LOCAL_CLUSTER_APISERVER_PORT:-}" ]] && args+=(--kube-apiserver-port "$LOCAL_CLUSTER_APISERVER_PORT")
  local component disabled
  disabled="${LOCAL_CLUSTER_DISABLE:-}"
  for component in ${disabled//,/ }; do args+=(--disable "$component"); done
  log "creating cluster $CLUSTER_NAME (kwokctl binary runtime, Kubernetes v$K8S_VERSION, workdir $KWOK_WORKDIR)"
  kwokctl_logged --config "$KWOKCTL_CONFIG" create cluster "${args[@]}"
}

# node_manifest NAME INDEX ROLE ARCH GPU ZONE: a Node as a kubelet would register it (not-ready taint
# included: kube-controller-manager's node lifecycle controller lifts it once kwok reports Ready).
node_manifest() {
  local name="$1" index="$2" role="$3" arch="$4" gpu="$5" zone="$6"
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: $arch
    beta.kubernetes.io/os: linux
    beta.kubernetes.io/arch: $arch
    topology.kubernetes.io/region: local
    topology.kubernetes.io/zone: $zone
    node.kubernetes.io/instance-type: $([[ "$gpu" == true ]] && echo gpu.xlarge || echo standard.large)
    type: kwok
    nodeagentset.io/local-cluster: "$CLUSTER_NAME"
EOF
  if [[ "$role" == control-plane ]]; then
    cat <<EOF
    node-role.kubernetes.io/control-plane: ""
    node.kubernetes.io/exclude-from-external-load-balancers: ""
EOF
  fi
  [[ "$gpu" == true ]] && echo '    gpu: "true"'
  cat <<EOF
spec:
  podCIDR: 10.244.$index.0/24
  podCIDRs:
  - 10.244.$index.0/24
  taints:
  - key: node.kubernetes.io/not-ready
    effect: NoSchedule
EOF
  if [[ "$role" == control-plane ]]; then
    cat <<EOF
  - key: node-role.kubernetes.io/control-plane
    effect: NoSchedule
EOF
  fi
  cat <<EOF
status:
  # Loopback: the API server reaches a "kubelet" (kwok-controller, on 127.0.0.1) for logs/exec at the
  # node's InternalIP, and nothing may leave this machine.
  addresses:
  - type: InternalIP
    address: 127.0.0.1
  - type: Hostname
    address: $name
  capacity: &resources
    cpu: "16"
    memory: 64Gi
    pods: "110"
    ephemeral-storage: 200Gi
EOF
  [[ "$gpu" == true ]] && echo '    nvidia.com/gpu: "4"'
  cat <<EOF
  allocatable: *resources
  nodeInfo:
    architecture: $arch
    operatingSystem: linux
    osImage: kwok (simulated)
    kernelVersion: 6.12.0-kwok
    containerRuntimeVersion: kwok://v0.8.0
    kubeletVersion: v$K8S_VERSION
    kubeProxyVersion: v$K8S_VERSION
EOF
}

# ensure_nodes WORKERS: one control-plane node and workers worker-1..WORKERS; workers beyond that (from
# an earlier `up` with more) are deleted. Workers 1 and 2 carry gpu=true, even-numbered workers are arm64,
# zones rotate over a, b, c.
ensure_nodes() {
  local workers="$1" manifest="" i arch gpu
  local zones=(local-a local-b local-c)
  manifest+="$(node_manifest control-plane-1 0 control-plane amd64 false local-a)"$'\n'
  for ((i = 1; i <= workers; i++)); do
    arch=amd64; ((i % 2 == 0)) && arch=arm64
    gpu=false; ((i <= 2)) && gpu=true
    manifest+="$(node_manifest "worker-$i" "$i" worker "$arch" "$gpu" "${zones[$(((i - 1) % 3))]}")"$'\n'
  done
  # Create the missing nodes only: a Node's spec is the node lifecycle controller's (taints) once it runs.
  local existing
  existing=" $(kubectl get nodes -l "nodeagentset.io/local-cluster=$CLUSTER_NAME" -o jsonpath='{.items[*].metadata.name}') "
  local wanted=" control-plane-1 " missing=()
  for ((i = 1; i <= workers; i++)); do wanted+="worker-$i "; done
  for n in $wanted; do [[ "$existing" == *" $n "* ]] || missing+=("$n"); done
  if ((${#missing[@]} > 0)); then
    log "creating nodes: ${missing[*]}"
    # kubectl create fails on the existing ones (AlreadyExists), which it reports and we ignore.
    printf '%s' "$manifest" | kubectl create -f - 2>&1 | grep -v AlreadyExists >&2 || true
  fi
  for n in $existing; do
    if [[ "$wanted" != *" $n "* ]]; then
      log "deleting node $n"
      kubectl delete node "$n" --wait=false >&2
    fi
  done
}

no_unready_taints() {
  local taints
  taints="$(kubectl get nodes -o jsonpath='{range .items[*]}{.spec.taints[*].key}{"\n"}{end}')" || return 1
  [[ "$taints" != *node.kubernetes.io/not-ready* && "$taints" != *node.kubernetes.io/unreachable* ]]
}

wait_ready() {
  local workers="$1"
  wait_for "the API server" api_ready
  wait_for "$((workers + 1)) Ready nodes" kubectl wait --for=condition=Ready nodes --all --timeout=5s
  wait_for "the node lifecycle controller to lift the not-ready/unreachable taints" no_unready_taints
  wait_for "the default ServiceAccount (kube-controller-manager's serviceaccount controller)" \
    kubectl -n default get serviceaccount default
}

up() {
  local workers="${1:-4}"
  [[ "$workers" =~ ^[0-9]+$ ]] || die "WORKERS must be a number, got '$workers'"
  local start=$SECONDS
  ensure_binaries
  mkdir -p "$DEMO_DIR"
  # One `up` at a time (a demo script and a developer may race).
  exec 9>"$DEMO_DIR/.local-cluster.lock"
  flock -w "$TIMEOUT" 9 || die "another '$0 up' holds $DEMO_DIR/.local-cluster.lock"
  if cluster_exists; then
    if ! api_ready; then
      # The processes are gone (a reboot, a crash) but the state is there: stop what is left of them (a
      # component may hang), then start every component again on the same etcd data.
      log "cluster $CLUSTER_NAME exists but does not answer: restarting it"
      sanitize_pid_files
      kwokctl_logged stop cluster || true
      kill_strays
      kwokctl_logged start cluster || true
      if ! TIMEOUT=60 wait_for "the API server" api_ready; then
        log "cluster $CLUSTER_NAME does not come back: recreating it"
        sanitize_pid_files
        kwokctl_logged delete cluster --kubeconfig "$kubeconfig" || true
        kill_strays
        create_cluster
      fi
    else
      log "cluster $CLUSTER_NAME is already up"
    fi
  else
    [[ -d "$cluster_dir" ]] && { log "removing a half-created cluster"; sanitize_pid_files; kwokctl_logged delete cluster --kubeconfig "$kubeconfig" || rm -rf "$cluster_dir"; kill_strays; }
    create_cluster
  fi
  wait_for "the API server" api_ready
  ensure_nodes "$workers"
  wait_ready "$workers"
  log "cluster $CLUSTER_NAME is up with $((workers + 1)) nodes in $((SECONDS - start))s"
  kubectl get nodes -L kubernetes.io/arch,gpu,topology.kubernetes.io/zone >&2
  echo "export KUBECONFIG=$kubeconfig"
}

# create: a fresh cluster, whatever was there, and nothing else (the caller creates the nodes).
create() {
  mkdir -p "$DEMO_DIR"
  exec 9>"$DEMO_DIR/.local-cluster.lock"
  flock -w "$TIMEOUT" 9 || die "another '$0' holds $DEMO_DIR/.local-cluster.lock"
  delete_cluster || true
  create_cluster
  wait_for "the API server" api_ready
  log "cluster $CLUSTER_NAME is created; kubeconfig $kubeconfig"
}

delete_cluster() {
  if cluster_exists || [[ -d "$cluster_dir" ]]; then
    log "deleting cluster $CLUSTER_NAME"
    sanitize_pid_files
    kwokctl_logged delete cluster --kubeconfig "$kubeconfig"
    kill_strays
  else
    log "no cluster $CLUSTER_NAME"
  fi
  rm -f "$kubeconfig"
}

down() { delete_cluster; }

print_kubeconfig() {
  cluster_exists || die "no cluster $CLUSTER_NAME: run '$0 up' first"
  if [[ ! -s "$kubeconfig" ]]; then
    mkdir -p "$DEMO_DIR"
    kwokctl get kubeconfig >"$kubeconfig"
  fi
  echo "$kubeconfig"
}

status() {
  cluster_exists || { log "no cluster $CLUSTER_NAME"; return 1; }
  kwokctl get components >&2 || true
  kubectl get nodes -o wide -L gpu
}

case "${1:-}" in
  up) shift; up "$@" ;;
  create) create ;;
  down) down ;;
  kubeconfig) print_kubeconfig ;;
  status) status ;;
  *) echo "usage: $0 up [WORKERS] | create | down | kubeconfig | status" >&2; exit 2 ;;
esac
