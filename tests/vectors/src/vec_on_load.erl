%% Test vector: a module with -on_load, which the loader must run before anything calls it.
-module(vec_on_load).
-on_load(init/0).
-export([ready/0]).

init() ->
    persistent_term:put(vec_on_load, true),
    ok.

ready() ->
    persistent_term:get(vec_on_load, false).
