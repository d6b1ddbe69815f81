%% The relay: on the remote node, the group leader of every process the tool's requests start
%% (and so of everything they spawn), and through a forwarder registered as standard_error (the
%% node's own is unregistered while the relay lives, and kept in the persistent term
%% mix_remote_stderr) the node's standard error too, and from OTP 28 on of the get_password
%% requests sent to `user`. It registers as mix_remote_io and speaks with the tool:
%%
%%   relay -> tool   {mix_remote_out, Bin}              the next bytes of output, in order
%%   relay -> tool   {mix_remote_err, Bin}              the next bytes of standard error, in
%%                                                      order with the output (one window)
%%   relay -> tool   {mix_remote_read, Prompt, Echo}    show Prompt after all earlier output, read
%%   tool -> relay   {mix_remote_ack, N}                N bytes are on the tool's stdout or stderr
%%   tool -> relay   {mix_remote_line, Bin | eof | interrupted}   the input asked for
%%   tool -> relay   {mix_remote_geometry, Cols, Rows}  the tool's terminal size
%%   tool -> relay   mix_remote_closed                  the tool's stdout has no reader any
%%                                                      more: later output fails (terminated),
%%                                                      as on OTP's own stdout closed
%%   local           {mix_remote_sync, Pid, Ref} -> Pid ! {Ref, synced} once all output before
%%                   it is sent to the tool: a message Pid sends the tool after that arrives
%%                   after it (one connection keeps the order), and the tool writes the output
%%                   it received before acting on that message
%%   local           {mix_remote_halting, Pid, Ref} -> Pid ! {Ref, written} once the tool has
%%                   acknowledged all output before it (or its stdout has no reader): what a
%%                   halt waits for (see `halt/1`)
%%
%% Output requests' text is made the bytes OTP's own `user` writes in the encoding setopts gave
%% the device (unicode, or latin1: IO.binwrite's bytes as they are). It travels in pieces of at
%% most ?CHUNK bytes, at once when nothing is unacknowledged, when the writers' pace leaves room
%% for it (see `at_once`), for standard error always (a last word before a halt), or when ?CHUNK
%% bytes are pending; else held at most ?FLUSH_MS; with at most ?WINDOW bytes unacknowledged: a
%% slow terminal or link slows the writers down, nothing is lost or reordered. A request whose
%% text goes at once is answered once it is in the kernel's socket (see `drained`):
%% the VM halts without running the relay again, so what a writer printed right before
%% `System.halt/1` arrives; held text is answered at once (a writer printing line after line goes
%% on without a round trip), and a halt within ?FLUSH_MS loses it, but for the code's own halts,
%% which wait for the tool to have written it (see `halt/1`). Input requests are served one
%% at a time, in arrival order, from what the tool reads only when asked: a line, or a block of
%% lines once the function reads on (src/remote/stdin.rs).
%%
%% No binary matching syntax (OTP 29 refuses what OTP 25 compiles some of it to): built with
%% OTP 25 `erlc +r24 +deterministic` (`cargo xtask erl-beams`), it loads on OTP 24 to 29.
-module(mix_remote_relay).
-export([start/1, init/1, collect/2]).
-export([halt/0, halt/1, halt/2, system_halt/0, system_halt/1, flushed_apply/3]).
-compile({no_auto_import, [halt/0, halt/1, halt/2]}).

-define(WINDOW, 1048576).
-define(CHUNK, 32768).
-define(FLUSH_MS, 5).
%% Text that could be held goes at once instead ?BURST times in a row, then once every ?EVERY_US
%% microseconds (see `at_once`).
-define(BURST, 100).
-define(EVERY_US, 2000).
%% Yields `drained` takes before it waits a millisecond at a time.
-define(YIELDS, 100).

%% The relay's state, a map (not a record: OTP 25's compiler checks a record with an
%% instruction OTP 24 cannot load, `+r24` or not): the tool's process and its node's connection
%% (see `drained`), the output pending
%% (`buf`, `size` bytes, `due` to go once the window opens), on its way (`inflight`), `sent`
%% so far, the syncs waiting for it, the halts waiting for its acknowledgement (`halts`), the
%% device's options (`binary`, `encoding`), the tool's
%% terminal size, the credit of text going at once (`credit` microseconds at `stamp`, see
%% `at_once`), the input buffered (`input`, `eof`), the reads waiting and whether the tool
%% was asked for input, whether the tool's stdout has no reader any more (`closed`), and whether
%% the node's own standard input would be OTP's `user` (`user`: up to OTP 25; `group` after).
new(Tool) ->
    #{tool => Tool, conn => connection(Tool), buf => queue:new(), size => 0, due => false,
      inflight => 0, sent => 0, credit => ?BURST * ?EVERY_US,
      stamp => erlang:monotonic_time(microsecond), syncs => [], halts => [], binary => true,
      encoding => unicode, geometry => undefined, input => <<>>, eof => false, reads => [], asking => false, closed => false,
      user => list_to_integer(erlang:system_info(otp_release)) < 26}.

%% Starts the relay for the tool's process Tool; returns its pid.
start(Tool) -> spawn(?MODULE, init, [Tool]).

