# shellcheck shell=bash
# Sourced by the scripts: log lines prefixed with the script's LOG_PREFIX, and steps timed.
log() { printf '[%s] %s\n' "$LOG_PREFIX" "$*"; }
die() { printf '[%s] error: %s\n' "$LOG_PREFIX" "$*" >&2; exit 1; }

# Runs a step (a command and its arguments) and logs how long it took.
step() {
  local name="$1" started=$SECONDS
  shift
  log "$name ..."
  "$@"
  log "$name: done in $((SECONDS - started)) s"
}
