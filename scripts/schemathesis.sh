#!/usr/bin/env bash
# `make schemathesis`: the API fuzzed against its own OpenAPI document (docs/testing.md).
#
#   1. `brain2 serve --local-stack` on a free loopback port, with fresh emulators and a JWT
#      secret of this run's own;
#   2. a token for a fresh user (`brain2 token`);
#   3. schemathesis over every operation of docs/openapi.json, in every phase, with the
#      checks that no answer is a 5xx and that every answer conforms to the document
#      (status code documented, content type, headers, body schema).
# The server (and the emulators it started) is stopped whatever happens. The run's figures
# and reports go to target/schemathesis/.
#
# Settings (environment): SCHEMATHESIS (the executable), BRAIN2 (the binary),
# SCHEMATHESIS_MAX_EXAMPLES (cases per operation and phase, 100), SCHEMATHESIS_SEED (random),
# SCHEMATHESIS_SERVE_ARGS (more `brain2 serve` options).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOG_PREFIX=schemathesis
# shellcheck source=scripts/log.sh
source "$ROOT/scripts/log.sh"

SCHEMATHESIS="${SCHEMATHESIS:-.venv-schemathesis/bin/schemathesis}"
BRAIN2="${BRAIN2:-target/debug/brain2}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
SEED="${SCHEMATHESIS_SEED:-$RANDOM}"
REPORTS=target/schemathesis
DOCUMENT=docs/openapi.json
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance

[[ -x $SCHEMATHESIS ]] || die "$SCHEMATHESIS is missing: run it through \`make schemathesis\`"
[[ -x $BRAIN2 ]] || die "$BRAIN2 is missing: cargo build --bin brain2"
mkdir -p "$REPORTS"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
base="http://127.0.0.1:$port"
secret="schemathesis-$(python3 -c 'import secrets; print(secrets.token_hex(24))')"

server_pid=""
stop_server() {
  local status=$?
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    log "stopping the server (pid $server_pid)"
    kill -TERM "$server_pid" 2>/dev/null || true
    # A graceful stop flushes events and stops the emulators; past 30 s it is killed.
    for _ in $(seq 60); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  exit "$status"
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_server() {
  # shellcheck disable=SC2086 # SCHEMATHESIS_SERVE_ARGS is a list of options
  BRAIN2_JWT_SECRET="$secret" RUST_LOG="${RUST_LOG:-warn}" \
    "$BRAIN2" serve --local-stack --bind 127.0.0.1 --port "$port" ${SCHEMATHESIS_SERVE_ARGS:-} \
    >"$REPORTS/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 240); do
    if curl --silent --fail --max-time 2 "$base/api/v1/health" >/dev/null; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || { tail -n 30 "$REPORTS/serve.log" >&2; die "the server exited"; }
    sleep 0.5
  done
  tail -n 30 "$REPORTS/serve.log" >&2
  die "the server did not answer at $base within 120 s"
}
step "brain2 serve --local-stack on $base" start_server

token="$(BRAIN2_JWT_SECRET="$secret" "$BRAIN2" token --user "schemathesis-$(date +%s)-$$" --ttl-seconds 3600)"

# The served document is the checked-in one (a unit test holds the code to the file).
curl --silent --fail "$base/api/v1/openapi.json" | cmp --silent - "$DOCUMENT" ||
  die "the served document differs from $DOCUMENT: regenerate it with \`make openapi\`"

fuzz() {
  "$SCHEMATHESIS" --no-color run "$DOCUMENT" \
    --url "$base" \
    --header "Authorization: Bearer $token" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 2 \
    --request-timeout 30 \
    --continue-on-failure \
    --report junit,ndjson --report-dir "$REPORTS" \
    --generation-database none \
    --warnings off
}
log "seed $SEED, at most $MAX_EXAMPLES cases per operation and phase, checks $CHECKS"
step "schemathesis run" fuzz