init(Tool) ->
    register(mix_remote_io, self()),
    Relay = self(),
    case whereis(standard_error) of
        undefined -> ok;
        Errors ->
            persistent_term:put(mix_remote_stderr, Errors),
            %% Every request but the relay's own (the text function of an io:format it runs,
            %% which would wait on itself): what is written goes to the tool's stderr.
            stand_in(standard_error, Relay, Errors,
                     fun({io_request, From, _, _}) when From =:= Relay -> own;
                        ({io_request, From, ReplyAs, Request}) ->
                             {mix_remote_err, From, ReplyAs, Request}
                     end)
    end,
    %% OTP 29's io:get_password/0 asks `user` (27's, the group leader; 28 was not observed and
    %% is taken as 29), the node's own standard input (frames, no terminal: `{error, enotsup}`),
    %% where `mix run`'s `user` is the terminal it reads: those requests come here, every other
    %% one goes to the node's own.
    case list_to_integer(erlang:system_info(otp_release)) >= 28 andalso whereis(user) of
        User when is_pid(User) ->
            stand_in(user, Relay, User,
                     fun({io_request, _, _, {get_password, _}} = Request) -> Request;
                        ({io_request, _, _, get_password} = Request) -> Request;
                        (_) -> own
                     end);
        _ -> ok
    end,
    loop(new(Tool)).

%% Registers a process as Name in place of the node's own Own, while the relay lives (Own takes
%% the name back should it end): it hands each IO request to the relay as Route makes it, or to
%% Own where Route says `own`.
stand_in(Name, Relay, Own, Route) ->
    StandIn = spawn(fun() -> forward(Name, Relay, erlang:monitor(process, Relay), Own, Route) end),
    unregister(Name),
    register(Name, StandIn).

forward(Name, Relay, Watch, Own, Route) ->
    receive
        {io_request, _, _, _} = Request ->
            case Route(Request) of
                own -> Own ! Request;
                Message -> Relay ! Message
            end,
            forward(Name, Relay, Watch, Own, Route);
        {'DOWN', Watch, process, _, _} ->
            unregister(Name),
            register(Name, Own);
        _ ->
            forward(Name, Relay, Watch, Own, Route)
    end.

