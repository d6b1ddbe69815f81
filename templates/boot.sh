# mix-remote launcher, run by `sh -c` on the server as the SSH master's session.
# Lines are joined with "; " so any login shell passes them on; never use single quotes here.
# stdin: the server port of the reverse forward to the tool's node, then the boot program (one
# line), then what templates/boot.exs reads.
# -dist_listen false: the node opens no port at all; it connects out to the tool instead.
# -erl_epmd_port: the tool's node is reached at that port, without asking any EPMD (OTP 23+).
# -nocookie: OTP neither reads nor creates ~/.erlang.cookie. ERL_CRASH_DUMP_BYTES=0: no crash
# dump, which would hold the cookie, is ever written.
E=@ELIXIR@
command -v "$E" >/dev/null 2>&1 || { echo "mix-remote:no-elixir $E"; exit 127; }
echo mix-remote:connected
read -r port || exit 0
ERL_CRASH_DUMP_BYTES=0 exec "$E" --erl "-start_epmd false -dist_listen false -nocookie -erl_epmd_port $port" -e "Code.eval_string(IO.read(:stdio, :line))"
