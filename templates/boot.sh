# mix-remote launcher, run by `sh -c` on the server as the SSH master's session.
# Lines are joined with "; " so any login shell passes them on; never use single quotes here.
# stdin: the EPMD port, then the boot program (one line), then what templates/boot.exs reads.
E=@ELIXIR@
command -v "$E" >/dev/null 2>&1 || { echo "mix-remote:no-elixir $E"; exit 127; }
echo mix-remote:connected
read -r port || exit 0
ERL_EPMD_PORT=$port exec "$E" --erl "-start_epmd false -nocookie -kernel inet_dist_use_interface {127,0,0,1}" -e "Code.eval_string(IO.read(:stdio, :line))"
