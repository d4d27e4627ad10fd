SHELL := /usr/bin/env bash

INSTALL_TOOLS := scripts/install-tools.sh
BRAIN2 := target/debug/brain2
ENV_FILE := .env.local

.PHONY: tools build fmt lint test test-containers schemathesis openapi bench loadtest serve local-aws clean \
	infra-deps infra-test synth diff deploy destroy lambda-zips cargo-lambda


# Local emulators (DynamoDB Local, moto_server) and redis-server into the git-ignored .local/.
tools:
	@$(INSTALL_TOOLS)

build:
	cargo build --workspace --all-targets

fmt:
	cargo fmt --all

# Formatting, lints, and what the Lambda functions may link, as CI checks them.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	scripts/check-lambda-deps.sh

# Everything CI runs: lints, unit tests, property tests and the integration suite on local
# emulators, the infrastructure's tests, and the API fuzzed against its OpenAPI document.
test: tools lint infra-test
	cargo test --workspace --all-targets
	$(MAKE) --no-print-directory schemathesis

# schemathesis from PyPI into a git-ignored venv, reinstalled when the version changes.
SCHEMATHESIS_VERSION := 4.32.5
SCHEMATHESIS_VENV := .venv-schemathesis
SCHEMATHESIS_STAMP := $(SCHEMATHESIS_VENV)/.installed-$(SCHEMATHESIS_VERSION)

$(SCHEMATHESIS_STAMP):
	rm -rf $(SCHEMATHESIS_VENV)
	python3 -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION)
	touch $@

# `brain2 serve --local-stack` on a free loopback port, fuzzed by schemathesis over every
# operation of docs/openapi.json: no 5xx, no answer the document does not describe
# (scripts/schemathesis.sh; settings such as SCHEMATHESIS_MAX_EXAMPLES there).
schemathesis: tools $(SCHEMATHESIS_STAMP)
	cargo build --bin brain2
	SCHEMATHESIS=$(SCHEMATHESIS_VENV)/bin/schemathesis scripts/schemathesis.sh

# Rewrites docs/openapi.json from the code (a unit test fails while it is stale).
openapi:
	BRAIN2_UPDATE_OPENAPI=1 cargo test -p brain2 --lib http::openapi

# The integration suite again, with DynamoDB Local and LocalStack in containers started by
# testcontainers, then on the stack's data plane deployed to LocalStack (docs/testing.md).
# Installs Debian's Docker engine and builds the images into .local/containers/ when
# missing; stops the engine again if it started it.
test-containers: tools infra-deps
	scripts/test-containers.sh

# p50/p99 and AWS cost per request of every scenario for each profile, on fresh local
# emulators per profile (or against TARGET_URL with TOKEN, CLOUDWATCH=1 for the server side),
# plus the Lambda function's cold and warm figures and sizes; reports in target/loadtest/. Settings as variables, e.g.
# `make loadtest PROFILES=optimized,optimized-no_batch_writes DURATION=20` (docs/performance.md).
loadtest: tools
	cargo build --release -p brain2-cli -p brain2-lambda -p brain2-loadtest
	target/release/brain2-loadtest

# Criterion benchmarks of the service's hot paths without AWS; each run is compared with the last.
bench:
	cargo bench -p brain2

# The API on http://localhost:$${PORT:-3000}/api/v1 against fresh local emulators.
# Ctrl-C stops the server and the emulators it started.
serve: tools
	cargo build --bin brain2
	$(BRAIN2) serve --local-stack --workers

# Only the emulators, provisioned, in the foreground; their endpoints go to $(ENV_FILE).
local-aws: tools
	cargo build --bin brain2
	$(BRAIN2) local-aws --env-file $(ENV_FILE)

clean:
	scripts/containers.sh engine-stop
	cargo clean
	rm -rf .local $(ENV_FILE)

# --- Infrastructure (infra/, CDK v2; docs/deploy.md) ---------------------------------------

INFRA := infra
# The CDK CLI without its notices, telemetry or version check: nothing leaves the machine
# but what a diff or deploy sends to AWS.
CDK := CDK_DISABLE_CLI_TELEMETRY=true CDK_DISABLE_VERSION_CHECK=true node_modules/.bin/cdk
# Synth sees no credentials, so the CLI never asks STS or the instance metadata service
# who is deploying: the template is environment-agnostic and the same on every machine.
NO_AWS_CREDENTIALS := env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
	-u AWS_SESSION_TOKEN -u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
	-u AWS_CONTAINER_CREDENTIALS_FULL_URI -u AWS_WEB_IDENTITY_TOKEN_FILE \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
	AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1
