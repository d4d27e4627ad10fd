SHELL := /usr/bin/env bash

INSTALL_TOOLS := scripts/install-tools.sh
BRAIN2 := target/debug/brain2
ENV_FILE := .env.local

.PHONY: tools build fmt lint test serve local-aws clean

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
