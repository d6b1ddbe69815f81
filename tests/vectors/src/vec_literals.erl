%% Test vector: the modules vec_handler_json, vec_handler_text, vec_codec_json and vec_codec_text
%% appear only inside literal data (a constant list and a constant map), never in a call, so
%% only the literal table names them. Also a behaviour, found in the attributes.
-module(vec_literals).
-behaviour(gen_server).
-export([start_link/0, handlers/0, codecs/0]).
-export([init/1, handle_call/3, handle_cast/2]).

start_link() ->
    gen_server:start_link(?MODULE, [], []).

handlers() ->
    [vec_handler_json, vec_handler_text].

codecs() ->
    #{json => vec_codec_json, text => {vec_codec_text, [utf8]}}.

init([]) ->
    {ok, handlers()}.

handle_call(_Request, _From, State) ->
    {reply, State, State}.

handle_cast(_Message, State) ->
    {noreply, State}.
