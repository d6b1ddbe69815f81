# mix-remote warm session launcher, run by `sh -c` on the server as the session's SSH master's own
# session (src/remote/agent/server.rs), quoted like templates/boot.sh (same rules: lines joined
# with "; ", never a single quote here).
# It looks for elixir as boot.sh does (`up` reports a missing one), says the session runs, then
# waits for its stdin to close, starting no VM: the spare nodes run in sessions of their own
# through this connection. The agent closes that stdin as the session ends (`down`, the idle
# limit, SIGTERM); an agent killed outright takes its ssh with it, and sshd closes it then.
E=@ELIXIR@
command -v "$E" >/dev/null 2>&1 || { echo "mix-remote:no-elixir $E"; exit 127; }
echo mix-remote:connected
exec cat >/dev/null
