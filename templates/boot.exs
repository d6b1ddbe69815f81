# mix-remote boot program, evaluated on the server by the `elixir` that templates/boot.sh starts.
#
# It reads its node name, the cookie and the tool's node name from stdin (so the cookie is never
# in argv, the environment or a file), starts distribution without any listener, sets the cookie,
# and only then connects out to the tool through the SSH tunnel: nobody can connect to this node,
# and it speaks to nobody but the tool. It halts when stdin closes or the tool's node goes down:
# when the tool exits, is killed, or the SSH connection or the link drops.
#
# It defines no module: compiling one would load the Erlang compiler and cost the remote a
# noticeable part of its boot time on every run. The one module it needs, the output relay
# (templates/mix_remote_relay.erl), comes compiled on stdin and is loaded as it is. The tool's
# requests are served by the process registered as `mix_remote`, made with
# `{:"$gen_call", {pid, ref}, {op, args}}` and answered `{ref, reply}` (`{ref, {:badrpc, reason}}`
# if the request crashed), each in a process of its own whose group leader is the relay, so
# everything it (and whatever it starts) prints reaches the tool, and only once the tool has
# written all of that output.

read_line = fn ->
  case IO.read(:stdio, :line) do
    line when is_binary(line) -> String.trim_trailing(line, "\n")
    _eof_or_error -> System.halt(0)
  end
end

# Frames of this program's own evaluation (erl_eval), and of Elixir's evaluation of the code of
# an `eval` request, at the bottom of a stacktrace.
evaluators = [:erl_eval, :elixir, :elixir_eval, Code, Module.ParallelChecker]

user_frames = fn stack ->
  stack |> Enum.reverse() |> Enum.drop_while(&(elem(&1, 0) in evaluators)) |> Enum.reverse()
end

# For an `undef` of a module the node does not have: that module (so the tool can name the flag).
missing_module = fn
  :error, :undef, [{module, _, _, _} | _] -> if :code.is_loaded(module), do: nil, else: module
  _kind, _reason, _stack -> nil
end

load_app_spec = fn text ->
  {:ok, tokens, _} = :erl_scan.string(String.to_charlist(text))
  {:ok, spec} = :erl_parse.parse_term(tokens)

  case :application.load(spec) do
    :ok -> :ok
    {:error, {:already_loaded, _}} -> :ok
    {:error, reason} -> raise "cannot load application spec: #{inspect(reason)}"
  end
end

read_config = fn path, opts ->
  if File.regular?(path), do: Config.Reader.read!(path, opts), else: []
end

# A fresh directory only this user can read, for the config files while they are evaluated;
# `File.mkdir!` fails rather than reuse anything already there.
private_dir = fn ->
  name =
    "mix-remote-config-#{System.unique_integer([:positive])}-#{:rand.uniform(1_000_000_000_000)}"

  dir = Path.join(System.tmp_dir!(), name)
  File.mkdir!(dir)
  File.chmod!(dir, 0o700)
  dir
end

# Applies the project's application environment (`setup`, see src/build/app_config.rs and src/remote/invoke.rs) as `mix run`
# would.
configure = fn %{apps: apps, config: files, env: env} ->
  Enum.each(apps, load_app_spec)

  if files != [] do
    config_env = String.to_atom(env)
    dir = private_dir.()

    try do
      for {path, contents} <- files do
        target = Path.join(dir, path)
        File.mkdir_p!(Path.dirname(target))
        File.write!(target, contents)
      end

      opts = [env: config_env, target: :host]
      config = read_config.(Path.join(dir, "config/config.exs"), opts)
      runtime = read_config.(Path.join(dir, "config/runtime.exs"), opts)
      Application.put_all_env(Config.Reader.merge(config, runtime), persistent: true)
    after
      File.rm_rf(dir)
    end
  end
end

# Runs the entry after applying `setup`; the result already formatted as `inspect/2` shows it, or
# the failure formatted as Elixir formats it, with the missing module of an `undef`.
call = fn module, function, args, setup ->
  try do
    configure.(setup)
    {:ok, inspect(apply(module, function, args), limit: :infinity, printable_limit: :infinity)}
  catch
    kind, reason ->
      stack = user_frames.(__STACKTRACE__)
      {:raised, Exception.format(kind, reason, stack), missing_module.(kind, reason, stack)}
  end
end

load_one_by_one = fn
  [], _ ->
    :ok

  [{module, file, binary} | rest], again ->
    case :code.load_binary(module, file, binary) do
      {:module, ^module} -> again.(rest, again)
      {:error, why} -> {:error, [{module, why}]}
    end
