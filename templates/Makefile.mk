# >>> mix-remote (written by `mix-remote init`; `mix-remote init --makefile --force` rewrites it)
# Pre-deploy smoke test: compiles for SMOKE_ENV, calls the `entry` of mix-remote.yaml on every
# host of its `servers` group and fails unless it returns :ok on each of them.
MIX_REMOTE ?= mix-remote
SMOKE_ENV ?= prod
.PHONY: smoke
smoke:
	$(MIX_REMOTE) run --group servers --env $(SMOKE_ENV) --expect ok
# <<< mix-remote
