#!/usr/bin/env bash
# `make test-containers`: the integration suite against emulators in containers, then
# against the stack's data plane deployed to LocalStack (docs/testing.md).
#
#   1. the Docker engine and the images (scripts/containers.sh), when missing;
#   2. the integration suite and the Lambda runtime tests, their DynamoDB Local and
#      LocalStack containers started by testcontainers (BRAIN2_TEST_STACK=containers),
#      and the container tests of brain2-devstack;
#   3. a LocalStack container serving CloudFormation, DynamoDB, EventBridge and SQS,
#      `make deploy DEPLOY_TARGET=localstack` on it, and the integration suite on the
#      table and bus that deploy created (BRAIN2_TEST_STACK=environment).
# Whatever happens, every container the run started is removed, and the engine is stopped
# when this run started it.
set -euo pipefail

# The race suite has run its full rounds in `make test`; here it checks the emulators with
# fewer (an explicit setting wins).
export BRAIN2_TEST_RACE_ROUNDS="${BRAIN2_TEST_RACE_ROUNDS:-2}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONTAINERS=scripts/containers.sh
OUTPUTS=infra/cdk.out/outputs.json

LOG_PREFIX=test-containers
# shellcheck source=scripts/log.sh
source "$ROOT/scripts/log.sh"

# The engine and the image names the suite and the deploy use.
eval "export $($CONTAINERS env)"
engine_was_running=false
if docker version >/dev/null 2>&1; then engine_was_running=true; fi

finish() {
  local status=$?
  $CONTAINERS sweep || status=1
  if [[ $engine_was_running == false ]]; then $CONTAINERS engine-stop || status=1; fi
  exit "$status"
}
trap finish EXIT

run_started=$SECONDS
step "container engine" $CONTAINERS engine-start
step "images" $CONTAINERS images

# The same tests `make test` runs on plain processes. `--workspace` resolves features as
# `make test` does, so nothing is compiled again.
suite_in_containers() {
  BRAIN2_TEST_STACK=containers cargo test --workspace --test integration
  BRAIN2_TEST_STACK=containers cargo test --workspace --test runtime_emulator
  cargo test --workspace --test containers -- --ignored
}
step "integration suite on DynamoDB Local and LocalStack containers (testcontainers)" suite_in_containers

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# LocalStack with its own DynamoDB for the deploy: the v2 providers serve DynamoDB and its
# streams from the packaged DynamoDB Local, without the Kinesis emulator the default
# provider would download.
start_deploy_localstack() {
  local port="$1"
  docker run --detach --rm --network host --label brain2.suite=deploy \
    --env "GATEWAY_LISTEN=127.0.0.1:$port" --env "LOCALSTACK_HOST=127.0.0.1:$port" \
    --env SERVICES=cloudformation,dynamodb,dynamodbstreams,events,sqs,sts \
    --env PROVIDER_OVERRIDE_DYNAMODB=v2 --env PROVIDER_OVERRIDE_DYNAMODBSTREAMS=v2 \
    --env SQS_ENDPOINT_STRATEGY=path --env EAGER_SERVICE_LOADING=1 \
    "$BRAIN2_LOCALSTACK_IMAGE" >/dev/null
  local deadline=$((SECONDS + 120))
  until curl -fsS "http://127.0.0.1:$port/_localstack/health" >/dev/null 2>&1; do
    ((SECONDS <= deadline)) || die "LocalStack did not answer on 127.0.0.1:$port within 120 s"
    sleep 0.5
  done
}

output() { node -p "require('./$OUTPUTS').Brain2.$1"; }

port="$(free_port)"
endpoint="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
step "LocalStack for the deploy on $endpoint" start_deploy_localstack "$port"
rm -f "$OUTPUTS"
step "make deploy DEPLOY_TARGET=localstack" env AWS_ENDPOINT_URL="$endpoint" make --no-print-directory deploy DEPLOY_TARGET=localstack

suite_on_deployed_stack() {
  local table bus
  table="$(output TableName)"
  bus="$(output EventBusName)"
  log "deployed table $table, bus $bus"
  # LocalStack's own DynamoDB is far slower than DynamoDB Local: requests get a deadline
  # that fits it, and the race suite (run in full on processes and in the containers above)
  # is left out here, where it checks nothing the deployed table adds and loads one
  # container past what its transactions answer without conflicts.
  BRAIN2_TEST_STACK=environment BRAIN2_TEST_TABLE="$table" BRAIN2_TEST_EVENT_BUS="$bus" \
    AWS_ENDPOINT_URL_DYNAMODB="$endpoint" AWS_ENDPOINT_URL_DYNAMODB_STREAMS="$endpoint" \
    AWS_ENDPOINT_URL_EVENTBRIDGE="$endpoint" AWS_ENDPOINT_URL_SQS="$endpoint" \
    BRAIN2_REQUEST_DEADLINE_MS=60000 \
    cargo test --workspace --test integration -- --skip races::
}
step "integration suite on the stack deployed to LocalStack" suite_on_deployed_stack
log "all passed in $((SECONDS - run_started)) s"
