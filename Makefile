SHELL := /usr/bin/env bash

INSTALL_TOOLS := scripts/install-tools.sh

.PHONY: tools

# Local emulators (DynamoDB Local, moto_server) into the git-ignored .local/.
tools:
	@$(INSTALL_TOOLS)
