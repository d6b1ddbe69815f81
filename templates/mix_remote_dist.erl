%% mix-remote's distribution carrier on the booted node (`-proto_dist mix_remote`, see
%% templates/boot.sh): OTP's own TCP distribution (`inet_tcp_dist`), but for the one connection
%% the node ever makes, back to the tool's node through the SSH reverse forward, which is opened
%% ahead. Opening it makes sshd ask the tool's ssh for a channel, a round trip the handshake had
%% to wait for; opened before the node starts (by the launcher, templates/boot.sh) or as it
%% starts (`ahead/1`, from templates/boot_start.erl), the channel is there by the time
%% distribution connects, and the handshake's first message goes at once.
%% Like `inet_tcp_dist` with `-dist_listen false`, it listens nowhere.
%%
%% It has no state of its own but the process that holds the socket until distribution takes it
%% (`connect/3`, the `Driver` function `inet_tcp_dist:gen_setup/6` calls); everything else is
%% `inet_tcp_dist`'s and `inet_tcp`'s. Built by `cargo xtask erl-beams` with OTP 25's
%% `erlc +r24 +deterministic` (it loads on OTP 24 to 29), sent on the boot session's stdin.
-module(mix_remote_dist).

-export([ahead/1]).
%% Distribution's callbacks, for a node that listens nowhere.
-export([address/0, select/1, setup/5, close/1, is_node_name/1, setopts/2, getopts/2]).
%% What `inet_tcp_dist:gen_setup/6` asks of its `Driver`.
-export([family/0, parse_address/1, connect/3, send/2, send/3, recv/3]).

%% Opens the connection to 127.0.0.1:`Port` (the forward's port) in a process of its own that
%% holds it for `connect/3`; returns at once. The launcher may have opened it already: then it is
%% the descriptor MIX_REMOTE_FD names, which is taken instead (or, should that fail, a connection
%% opened as above), and the variable is removed, so that nothing the node runs sees it.
ahead(Port) ->
    Options = [{active, false}, {packet, 2}],
    Connect = fun() -> inet_tcp:connect({127, 0, 0, 1}, Port, Options) end,
    Open =
        case os:getenv("MIX_REMOTE_FD") of
            false ->
                Connect;
            Fd ->
                os:unsetenv("MIX_REMOTE_FD"),
                fun() ->
                    case catch inet_tcp:fdopen(list_to_integer(Fd), Options) of
                        {ok, Socket} -> {ok, Socket};
                        _ -> Connect()
                    end
                end
        end,
    Holder = spawn(fun() -> hold(Open()) end),
    persistent_term:put(?MODULE, Holder).

%% Hands the socket opened ahead (or why there is none) to the first process that asks.
hold(Opened) ->
    receive
        {take, From, Ref} ->
            Given =
                case Opened of
                    {ok, Socket} ->
                        case inet_tcp:controlling_process(Socket, From) of
                            ok -> Opened;
                            Error -> Error
                        end;
                    Error ->
                        Error
                end,
            From ! {Ref, Given}
    end.

address() -> inet_tcp_dist:address().
select(Node) -> inet_tcp_dist:select(Node).
setup(Node, Type, MyNode, LongOrShortNames, SetupTime) ->
    inet_tcp_dist:gen_setup(?MODULE, Node, Type, MyNode, LongOrShortNames, SetupTime).
close(Socket) -> inet_tcp_dist:close(Socket).
is_node_name(Node) -> inet_tcp_dist:is_node_name(Node).
setopts(Socket, Options) -> inet_tcp_dist:setopts(Socket, Options).
getopts(Socket, Options) -> inet_tcp_dist:getopts(Socket, Options).

family() -> inet_tcp:family().
parse_address(Host) -> inet_tcp:parse_address(Host).
send(Socket, Data) -> inet_tcp:send(Socket, Data).
send(Socket, Data, Options) -> inet_tcp:send(Socket, Data, Options).
recv(Socket, Length, Timeout) -> inet_tcp:recv(Socket, Length, Timeout).

%% The socket opened ahead, with distribution's options, the first time; then (or if opening it
%% failed) a new connection, as `inet_tcp_dist` makes it.
connect(Ip, Port, Options) ->
    case persistent_term:get(?MODULE, none) of
        Holder when is_pid(Holder) ->
            persistent_term:erase(?MODULE),
            Ref = monitor(process, Holder),
            Holder ! {take, self(), Ref},
            receive
                {Ref, {ok, Socket}} ->
                    demonitor(Ref, [flush]),
                    case inet:setopts(Socket, Options) of
                        ok ->
                            {ok, Socket};
                        _ ->
                            inet_tcp:close(Socket),
                            inet_tcp:connect(Ip, Port, Options)
                    end;
                {Ref, _Failed} ->
                    demonitor(Ref, [flush]),
                    inet_tcp:connect(Ip, Port, Options);
                {'DOWN', Ref, process, _, _} ->
                    inet_tcp:connect(Ip, Port, Options)
            end;
        none ->
            inet_tcp:connect(Ip, Port, Options)
    end.
