% mix-remote boot start: Erlang expressions (not a module), sent as the first frame on the boot
% session's stdin and evaluated by the `-eval` of templates/boot.sh, which opened the port that
% reads the frames (each its length in four bytes, then its bytes). Lines starting with `%` are
% left out and the rest joined with spaces; it must hold no `%` otherwise.
% The boot program's beams and the relay are built for OTP @MIN_OTP@ and newer: an older node says
% so and stops before reading them. Else the node reads the forward's port (kept for the port
% mapper) and the distribution carrier's beam, loads it, and (a cold run's node:
% `@AHEAD@`, which a spare node's line leaves empty) opens the connection back to the tool at
% once, so that the forward's channel is open by the time distribution uses it
% (templates/mix_remote_dist.erl). Then it reads the boot program's two beams (a frame each: for
% OTP 25 and newer, then for OTP 24) and loads the one for its release: that module is also
% distribution's port mapper (templates/boot.exs). Distribution then starts at once,
% in a process of its own (the rest of the boot overlaps it; the program's own start of it then
% waits for this one), with a dynamic name: the tool's node names this one as it connects (see
% src/remote/node/handshake.rs), and OTP loads no crypto to draw a creation. Then the node runs
% the program (`main/1` of templates/boot.exs) with the tick interval of the node's net_ticktime. Should that
% fail, the error is printed as Elixir formats it (as `elixir -e` would) on the node's own
% standard error (not the relay's, which the halt would cut short) and the node halts.
Otp = list_to_integer(erlang:system_info(otp_release)),
if
  Otp < @MIN_OTP@ -> io:format("mix-remote:old-otp ~b~n", [Otp]), halt(1);
  true -> ok
end,
% The next frame of stdin; its end (the tool gone) halts the node.
Stdin = get(mix_remote_stdin),
Frame = fun() -> receive {Stdin, {data, F}} -> F; {Stdin, eof} -> halt(126) end end,
try
  Port = binary_to_integer(Frame()),
  persistent_term:put(mix_remote_port, Port),
  {module, mix_remote_dist} = code:load_binary(mix_remote_dist, "mix_remote_dist", Frame()),
  @AHEAD@
  Current = Frame(),
  Otp24 = Frame(),
  Beam = if Otp < 25 -> Otp24; true -> Current end,
  {module, mix_remote_boot} = code:load_binary(mix_remote_boot, "mix_remote_boot", Beam),
  spawn(fun() -> net_kernel:start([undefined@@HOST@, shortnames, @TICK_MS@]) end),
  mix_remote_boot:main(@TICK_MS@)
catch
  Class:Reason:Stack ->
    io:format(persistent_term:get(mix_remote_stderr, standard_error), "~ts~n", ['Elixir.Exception':format(Class, Reason, Stack)]),
    halt(1)
end.