# Extra CDK arguments, e.g. CDK_ARGS="-c authMode=jwt -c alarmEmail=oncall@example.com".
CDK_ARGS ?=
# Function architecture: arm64 (default) or x86_64; the zips are built to match.
ARCH ?= arm64
LAMBDA_ZIPS := target/lambda
LAMBDA_BINS := brain2-lambda brain2-cleanup brain2-similarity brain2-events brain2-realtime-connections brain2-realtime-broadcast
CARGO_LAMBDA_VERSION := 1.9.2
CARGO_LAMBDA_VENV := .venv-cargo-lambda
CARGO_LAMBDA := $(CARGO_LAMBDA_VENV)/bin/cargo-lambda
RUST_LAMBDA_TARGET := $(if $(filter x86_64,$(ARCH)),x86_64-unknown-linux-gnu,aarch64-unknown-linux-gnu)
CARGO_LAMBDA_ARCH := $(if $(filter x86_64,$(ARCH)),--x86-64,--arm64)

# npm ci into infra/node_modules, only when it is missing or older than the lock file.
infra-deps: $(INFRA)/node_modules/.package-lock.json

$(INFRA)/node_modules/.package-lock.json: $(INFRA)/package-lock.json $(INFRA)/package.json
	cd $(INFRA) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Type check, then the template assertions (offline; stub function code in a temp dir).
infra-test: infra-deps
	cd $(INFRA) && node_modules/.bin/tsc --noEmit
	cd $(INFRA) && node_modules/.bin/jest

# The CloudFormation template in infra/cdk.out/, offline. Functions whose zip is not in
# target/lambda get stub code, and such a template is refused by CloudFormation.
synth: infra-deps
	cd $(INFRA) && $(NO_AWS_CREDENTIALS) $(CDK) synth --quiet \
		-c architecture=$(ARCH) -c allowStubAssets=true $(CDK_ARGS)
	@echo "template: $$(ls $(INFRA)/cdk.out/*.template.json)"

# What a deploy would change in the account of the current credentials (zips as built, or stubs).
diff: infra-deps
	cd $(INFRA) && $(CDK) diff -c architecture=$(ARCH) -c allowStubAssets=true $(CDK_ARGS)

# cargo-lambda (with zig, for cross-linking) from PyPI into a git-ignored venv.
cargo-lambda: $(CARGO_LAMBDA)

$(CARGO_LAMBDA):
	python3 -m venv $(CARGO_LAMBDA_VENV)
	$(CARGO_LAMBDA_VENV)/bin/pip install --quiet cargo-lambda==$(CARGO_LAMBDA_VERSION)

# The release zips of the functions, target/lambda/<bin>/bootstrap.zip.
lambda-zips: cargo-lambda
	if command -v rustup >/dev/null; then rustup target add $(RUST_LAMBDA_TARGET); fi
	PATH="$(CURDIR)/$(CARGO_LAMBDA_VENV)/bin:$$PATH" cargo lambda build --release $(CARGO_LAMBDA_ARCH) \
		--output-format zip -p brain2-lambda
	for bin in $(LAMBDA_BINS); do test -s $(LAMBDA_ZIPS)/$$bin/bootstrap.zip; done

# aws: the whole stack. localstack: its data plane alone (table, bus, rules, queues), which
# LocalStack creates without a container engine; no function code, so no zips are built,
# and nothing to approve (docs/testing.md).
DEPLOY_TARGET ?= aws
LOCALSTACK_DEPLOY := $(filter localstack,$(DEPLOY_TARGET))

# Builds the zips and deploys the stack with the current credentials (AWS_ENDPOINT_URL
# points it at an emulator such as LocalStack). Never with stub code: stubs are not allowed
# here. The stack's outputs go to infra/cdk.out/outputs.json.
deploy: infra-deps $(if $(LOCALSTACK_DEPLOY),,lambda-zips)
	cd $(INFRA) && $(CDK) deploy -c architecture=$(ARCH) -c allowStubAssets=false -c target=$(DEPLOY_TARGET) \
		$(if $(LOCALSTACK_DEPLOY),--require-approval never) --outputs-file cdk.out/outputs.json $(CDK_ARGS)

# Deletes the stack. The table and the user pool are retained (deletion protection).
destroy: infra-deps
	cd $(INFRA) && $(CDK) destroy -c architecture=$(ARCH) -c allowStubAssets=true $(CDK_ARGS)
