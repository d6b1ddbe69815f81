# mix-remote launcher, run by `sh -c` on the server as the SSH master's session.
# Lines are joined with "; " so any login shell passes them on; never use single quotes (nor an
# exclamation mark: csh) here.
# stdin: frames, each its length in four bytes (big-endian) then its bytes: first Erlang
# expressions (templates/boot_start.erl, which loads and runs the compiled boot program), then what
# those read (the server port of the reverse forward to the tool's node among it). The node starts
# at once.
# P: the port of that forward when the tool chose it (a cold run's), else 0 (a port the server
# allocates, which the tool learns only as the session opens: a warm session's spare). With a
# chosen port, the connection back is opened here, before the VM starts, where bash can
# (`/dev/tcp`), and handed to the node as its descriptor 3 (MIX_REMOTE_FD, see
# templates/mix_remote_dist.erl): the forward's channel is then open before the node could ask
# for it (its own start takes some 100 ms), which saves most of a round trip where the
# connection back is the longest path. bash gets `--norc`: started by a session of sshd it reads
# ~/.bashrc even when not interactive; `command exec`, so that a failed connection does not end
# it in POSIX mode (POSIXLY_CORRECT). Without bash (or its `/dev/tcp`), or should the connection
# fail, the node opens it itself as it starts.
# Where bash opened the connection back, it stays the session's process and waits for the VM
# (its stderr then /dev/null: no word of a job's end is printed), holding its own copy of the
# socket: a VM that halts by itself (`System.halt/1`) leaves unread in it what the tool sent last
# (acknowledgements, ticks), and its close would then reset the connection, which drops what the
# node wrote last and sshd had not read yet (whole pieces of output, under load). Once the VM has
# exited, bash writes on the connection the frame that says so (a length of 1, then a zero byte:
# `dist::EXITED` in src/remote/node/dist.rs), after all the node wrote, and reads the connection
# until the tool, having read that frame, closes it: only then does the session end, with the
# VM's status (its signal raised again). The VM made the socket non-blocking (the flag belongs to
# the socket, which bash shares), so `printf` fails while the socket's buffer is full and `cat`
# ends at once when nothing is there to read: each is run again every 10 ms while it fails with
# EAGAIN ("Resource temporarily unavailable"), 2000 times at most in all (a dead link: the tool
# gave up after 20 s of silence), and no longer once it meets any other end (the connection the
# tool has closed). A VM that halted with status 126 did so because the tool is gone (its node,
# stdin or sshd: templates/boot.exs, `tool_gone`): nobody is left to read what it wrote. The node's orphan watch looks one
# level up then (MIX_REMOTE_LAUNCHER, bash's pid: templates/boot.exs, `parent`). With no such
# connection the launcher `exec`s the VM, as a spare's does.
# The node is started by the `elixir` script itself (so it is the erl, code path and environment
# that script would use, through asdf or mise shims and wrappers alike), but with `+iex`, the mode
# the `iex` script uses, which leaves out `-s elixir start_cli`: the elixir command line (Logger
# started, argv parsed, `-e` evaluated) is skipped. `-noinput`: no IO server reads stdin; the
# `-eval` sets stdio to binary and unicode (as the elixir application's start would) for output,
# opens a port on descriptor 0 that reads the frames (`{packet,4}`: 64 KB a read, and raw bytes,
# where OTP 26's stdin reader takes 1024 bytes at a time through the IO server, which read
# 2.8 MB of base64 in 0.35-0.6 s on two cores; the port's owner is the process that runs the boot
# program to its end), then reads the first frame and evaluates it. The script splits `--erl` on
# spaces and expands it unquoted: the expression has no space and no glob character.
# The boot program starts the elixir application later, off the path to the connection back
# (templates/boot.exs, `elixir_started`): started here, beside the rest, it held up the module
# loads of that path for 40-50 ms. Nothing loads crypto: the node's dynamic name spares
# distribution's start the random creation it takes from it (40-70 ms with OpenSSL 3, during
# which no other module loads).
# -dist_listen false: the node opens no port at all; it connects out to the tool instead.
# -epmd_module: the boot program's module tells distribution where the tool's node is (the
# forward's port, once read), without asking any EPMD (templates/boot.exs, the port mapper's section).
# -nocookie: OTP neither reads nor creates ~/.erlang.cookie. ERL_CRASH_DUMP_BYTES=0: no crash
# dump, which would hold the cookie, is ever written.
# -kernel net_setuptime 120: connecting back may take longer than OTP's 7 s on a busy server (the
# tool's --boot-timeout is the limit that counts; 120 s is OTP's largest). Set here, not with
# application:set_env/3 from the connecting process: that call waits at most 5 s for the
# application controller, which 32 nodes booting at once on two cores kept busy for longer.
E=@ELIXIR@
command -v "$E" >/dev/null 2>&1 || { echo "mix-remote:no-elixir $E"; exit 127; }
echo mix-remote:connected
P=@PORT@
A="-noshell -noinput -start_epmd false -dist_listen false -proto_dist mix_remote -nocookie -kernel net_setuptime 120 -epmd_module mix_remote_boot -eval ok=io:setopts(standard_io,[binary,{encoding,unicode}]),P=open_port({fd,0,1},[in,binary,eof,{packet,4}]),put(mix_remote_stdin,P),L=receive{P,{data,D}}->D;{P,eof}->halt(126)end,{ok,T,_}=erl_scan:string(binary_to_list(L)),{ok,X}=erl_parse:parse_exprs(T),erl_eval:exprs(X,erl_eval:new_bindings())"
[ "$P" -gt 0 ] && command -v bash >/dev/null 2>&1 && ERL_CRASH_DUMP_BYTES=0 exec bash --norc -c "{ command exec 3<>/dev/tcp/127.0.0.1/$P; } 2>/dev/null && export MIX_REMOTE_FD=3; export MIX_REMOTE_LAUNCHER=\$\$; \"\$0\" +iex --erl \"\$1\" <&0 & exec 2>/dev/null; wait %1; s=\$?; again() { case \$1 in *unavailable*) [ \$((n += 1)) -lt 2000 ] && sleep 0.01;; *) false;; esac; }; [ \$s -ne 126 ] && [ -n \"\$MIX_REMOTE_FD\" ] && { n=0; while again \"\$(LC_ALL=C printf \"\\000\\000\\000\\001\\000\" 2>&1 >&3)\"; do :; done; while again \"\$(LC_ALL=C cat <&3 2>&1 >/dev/null)\"; do :; done; }; [ \$s -gt 128 ] && kill -\$((s - 128)) \$\$; exit \$s" "$E" "$A"
ERL_CRASH_DUMP_BYTES=0 exec "$E" +iex --erl "$A"
