%% Source of the MD5 test vector md5_vector_erl.beam, compiled with `erlc +compressed`, so the
%% file itself is gzip-compressed as the compiler writes it.
-module(md5_vector_erl).
-export([scale/2, tag/1]).

scale(List, K) -> lists:map(fun(X) -> X * K end, List).

tag(X) -> {tagged, X, <<"literal">>}.