end

# Loads the modules of `batch` (leaves first, as `{module, file, beam}`) whose names are not in
# `on_load` with one code:atomic_load/1, all or nothing; then the `on_load` ones one by one, in
# order, since atomic_load refuses modules with -on_load. A module atomic_load refuses for that
# reason although the tool did not flag it joins them.
load = fn batch, on_load, again ->
  {later, first} = Enum.split_with(batch, &(elem(&1, 0) in on_load))

  case :code.atomic_load(first) do
    :ok ->
      load_one_by_one.(later, load_one_by_one)

    {:error, refused} = error ->
      case for {module, :on_load_not_allowed} <- refused, do: module do
        missed when length(missed) == length(refused) -> again.(batch, on_load ++ missed, again)
        _ -> error
      end
  end
end

# The entry runs in a monitored process of its own, so a linked process that crashes it is
# reported like a raise.
run = fn module, function, args, setup ->
  {_pid, ref} = spawn_monitor(fn -> exit({:mix_remote, call.(module, function, args, setup)}) end)

  receive do
    {:DOWN, ^ref, :process, _, {:mix_remote, result}} -> result
    {:DOWN, ^ref, :process, _, reason} -> {:raised, Exception.format(:exit, reason, []), nil}
  end
end

# Elixir code evaluated as `mix run -e CODE` (file "nofile") or `mix run FILE ARGS` (file the
# script's local path, for `__ENV__.file` and `__DIR__`) would, with `System.argv/0` set: a
# function for `run` to call, so that code runs as an entry does.
evaluation = fn code, file, argv ->
  fn ->
    System.argv(argv)
    {value, _binding} = Code.eval_string(code, [], file: file, line: 1)
    value
  end
end

ops = %{
  # What this node is and has: its versions, and the MD5 of every module it has loaded.
  info: fn ->
    loaded = for {module, _} <- :code.all_loaded(), do: {module, :erlang.get_module_info(module, :md5)}

    {List.to_string(:erlang.system_info(:otp_release)),
     List.to_string(:erlang.system_info(:version)), System.version(), loaded}
  end,
  # `batch` is a compressed term (see src/remote/wire.rs).
  load: fn batch, on_load -> load.(:erlang.binary_to_term(batch), on_load, load) end,
  run: run,
  eval: fn code, file, argv, setup -> run.(:erlang, :apply, [evaluation.(code, file, argv), []], setup) end
}

# Returns once the tool has written every byte the relay has received so far.
output_written = fn relay ->
  ref = make_ref()
  send(relay, {:mix_remote_sync, self(), ref})

  receive do
    {^ref, :synced} -> :ok
  end
end

# The relay starts with the first request, which names the tool's pid.
serve = fn relay, serve ->
  receive do
    {:"$gen_call", {tool_pid, ref}, {op, args}} ->
      relay = relay || :mix_remote_relay.start(tool_pid)

      spawn(fn ->
        Process.group_leader(self(), relay)

        reply =
          try do
            apply(Map.fetch!(ops, op), args)
          catch
            kind, reason -> {:badrpc, {kind, reason}}
          end

        output_written.(relay)
        send(tool_pid, {ref, reply})
      end)

      serve.(relay, serve)
  end
end

halt_on_eof = fn again ->
  read_line.()
  again.(again)
end

# The relay is built for OTP @MIN_OTP@ and newer: an older node says so and stops.
otp = List.to_integer(:erlang.system_info(:otp_release))

if otp < @MIN_OTP@ do
  IO.puts("mix-remote:old-otp #{otp}")
  System.halt(1)
end

relay_beam = Base.decode64!(read_line.())
{:module, _} = :code.load_binary(:mix_remote_relay, ~c"mix_remote_relay", relay_beam)
[name, cookie, tool] = for _ <- 1..3, do: String.to_atom(read_line.())
Process.register(spawn(fn -> serve.(nil, serve) end), :mix_remote)
# A short net_ticktime (the tick interval is a quarter of it): the node halts soon after a dead
# link, when the tool's node stops ticking.
{:ok, _} = :net_kernel.start([name, :shortnames, @TICK_MS@])
:erlang.set_cookie(node(), cookie)
:ok = :net_kernel.monitor_nodes(true, node_type: :all)

unless Node.connect(tool) == true do
  IO.puts(:stderr, "mix-remote: the remote node could not connect back to the tool")
  System.halt(1)
end

spawn(fn -> halt_on_eof.(halt_on_eof) end)

receive do
  {:nodedown, ^tool, _info} -> System.halt(0)
end