loop(S) ->
    receive
        {io_request, From, ReplyAs, {put_chars, unicode, _}} when map_get(closed, S) ->
            From ! {io_reply, ReplyAs, {error, terminated}},
            loop(S);
        {io_request, From, ReplyAs, {put_chars, unicode, Chars}} ->
            case bytes(Chars, unicode, map_get(encoding, S)) of
                error -> From ! {io_reply, ReplyAs, {error, put_chars}}, loop(S);
                %% Sent (when it goes at once) before the writer hears back: a writer that
                %% halts the node next would otherwise race the relay to it.
                Bin ->
                    S1 = add(S, out, Bin),
                    From ! {io_reply, ReplyAs, ok},
                    loop(S1)
            end;
        {io_request, From, ReplyAs, Request} ->
            loop(request(From, ReplyAs, Request, S));
        {mix_remote_err, From, ReplyAs, Request} ->
            {Reply, S1} = immediate_all(requests(Request), err, ok, S),
            From ! {io_reply, ReplyAs, Reply},
            loop(S1);
        {mix_remote_ack, N} when is_integer(N) ->
            loop(acked(S, N));
        {mix_remote_line, Data} ->
            loop(serve_reads(line_in(S, Data)));
        {mix_remote_geometry, Cols, Rows} ->
            loop(S#{geometry := {Cols, Rows}});
        mix_remote_closed ->
            loop(answer_halts(S#{closed := true}));
        {mix_remote_sync, From, Ref} ->
            #{sent := Sent, size := Size, syncs := Syncs} = S1 = ship(S),
            loop(synced(S1#{syncs := [{Sent + Size, From, Ref} | Syncs]}));
        {mix_remote_halting, From, Ref} ->
            #{sent := Sent, size := Size, halts := Halts} = S1 = ship(S),
            loop(answer_halts(S1#{halts := [{Sent + Size, From, Ref} | Halts]}));
        {timeout, _, mix_remote_flush} ->
            loop(ship(S));
        {'DOWN', MRef, process, _, _} ->
            loop(serve_reads(S#{reads := lists:keydelete(MRef, 6, map_get(reads, S))}));
        _ ->
            loop(S)
    end.

%% Output

%% The bytes written for Chars, text in encoding Enc (that of the request), on a device in
%% encoding Dev (the group leader's as set with setopts: unicode unless latin1), as OTP's own
%% `user` writes them: UTF-8 binaries pass as they are on a unicode device (invalid UTF-8
%% included), other text is converted; latin1 text (IO.binwrite's) is bytes, written as they are
%% on a latin1 device and each as UTF-8 on a unicode one; on a latin1 device a character past 255
%% is written as \x{HEX}. error when Chars is not text in Enc.
bytes(Chars, unicode, unicode) when is_binary(Chars) -> Chars;
bytes(Chars, unicode, latin1) ->
    case converted(Chars, unicode, latin1) of
        error -> escaped(Chars);
        Bin -> Bin
    end;
bytes(Chars, Enc, Dev) -> converted(Chars, Enc, Dev).

converted(Chars, From, To) ->
    try unicode:characters_to_binary(Chars, From, To) of
        Bin when is_binary(Bin) -> Bin;
        _ -> error
    catch _:_ -> error
    end.

escaped(Chars) ->
    try unicode:characters_to_list(Chars, unicode) of
        L when is_list(L) -> list_to_binary([escape(C) || C <- L]);
        _ -> error
    catch _:_ -> error
    end.

escape(C) when C > 255 -> [<<"\\x{">>, integer_to_list(C, 16), $}];
escape(C) -> C.

%% The encoding of Stream's device: the group leader's, or standard_error's, whose options stay
%% those of OTP's (binary, unicode).
device(out, S) -> map_get(encoding, S);
device(err, _) -> unicode.

%% Queues Bin for Stream (out or err): the pending text is a queue of {Stream, IoList}, one entry
%% for each change of stream.
add(S, _Stream, <<>>) -> S;
add(#{size := Size, inflight := In} = S0, Stream, Bin) ->
    New = Size + byte_size(Bin),
    S = S0#{buf := queued(map_get(buf, S0), Stream, Bin), size := New},
    if
        New >= ?CHUNK -> drained(wait_below(ship(S), 0));
        %% Nothing on its way: the text goes at once (a prompt, a line before the node halts).
        %% Standard error goes at once (with what is pending before it): it often says why the
        %% node is about to halt.
        Size =:= 0, In =:= 0 -> drained(ship(S));
        Stream =:= err -> drained(ship(S));
        true -> held(at_once(S), Size)
    end.

%% Text added while earlier text is unacknowledged: it goes at once (with what is pending) if
%% the credit allows, else it gathers for ?FLUSH_MS from the first held byte (Size was pending
%% before it).
held({true, S}, _Size) -> drained(ship(S));
held({false, S}, 0) ->
    erlang:start_timer(?FLUSH_MS, self(), mix_remote_flush),
    S;
held({false, S}, _Size) -> S.

%% Whether text that could be held goes at once, and the state with the credit that leaves.
%% Held text is answered at once and lost should the node halt before it goes, so a few lines
%% printed right before `System.halt/1` go at once, each answered once it is in the socket (some
%% 20 us of the writer's time while the connection keeps up): ?BURST in a row, then one every
%% ?EVERY_US (a line at a time at the pace of progress lines), and only while nothing of the
%% connection's is queued (output faster than the server reads would have the writer wait for
%% all of it); a writer printing faster has the rest gathered.
at_once(#{credit := Credit0, stamp := Then, conn := Conn} = S) ->
    Now = erlang:monotonic_time(microsecond),
    Credit = min(Credit0 + (Now - Then), ?BURST * ?EVERY_US),
    case Credit >= ?EVERY_US andalso not unsent(Conn) of
        true -> {true, S#{credit := Credit - ?EVERY_US, stamp := Now}};
        false -> {false, S#{credit := Credit, stamp := Now}}
    end.

queued(Buf, Stream, Bin) ->
    case queue:peek_r(Buf) of
        {value, {Stream, Data}} -> queue:in({Stream, [Data | Bin]}, queue:drop_r(Buf));
        _ -> queue:in({Stream, Bin}, Buf)
    end.

%% Sends pending text while the window allows, in pieces of at most ?CHUNK bytes, each of one
%% stream.
ship(#{size := 0} = S) -> S;
ship(#{inflight := In} = S) when In >= ?WINDOW -> S#{due := true};
ship(#{tool := Tool, buf := Buf, size := Size, inflight := In, sent := Sent} = S) ->
    {{value, {Stream, Data}}, Later} = queue:out(Buf),
    All = iolist_to_binary(Data),
    N = min(byte_size(All), ?CHUNK),
    {Piece, Rest} = split_binary(All, N),
    Tool ! {tag(Stream), Piece},
    Left = case Rest of
               <<>> -> Later;
               _ -> queue:in_r({Stream, Rest}, Later)
           end,
    ship(S#{buf := Left, size := Size - N, inflight := In + N, sent := Sent + N}).

tag(out) -> mix_remote_out;
tag(err) -> mix_remote_err.

acked(#{inflight := In} = S0, N) ->
    S = S0#{inflight := In - N},
    Waited = map_get(syncs, S) =/= [] orelse map_get(halts, S) =/= [],
    case map_get(size, S) >= ?CHUNK orelse map_get(due, S) orelse Waited of
        true -> answer_halts(synced(ship(S#{due := false})));
        false -> S
    end.

synced(#{syncs := Syncs, sent := Sent} = S) ->
    {Done, Waiting} = lists:partition(fun({Target, _, _}) -> Sent >= Target end, Syncs),
    [From ! {Ref, synced} || {_, From, Ref} <- Done],
    S#{syncs := Waiting}.

%% Answers the halts waiting for the tool to have written what was printed before them: all
%% when the tool's stdout has no reader (nothing more will be written).
answer_halts(#{halts := Halts, sent := Sent, inflight := In, closed := Closed} = S) ->
    {Done, Waiting} = lists:partition(fun({Target, _, _}) -> Closed orelse Sent - In >= Target end,
                                      Halts),
    [From ! {Ref, written} || {_, From, Ref} <- Done],
    S#{halts := Waiting}.

%% Halts

%% In place of erlang:halt/0,1,2 and 'Elixir.System':halt/0,1 in the code a run ships
%% (src/build/beam/halts.rs): the node halts once the tool has written all output printed
%% before, as `mix run`'s halt flushes its stdout. Without it the last text printed right before
%% the halt (held for ?FLUSH_MS, its writers answered at once) would go with the VM.
halt() -> flush_out(), erlang:halt().
halt(Status) -> flush_out(), erlang:halt(Status).
halt(Status, Options) -> flush_out(), erlang:halt(Status, Options).
system_halt() -> flush_out(), 'Elixir.System':halt().
system_halt(Status) -> flush_out(), 'Elixir.System':halt(Status).

%% M:F(Args...) once the output printed before is written: evaluated code's and scripts'
%% `System.halt/0,1` and `:erlang.halt/0,1,2` (templates/boot.exs, `flushing_halts`), whose
%% module is known only once its alias is resolved.
flushed_apply(M, F, Args) -> flush_out(), apply(M, F, Args).

%% Waits until the relay has had all output so far acknowledged; at once where there is no relay
%% (or it is the caller: a text function of an io:format it runs).
flush_out() ->
    case whereis(mix_remote_io) of
        Relay when is_pid(Relay), Relay =/= self() ->
            Ref = erlang:monitor(process, Relay),
            Relay ! {mix_remote_halting, self(), Ref},
            receive
                {Ref, written} -> erlang:demonitor(Ref, [flush]), ok;
                {'DOWN', Ref, process, _, _} -> ok
            end;
        _ -> ok
    end.

%% The connection to the tool's node as `drained` looks at it: its id for erlang:dist_get_stat/1
%% (net_kernel's record of it in sys_dist holds it second, OTP 21 to 29) and the port that
%% controls it (`inet_tcp_dist`'s socket), or none should either not be there.
connection(Tool) ->
    Node = node(Tool),
    case {catch ets:lookup(sys_dist, Node), catch erlang:system_info(dist_ctrl)} of
        {[Conn | _], Ctrls} when tuple_size(Conn) >= 3, is_list(Ctrls) ->
            case {catch erlang:dist_get_stat(element(3, Conn)), lists:keyfind(Node, 1, Ctrls)} of
                {{ok, _, _, _}, {_, Port}} when is_port(Port) -> {element(3, Conn), Port};
                _ -> none
            end;
        _ -> none
    end.

%% Returns S once what was sent to the tool is on the connection's socket, in the kernel: a VM
%% that halts drops what distribution still queues and what the socket's port holds (the
%% socket's buffer is full when the server reads slower than the node writes), and the writer
%% of text that goes at once hears back only after this, a line printed right before
%% `System.halt/1` too. Both are empty again within a yield or two on an idle node; a large
%% write's last window (up to ?WINDOW bytes queued at once) can take longer on a busy one, so
%% after ?YIELDS yields it looks every millisecond, until both are empty or the connection gone.
%% Held text is not waited for.
drained(#{conn := Conn} = S) -> drained(Conn, 0), S.

drained(Conn, Tries) ->
    case unsent(Conn) of
        true -> pause(Tries), drained(Conn, Tries + 1);
        false -> ok
    end.

%% Whether distribution or the socket's port still holds something of the connection's (false
%% once it is gone, or for none).
unsent(none) -> false;
unsent({Id, Port}) ->
    case catch erlang:dist_get_stat(Id) of
        {ok, _, _, Queued} when Queued =/= 0, Queued =/= false -> true;
        {ok, _, _, _} ->
            case erlang:port_info(Port, queue_size) of
                {queue_size, Bytes} -> Bytes > 0;
                undefined -> false
            end;
        _ -> false
    end.

%% A wait of `drained`'s, the Tries-th.
pause(Tries) when Tries < ?YIELDS -> erlang:yield();
pause(_) -> receive after 1 -> ok end.

%% Takes nothing but acknowledgements until at most Limit bytes are pending: the writers wait
%% meanwhile, their requests staying in the mailbox.
wait_below(#{size := Size} = S, Limit) when Size =< Limit -> S;
wait_below(S, Limit) ->
    receive {mix_remote_ack, N} when is_integer(N) -> wait_below(acked(S, N), Limit) end.

%% Requests other than plain output

request(From, ReplyAs, Request, S) ->
    Requests = requests(Request),
    Reads = lists:any(fun is_input/1, Requests) orelse lists:keymember(From, 1, map_get(reads, S)),
    case Reads of
        true ->
            MRef = erlang:monitor(process, From),
            Read = {From, ReplyAs, Requests, ok, false, MRef},
            serve_reads(S#{reads := map_get(reads, S) ++ [Read]});
        false ->
            {Reply, S1} = immediate_all(Requests, out, ok, S),
            From ! {io_reply, ReplyAs, Reply},
            S1
    end.

requests({requests, L}) when is_list(L) -> L;
requests(Request) -> [Request].

%% Answers requests that do not read, for Stream: out (the group leader) or err (standard_error,
%% which cannot read and whose options stay those of OTP's: binary, unicode).
immediate_all([], _Stream, Last, S) -> {Last, S};
immediate_all([R | Rest], Stream, _, S) ->
    case immediate(R, Stream, S) of
        {{error, _} = E, S1} -> {E, S1};
        {Reply, S1} -> immediate_all(Rest, Stream, Reply, S1)
    end.

immediate({put_chars, Enc, Chars}, Stream, S) ->
    put_text(bytes(Chars, Enc, device(Stream, S)), Stream, S);
immediate({put_chars, Chars}, Stream, S) ->
    put_text(bytes(Chars, latin1, device(Stream, S)), Stream, S);
immediate({put_chars, Enc, M, F, A}, Stream, S) ->
    put_applied(applied(M, F, A, Enc, device(Stream, S)), Stream, S);
immediate({put_chars, M, F, A}, Stream, S) ->
    put_applied(applied(M, F, A, latin1, device(Stream, S)), Stream, S);
immediate({setopts, Opts}, out, S) when is_list(Opts) -> setopts(Opts, S);
immediate({setopts, Opts}, err, S) when is_list(Opts) -> {ok, S};
immediate(getopts, out, S) -> {getopts(S), S};
immediate(getopts, err, S) ->
    %% In unicode, as Elixir's start sets it (it may not have before the relay took the name).
    Own = own_opts(persistent_term:get(mix_remote_stderr, undefined)),
    {lists:keystore(encoding, 1, Own, {encoding, unicode}), S};
immediate({get_geometry, columns}, out, #{geometry := {C, _}} = S) -> {C, S};
immediate({get_geometry, rows}, out, #{geometry := {_, R}} = S) -> {R, S};
immediate({get_geometry, _}, _, S) -> {{error, enotsup}, S};
immediate(R, err, S) ->
    case is_input(R) of
        true -> {{error, enotsup}, S};
        false -> {{error, request}, S}
    end;
immediate(_, out, S) -> {{error, request}, S}.

%% The device's options as `mix run`'s standard_io gives them where it is no terminal: since OTP
%% 26, those of the node's own (`user`: expand_fun, echo, log, terminal, stdout, stderr, stdin:
%% false, its stdio being pipes), with the relay's binary and encoding in their places.
getopts(S) ->
    Own = case map_get(user, S) of
              true -> [];
              false -> own_opts(user)
          end,
    Binary = lists:keystore(binary, 1, Own, {binary, map_get(binary, S)}),
    lists:keystore(encoding, 1, Binary, {encoding, map_get(encoding, S)}).

%% The options of the node's own device Dev (standard_error's: its encoding alone up to OTP 25,
%% onlcr and log besides after), or [] should it not answer with a list.
own_opts(undefined) -> [];
own_opts(Dev) ->
    case catch io:getopts(Dev) of
        Opts when is_list(Opts) -> Opts;
        _ -> []
    end.

put_text(error, _Stream, S) -> {{error, put_chars}, S};
put_text(_Bin, out, #{closed := true} = S) -> {{error, terminated}, S};
put_text(Bin, Stream, S) -> {ok, add(S, Stream, Bin)}.

%% (The text function has run by then, as an argument: harmless, its text goes nowhere.)
put_applied(_, out, #{closed := true} = S) -> {{error, terminated}, S};
put_applied({Printed, Text}, Stream, S) -> put_text(Text, Stream, add(S, Stream, Printed)).

%% The bytes of {put_chars, Enc, M, F, A} (what io:format sends) on a device in encoding Dev:
%% {Printed, Text | error}. io_lib's formatting prints nothing itself and runs here; anything else
%% runs with a collector (a device in the same encoding) as group leader, and what it prints
%% (Printed) comes before its text.
applied(io_lib, F, A, Enc, Dev) -> {<<>>, text_of(io_lib, F, A, Enc, Dev)};
applied(M, F, A, Enc, Dev) ->
    Self = self(),
    Leader = group_leader(),
    Collector = spawn(?MODULE, collect, [[], Dev]),
    group_leader(Collector, Self),
    Text = text_of(M, F, A, Enc, Dev),
    group_leader(Leader, Self),
    Ref = erlang:monitor(process, Collector),
    Collector ! {mix_remote_collected, Self, Ref},
    receive
        {Ref, Printed} -> erlang:demonitor(Ref, [flush]), {Printed, Text};
        {'DOWN', Ref, process, _, _} -> {<<>>, Text}
    end.

text_of(M, F, A, Enc, Dev) ->
    try apply(M, F, A) of Chars -> bytes(Chars, Enc, Dev)
    catch _:_ -> error
    end.

%% The group leader of an io:format text function, a device in encoding Dev: answers output
%% requests at once and keeps their bytes until asked for them; it cannot read.
collect(Acc, Dev) ->
    receive
        {io_request, From, ReplyAs, Request} ->
            {Reply, Acc1} = collected(Request, Acc, Dev),
            From ! {io_reply, ReplyAs, Reply},
            collect(Acc1, Dev);
        {mix_remote_collected, Owner, Ref} ->
            Owner ! {Ref, iolist_to_binary(lists:reverse(Acc))}
    end.

collected({requests, [R | Rest]}, Acc, Dev) ->
    case collected(R, Acc, Dev) of
        {{error, _}, _} = Failed -> Failed;
        {_, Acc1} when Rest =:= [] -> {ok, Acc1};
        {_, Acc1} -> collected({requests, Rest}, Acc1, Dev)
    end;
collected({put_chars, Enc, Chars}, Acc, Dev) -> kept(bytes(Chars, Enc, Dev), Acc);
collected({put_chars, Chars}, Acc, Dev) -> kept(bytes(Chars, latin1, Dev), Acc);
collected({put_chars, Enc, M, F, A}, Acc, Dev) ->
    {Printed, Text} = applied(M, F, A, Enc, Dev),
    kept(Text, [Printed | Acc]);
collected({put_chars, M, F, A}, Acc, Dev) ->
    {Printed, Text} = applied(M, F, A, latin1, Dev),
    kept(Text, [Printed | Acc]);
collected(getopts, Acc, Dev) -> {[{binary, true}, {encoding, Dev}], Acc};
collected(_, Acc, _) -> {{error, request}, Acc}.

kept(error, Acc) -> {{error, put_chars}, Acc};
kept(Bin, Acc) -> {ok, [Bin | Acc]}.

setopts([], S) -> {ok, S};
setopts([Opt | Rest], S) ->
    case Opt of
        binary -> setopts(Rest, S#{binary := true});
        list -> setopts(Rest, S#{binary := false});
        {binary, B} when is_boolean(B) -> setopts(Rest, S#{binary := B});
        {encoding, latin1} -> setopts(Rest, S#{encoding := latin1});
        {encoding, E} when E =:= unicode; E =:= utf8 -> setopts(Rest, S#{encoding := unicode});
        {Known, _} when Known =:= expand_fun; Known =:= echo; Known =:= line_history;
                        Known =:= log -> setopts(Rest, S);
        _ -> {{error, enotsup}, S}
    end.

%% Input

is_input(R) -> input(R) =/= none.

input({get_line, Enc, P}) -> {line, Enc, P};
input({get_line, P}) -> {line, latin1, P};
input({get_chars, Enc, P, N}) -> {{chars, N}, Enc, P};
input({get_chars, P, N}) -> {{chars, N}, latin1, P};
input({get_until, Enc, P, M, F, A}) -> {{until, M, F, A, start}, Enc, P};
input({get_until, P, M, F, A}) -> {{until, M, F, A, start}, latin1, P};
input({get_password, Enc}) -> {password, Enc, <<>>};
input(get_password) -> {password, latin1, <<>>};
input(_) -> none.

%% The queue of requests that read, oldest first: {From, ReplyAs, Requests, LastReply, Asked,
%% MonitorRef}. A read the buffer cannot serve asks the tool for a line, after all pending output.
%% A reader that dies leaves the queue; the line asked for it goes to the next one.
serve_reads(#{reads := []} = S) -> S;
serve_reads(#{asking := true} = S) -> S;
serve_reads(#{reads := [{From, ReplyAs, [], Last, _, MRef} | Queue]} = S) ->
    erlang:demonitor(MRef, [flush]),
    From ! {io_reply, ReplyAs, Last},
    serve_reads(S#{reads := Queue});
serve_reads(#{reads := [{From, ReplyAs, [Req | Rest], _, Asked, MRef} | Queue]} = S) ->
    case input(Req) of
        none ->
            case immediate(Req, out, S) of
                {{error, _} = E, S1} ->
                    serve_reads(S1#{reads := [{From, ReplyAs, [], E, false, MRef} | Queue]});
                {Reply, S1} ->
                    serve_reads(S1#{reads := [{From, ReplyAs, Rest, Reply, false, MRef} | Queue]})
            end;
        {Kind, Enc, Prompt} ->
            attempt_or_ask({From, ReplyAs, MRef}, Kind, Enc, Prompt, Rest, Asked, Queue, S)
    end.

attempt_or_ask({From, ReplyAs, MRef}, Kind, Enc, Prompt, Rest, Asked, Queue, S) ->
    case attempt(Kind, Enc, S) of
        {reply, Reply, S1} when not Asked ->
            %% Served without asking the tool (input has ended, or a block of it came with an
            %% earlier read): the prompt is still shown, as OTP's own stdin shows it, and goes at
            %% once with what is pending before it, as it would if the tool were asked: what
            %% the line read does next may halt the node (an IEx session's `System.halt(1)`).
            S2 = case prompt_text(Prompt, map_get(encoding, S1)) of
                     <<>> -> S1;
                     Shown -> ship(add(S1, out, Shown))
                 end,
            serve_reads(S2#{reads := [{From, ReplyAs, Rest, Reply, false, MRef} | Queue]});
        {reply, Reply, S1} ->
            serve_reads(S1#{reads := [{From, ReplyAs, Rest, Reply, false, MRef} | Queue]});
        {more, Kind1, S1} ->
            %% Asked again: for the rest of a line that came in pieces (no prompt: it is the same
            %% line), or for the next line of one request (the continuation prompt).
            Shown = if
                        not Asked -> prompt_text(Prompt, map_get(encoding, S1));
                        map_get(input, S1) =/= <<>> -> <<>>;
                        true -> continued(prompt_text(Prompt, map_get(encoding, S1)))
                    end,
            S2 = wait_below(ship(S1), 0),
            map_get(tool, S2) ! {mix_remote_read, Shown, Kind1 =/= password},
            Pending = {mix_remote_pending, Kind1, Enc, Prompt},
            Asking = {From, ReplyAs, [Pending | Rest], ok, true, MRef},
            S2#{asking := true, reads := [Asking | Queue]}
    end.

line_in(S0, Data) ->
    S = S0#{asking := false},
    case Data of
        eof -> resume(S#{eof := true});
        interrupted when map_get(reads, S) =:= [] -> S#{input := <<>>};
        interrupted ->
            [{From, ReplyAs, _, _, _, MRef} | Queue] = map_get(reads, S),
            erlang:demonitor(MRef, [flush]),
            From ! {io_reply, ReplyAs, {error, interrupted}},
            S#{reads := Queue, input := <<>>};
        Line when is_binary(Line) ->
            resume(S#{input := iolist_to_binary([map_get(input, S), Line])});
        _ -> S0
    end.

resume(#{reads := [{From, ReplyAs, [{mix_remote_pending, Kind, Enc, Prompt} | Rest], _, _, MRef}
                   | Queue]} = S) ->
    attempt_or_ask({From, ReplyAs, MRef}, Kind, Enc, Prompt, Rest, true, Queue, S);
resume(S) -> S.

%% Tries to complete an input request from the buffer: {reply, Term, S} | {more, Kind, S}.
attempt(Kind, Enc, S) when Kind =:= line; Kind =:= password ->
    case take_line(S) of
        {Line, Rest} when Kind =:= password -> {reply, password(Line, S), S#{input := Rest}};
        {Line, Rest} -> {reply, as_read(line_end(Line), Enc, S), S#{input := Rest}};
        none when map_get(eof, S) -> {reply, eof, S};
        none -> {more, Kind, S}
    end;
attempt({chars, N} = Kind, Enc, S) ->
    case take_chars(map_get(input, S), N, map_get(eof, S), map_get(encoding, S)) of
        {Taken, Rest} -> {reply, as_read(Taken, Enc, S), S#{input := Rest}};
        short when map_get(eof, S), map_get(input, S) =/= <<>> ->
            {reply, as_read(map_get(input, S), Enc, S), S#{input := <<>>}};
        short when map_get(eof, S) -> {reply, eof, S};
        short -> {more, Kind, S}
    end;
%% A get_until as OTP's standard input serves it: F applied to the continuation (`start` the
%% first time, given as []) and each line's characters, then to eof once input has ended. Up to
%% OTP 25 (`user`), a request that finds input ended and nothing read yet is eof without F
%% (`:io.scan_erl_exprs/1` gets eof, not F's `{eof, Line}` as from OTP 26's `group` on). On a
%% binary device a list F returns comes as a binary (io_lib:get_until/4's rule). A failing F,
%% or an answer that is none of its two, is `{error, F}`.
attempt({until, _M, _F, _A, start}, _Enc, S)
  when map_get(user, S), map_get(eof, S), map_get(input, S) =:= <<>> ->
    {reply, eof, S};
attempt({until, M, F, A, Cont}, Enc, S) ->
    Data = case take_line(S) of
               {Line, Rest} -> {chars(Line, map_get(encoding, S)), Rest};
               none when map_get(eof, S) -> {eof, <<>>};
               none -> none
           end,
    case Data of
        none -> {more, {until, M, F, A, Cont}, S};
        {Chars, Rest1} ->
            try apply(M, F, [begun(Cont), Chars | A]) of
                {done, Result, Left} ->
                    LeftBin = or_nothing(bytes(Left, unicode, map_get(encoding, S))),
                    {reply, until_result(Result, F, Enc, S), S#{input := iolist_to_binary([LeftBin, Rest1])}};
                {more, _} when Chars =:= eof -> {reply, eof, S#{input := Rest1}};
                %% The next line may be here already (a block of input came): asked only if not.
                {more, Cont1} -> attempt({until, M, F, A, Cont1}, Enc, S#{input := Rest1});
                _ -> {reply, {error, F}, S#{input := Rest1}}
            catch _:_ -> {reply, {error, F}, S#{input := Rest1}}
            end
    end.

%% A line as OTP's io servers give get_line (io_lib:collect_line/4): one that ends with a
%% carriage return and a newline ends with the newline alone.
line_end(Line) ->
    case byte_size(Line) - 2 of
        N when N >= 0, binary_part(Line, N, 2) =:= <<"\r\n">> ->
            iolist_to_binary([binary_part(Line, 0, N), $\n]);
        _ -> Line
    end.

%% A password as OTP's `group` answers get_password, whatever the device's mode: the characters
%% of the line, without its end (a newline, or a carriage return and one), as a list.
password(Line, S) ->
    Chars = chars(Line, map_get(encoding, S)),
    case lists:reverse(Chars) of
        [$\n, $\r | Typed] -> lists:reverse(Typed);
        [$\n | Typed] -> lists:reverse(Typed);
        _ -> Chars
    end.

begun(start) -> [];
begun(Cont) -> Cont.

%% What a get_until in encoding Enc answers for F's Result: a list as a binary on a binary device
%% (UTF-8, or its characters as bytes for latin1: {error, F} past 255, as OTP fails it).
until_result(Result, F, Enc, #{binary := true}) when is_list(Result) ->
    try
        case Enc of
            latin1 -> iolist_to_binary(Result);
            _ -> unicode:characters_to_binary(Result, unicode, unicode)
        end
    of
        Bin when is_binary(Bin) -> Bin;
        _ -> {error, F}
    catch _:_ -> {error, F}
    end;
until_result(Result, _F, _Enc, _S) -> Result.

%% Input, bytes in the device's encoding Dev, as characters: on a latin1 device each byte is one.
chars(Bin, latin1) -> binary_to_list(Bin);
chars(Bin, unicode) -> chars(Bin).

%% Input as characters: UTF-8, where each byte of what is not valid UTF-8 is a character of its
%% own (the byte's latin1 one), the valid UTF-8 after it decoded again.
chars(Bin) ->
    case unicode:characters_to_list(Bin) of
        L when is_list(L) -> L;
        {_, Good, Bad} -> Good ++ [binary:first(Bad) | chars(after_first(Bad))]
    end.

after_first(Bin) -> binary:part(Bin, 1, byte_size(Bin) - 1).

%% Splits Bin, input on a device in encoding Dev, after its first N characters as chars/2 counts
%% them: {Taken, Rest}, both the bytes as they came (a byte that is not valid UTF-8 is read as it
%% is), or short when it holds fewer. A character cut short at the end of Bin counts only once
%% input has ended (its rest may come with the next piece of a long line).
take_chars(Bin, N, _Eof, latin1) when byte_size(Bin) >= N -> split_binary(Bin, N);
take_chars(_Bin, _N, _Eof, latin1) -> short;
%% Fewer bytes than N are fewer characters: nothing to decode yet (a large read of data piped in
%% would otherwise decode all it has each time a block comes).
take_chars(Bin, N, false, unicode) when byte_size(Bin) < N -> short;
take_chars(Bin, N, Eof, unicode) -> take_utf8(Bin, N, Eof, 0).

%% take_chars/4 of UTF-8 from byte At on: decodes no more than N characters can take.
take_utf8(Bin, 0, _Eof, At) -> split_binary(Bin, At);
take_utf8(Bin, N, Eof, At) ->
    Left = byte_size(Bin) - At,
    Window = binary:part(Bin, At, min(4 * N, Left)),
    {Good, Bad} = case unicode:characters_to_list(Window) of
                      L when is_list(L) -> {L, none};
                      {error, L, B} -> {L, B};
                      {incomplete, L, B} when Eof -> {L, B};
                      {incomplete, L, _} -> {L, none}
                  end,
    Count = length(Good),
    if
        Count >= N ->
            Size = byte_size(unicode:characters_to_binary(lists:sublist(Good, N))),
            split_binary(Bin, At + Size);
        Bad =:= none -> short;
        true -> take_utf8(Bin, N - Count - 1, Eof, At + byte_size(Window) - byte_size(Bad) + 1)
    end.

take_line(#{input := In, eof := Eof}) ->
    case binary:split(In, <<"\n">>) of
        [Line, Rest] -> {iolist_to_binary([Line, $\n]), Rest};
        [_] when Eof, In =/= <<>> -> {In, <<>>};
        [_] -> none
    end.

%% What a read in encoding Enc gets for Data, bytes of input in the device's encoding: in binary
%% mode the bytes as they came when Enc is the device's; for latin1 from a unicode device each
%% character as a byte (a byte that is not valid UTF-8 as it came; {error, no_translation} past
%% 255); for unicode from a latin1 device each byte as UTF-8. In list mode their characters.
as_read(Data, Enc, #{encoding := Dev} = S) ->
    Coded = case {Enc, Dev} of
                {latin1, latin1} -> Data;
                {latin1, unicode} -> unicode:characters_to_binary(chars(Data), unicode, latin1);
                {_, unicode} -> Data;
                {_, latin1} -> unicode:characters_to_binary(Data, latin1, unicode)
            end,
    if
        not is_binary(Coded) -> {error, no_translation};
        map_get(binary, S) -> Coded;
        Enc =:= latin1 -> binary_to_list(Coded);
        true -> chars(Coded)
    end.

%% The bytes of a prompt on a device in encoding Dev, as OTP's `user` writes them (it formats the
%% prompt with ~ts, or with ~s on a latin1 device: then a binary's bytes are written as they are).
prompt_text(P, Dev) when is_atom(P) -> prompt_text(atom_to_list(P), Dev);
prompt_text(P, unicode) -> or_nothing(bytes(P, unicode, unicode));
prompt_text(P, latin1) ->
    case bytes(P, latin1, latin1) of
        error -> or_nothing(bytes(P, unicode, latin1));
        B -> B
    end.

or_nothing(error) -> <<>>;
or_nothing(B) -> B.

%% The prompt for the further lines of one request, in IEx's shape: "...(x)1> ".
continued(Prompt) ->
    case binary:split(Prompt, <<"(">>) of
        [_, Rest] -> iolist_to_binary([<<"...(">>, Rest]);
        [_] -> <<>>
    end.
