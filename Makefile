SHELL := /usr/bin/env bash

INSTALL_TOOLS := scripts/install-tools.sh
BRAIN2 := target/debug/brain2
ENV_FILE := .env.local

.PHONY: tools build fmt lint test bench loadtest serve local-aws clean


# Local emulators (DynamoDB Local, moto_server) into the git-ignored .local/.
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

# Everything CI runs: lints, unit tests and the integration suite on local emulators.
test: tools lint
	cargo test --workspace --all-targets

# p50/p99 and AWS cost per request of every scenario for each profile, on a fresh local
# stack per profile (or against TARGET_URL with TOKEN), plus the Lambda function's cold start
# and zip size; reports in target/loadtest/. Settings as variables, e.g.
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
	cargo clean
	rm -rf .local $(ENV_FILE)
