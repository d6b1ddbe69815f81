# mix-remote check launcher, run by `sh -c` on the server as the SSH master's session, like
# templates/boot.sh (same rules: lines joined with "; ", never a single quote here).
# It reports the connection at once, then waits on stdin while the tool asks the server for the
# run's reverse forward, then looks for elixir and starts it with the flags boot.sh uses, to
# evaluate the one-line program that follows on stdin (it prints the versions).
E=@ELIXIR@
echo mix-remote:connected
read -r go || exit 0
command -v "$E" >/dev/null 2>&1 || { echo "mix-remote:no-elixir $E"; exit 127; }
ERL_CRASH_DUMP_BYTES=0 exec "$E" --erl "-start_epmd false -dist_listen false -nocookie" -e "Code.eval_string(IO.read(:stdio, :line))"
