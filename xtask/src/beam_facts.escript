#!/usr/bin/env escript
%% Writes, next to each .beam named on the command line, a .facts file: what this OTP's own
%% beam_lib says of the file, one fact per line, fields separated by tabs. Run by
%% `cargo xtask beam-vectors` inside the Debian release whose compiler built the file.
-mode(compile).

main(Files) ->
    lists:foreach(fun facts/1, Files).

facts(File) ->
    {ok, Bin} = file:read_file(File),
    {ok, Module, Chunks} = beam_lib:all_chunks(File),
    Wanted = [atoms, exports, imports, attributes, compile_info],
    {ok, {Module, [{atoms, Atoms}, {exports, Exports}, {imports, Imports},
                   {attributes, Attributes}, {compile_info, Info}]}} =
        beam_lib:chunks(File, Wanted, [allow_missing_chunks]),
    {_, AtomTable} = lists:keyfind("AtU8", 1, Chunks),
    Lines =
        [[<<"otp_release">>, erlang:system_info(otp_release)],
         [<<"gzip">>, yes_no(binary:part(Bin, 0, 2) =:= <<31, 139>>)],
         [<<"module">>, Module],
         [<<"atom_layout">>, atom_layout(AtomTable)]]
        ++ [[<<"chunk">>, Id] || {Id, _} <- Chunks]
        ++ [[<<"atom">>, A] || {_, A} <- lists:keysort(1, Atoms)]
        ++ [[<<"export">>, F, integer_to_list(A)] || {F, A} <- Exports]
        ++ [[<<"import">>, M, F, integer_to_list(A)] || {M, F, A} <- imports(Imports)]
        ++ [[<<"behaviour">>, B] || B <- behaviours(Attributes)]
        ++ [[<<"protocol">>, yes_no(is_protocol(Attributes))]]
        ++ [[<<"impl">>, P, T] || {P, T} <- implements(Attributes)]
        ++ [[<<"compiler_version">>, V] || V <- compiler_version(Info)]
        ++ literals(lists:keyfind("LitT", 1, Chunks)),
    Out = filename:rootname(File) ++ ".facts",
    ok = file:write_file(Out, [[join(L), $\n] || L <- Lines]).

yes_no(true) -> <<"yes">>;
yes_no(false) -> <<"no">>.

atom_layout(<<Count:32/signed, _/binary>>) when Count < 0 -> <<"compact">>;
atom_layout(_) -> <<"classic">>.

imports(missing_chunk) -> [];
imports(Imports) -> Imports.

behaviours(missing_chunk) -> [];
behaviours(Attributes) ->
    lists:append([Mods || {Key, Mods} <- Attributes, Key =:= behaviour orelse Key =:= behavior]).

%% Elixir marks a protocol with the attribute __protocol__, and an implementation (defimpl) with
%% __impl__, a keyword list holding the protocol and the type it is for.
is_protocol(missing_chunk) -> false;
is_protocol(Attributes) -> lists:keymember('__protocol__', 1, Attributes).

implements(missing_chunk) -> [];
implements(Attributes) ->
    case lists:keyfind('__impl__', 1, Attributes) of
        {_, Impl} -> [{proplists:get_value(protocol, Impl), proplists:get_value(for, Impl)}];
        false -> []
    end.

compiler_version(missing_chunk) -> [];
compiler_version(Info) ->
    case lists:keyfind(version, 1, Info) of
        {version, V} -> [V];
        false -> []
    end.

%% The literal table: a 32-bit uncompressed size, then the table zlib-compressed; a size of 0
%% means the table follows as is (OTP 28 and later). The table is a count, then each literal as
%% a 32-bit size and an external term.
literals(false) ->
    [[<<"literal_table">>, <<"absent">>]];
literals({_, <<0:32, Table/binary>>}) ->
    literal_lines(<<"plain">>, Table);
literals({_, <<_Size:32, Compressed/binary>>}) ->
    literal_lines(<<"zlib">>, zlib:uncompress(Compressed)).

literal_lines(Kind, <<_Count:32, Terms/binary>>) ->
    Atoms = lists:usort(lists:append([atoms_in(binary_to_term(T)) || <<Size:32, T:Size/binary>> <= Terms])),
    [[<<"literal_table">>, Kind] | [[<<"literal_atom">>, A] || A <- Atoms]].

atoms_in(A) when is_atom(A) -> [A];
atoms_in(L) when is_list(L) -> atoms_in_list(L);
atoms_in(T) when is_tuple(T) -> lists:append([atoms_in(E) || E <- tuple_to_list(T)]);
atoms_in(M) when is_map(M) -> lists:append([atoms_in(K) ++ atoms_in(V) || {K, V} <- maps:to_list(M)]);
atoms_in(_) -> [].

%% Lists may be improper.
atoms_in_list([H | T]) -> atoms_in(H) ++ atoms_in_list(T);
atoms_in_list([]) -> [];
atoms_in_list(Tail) -> atoms_in(Tail).

join(Fields) ->
    lists:join($\t, [field(F) || F <- Fields]).

field(A) when is_atom(A) -> field(atom_to_binary(A, utf8));
field(L) when is_list(L) -> field(unicode:characters_to_binary(L));
field(B) when is_binary(B) ->
    case binary:match(B, [<<"\t">>, <<"\n">>]) of
        nomatch -> B;
        _ -> error({unprintable_field, B})
    end.
