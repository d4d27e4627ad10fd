#!/usr/bin/env bash
# Fails when a Lambda function would link development-only crates: the emulator launcher
# (brain2-devstack: process spawning, prctl) or the CLI (brain2-cli: token minting, the
# local server). Only normal dependencies count; tests may use anything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FORBIDDEN=(brain2-devstack brain2-cli)
tree="$(cargo tree --quiet --package brain2-lambda --edges normal --prefix none --format '{p}')"
status=0
for crate in "${FORBIDDEN[@]}"; do
  if grep -q "^${crate} " <<<"$tree"; then
    printf 'lint: the Lambda package brain2-lambda depends on %s, a development-only crate:\n' "$crate" >&2
    cargo tree --quiet --package brain2-lambda --edges normal --invert "$crate" >&2 || true
    status=1
  fi
done
if ((status == 0)); then
  echo "lint: brain2-lambda links none of: ${FORBIDDEN[*]}"
fi
exit "$status"
