# mix-remote boot program, evaluated on the server by the `elixir` that templates/boot.sh starts.
#
# It reads its node name, the cookie and the tool's node name from stdin (so the cookie is never
# in argv, the environment or a file), starts distribution without any listener, sets the cookie,
# and only then connects out to the tool through the SSH tunnel: nobody can connect to this node,
# and it speaks to nobody but the tool. It halts when stdin closes or the tool's node goes down:
# when the tool exits, is killed, or the SSH connection or the link drops.
defmodule MixRemote.Boot do
  @moduledoc false

  # Called by the tool through rex. The entry runs in a monitored process of its own, so a
  # linked process that crashes it is reported like a raise. Its group leader is a relay that
  # flattens output (see relay/1). Before the call, that process applies the project's
  # application environment (`setup`, see src/app_config.rs) as `mix run` would. The result comes
  # back already formatted as `inspect/2` shows it, or the failure formatted as Elixir formats it,
  # with the module whose absence caused an `undef` (so the tool can name the flag).
  def run(module, function, args, setup) do
    relay = spawn(__MODULE__, :relay, [Process.group_leader()])

    {_pid, ref} =
      spawn_monitor(fn ->
        Process.group_leader(self(), relay)
        exit({__MODULE__, call(module, function, args, setup)})
      end)

    receive do
      {:DOWN, ^ref, :process, _, {__MODULE__, result}} -> result
      {:DOWN, ^ref, :process, _, reason} -> {:raised, Exception.format(:exit, reason, []), nil}
    end
  end

  defp call(module, function, args, setup) do
    configure(setup)
    {:ok, inspect(apply(module, function, args), limit: :infinity, printable_limit: :infinity)}
  catch
    kind, reason ->
      stack = Enum.reject(__STACKTRACE__, fn {m, _, _, _} -> m == __MODULE__ end)
      {:raised, Exception.format(kind, reason, stack), missing_module(kind, reason, stack)}
  end

  defp missing_module(:error, :undef, [{module, _, _, _} | _]) do
    if :code.is_loaded(module), do: nil, else: module
  end

  defp missing_module(_kind, _reason, _stack), do: nil

  defp configure(%{apps: apps, config: files, env: env}) do
    Enum.each(apps, &load_app_spec/1)

    if files != [] do
      config_env = String.to_atom(env)
      dir = private_dir()

      try do
        for {path, contents} <- files do
          target = Path.join(dir, path)
          File.mkdir_p!(Path.dirname(target))
          File.write!(target, contents)
        end

        opts = [env: config_env, target: :host]
        config = read_config(Path.join(dir, "config/config.exs"), opts)
        runtime = read_config(Path.join(dir, "config/runtime.exs"), opts)
        Application.put_all_env(Config.Reader.merge(config, runtime), persistent: true)
      after
        File.rm_rf(dir)
      end
    end
  end

  defp load_app_spec(text) do
    {:ok, tokens, _} = :erl_scan.string(String.to_charlist(text))
    {:ok, spec} = :erl_parse.parse_term(tokens)

    case :application.load(spec) do
      :ok -> :ok
      {:error, {:already_loaded, _}} -> :ok
      {:error, reason} -> raise "cannot load application spec: #{inspect(reason)}"
    end
  end

  defp read_config(path, opts) do
    if File.regular?(path), do: Config.Reader.read!(path, opts), else: []
  end

  # A fresh directory only this user can read, for the config files while they are evaluated;
  # `File.mkdir!` fails rather than reuse anything already there.
  defp private_dir do
    name = "mix-remote-config-#{System.unique_integer([:positive])}-#{:rand.uniform(1_000_000_000_000)}"
    dir = Path.join(System.tmp_dir!(), name)
    File.mkdir!(dir)
    File.chmod!(dir, 0o700)
    dir
  end

  # The entry's group leader: passes IO requests on to the tool's own group leader with their
  # text as one binary. An iolist may nest as deep as the program built it, and the tool decodes
  # only terms of bounded depth; replies go from the tool straight to the requesting process.
  def relay(tool) do
    receive do
      {:io_request, from, reply_as, request} ->
        send(tool, {:io_request, from, reply_as, flat(request)})

      _other ->
        :ok
    end

    relay(tool)
  end

  defp flat({:put_chars, enc, chars}), do: {:put_chars, enc, text(enc, chars)}
  defp flat({:put_chars, chars}), do: {:put_chars, :latin1, text(:latin1, chars)}
  defp flat({:put_chars, enc, m, f, a} = req), do: computed(req, enc, m, f, a)
  defp flat({:put_chars, m, f, a} = req), do: computed(req, :latin1, m, f, a)
  defp flat({:requests, requests}), do: {:requests, Enum.map(requests, &flat/1)}
  defp flat(other), do: other

  # Text that is not chardata travels as it is, for the tool to refuse.
  defp text(enc, chars) do
    case :unicode.characters_to_binary(chars, enc, enc) do
      binary when is_binary(binary) -> binary
      _error -> chars
    end
  end

  # What io:format sends: the text is computed here; if that fails, the tool is asked to, and
  # the caller gets the error as it would from any group leader.
  defp computed(request, enc, m, f, a) do
    {:put_chars, enc, text(enc, apply(m, f, a))}
  catch
    _kind, _reason -> request
  end

  def read_line do
    case IO.read(:stdio, :line) do
      line when is_binary(line) -> String.trim_trailing(line, "\n")
      _eof_or_error -> System.halt(0)
    end
  end

  def halt_on_eof do
    case IO.read(:stdio, :line) do
      line when is_binary(line) -> halt_on_eof()
      _eof_or_error -> System.halt(0)
    end
  end
end

[name, cookie, tool] = for _ <- 1..3, do: String.to_atom(MixRemote.Boot.read_line())
# A short net_ticktime (the tick interval is a quarter of it): the node halts soon after a dead
# link, when the tool's node stops ticking.
{:ok, _} = :net_kernel.start([name, :shortnames, @TICK_MS@])
:erlang.set_cookie(node(), cookie)
:ok = :net_kernel.monitor_nodes(true, node_type: :all)

unless Node.connect(tool) == true do
  IO.puts(:stderr, "mix-remote: the remote node could not connect back to the tool")
  System.halt(1)
end

spawn(&MixRemote.Boot.halt_on_eof/0)

receive do
  {:nodedown, ^tool, _info} -> System.halt(0)
end
