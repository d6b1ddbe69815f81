# mix-remote boot program, evaluated on the server by the `elixir` that templates/boot.sh starts.
# It reads the node name and the cookie from stdin (so the cookie is never in argv, the
# environment or a file), starts distribution on loopback only (the EPMD it registers with is
# the tool itself, through the SSH tunnel), and halts the node as soon as stdin closes: when the
# tool exits, is killed, or the SSH connection drops.
defmodule MixRemote.Boot do
  @moduledoc false

  # Called by the tool through rex: the result comes back already formatted as `inspect/2`
  # would show it, or the exception formatted as Elixir does.
  def run(module, function, args) do
    {:ok, inspect(apply(module, function, args), limit: :infinity, printable_limit: :infinity)}
  catch
    kind, reason ->
      stack = Enum.reject(__STACKTRACE__, fn {m, _, _, _} -> m in [__MODULE__, :rpc, :erpc] end)
      {:raised, Exception.format(kind, reason, stack)}
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

name = String.to_atom(MixRemote.Boot.read_line())
cookie = String.to_atom(MixRemote.Boot.read_line())
{:ok, _} = :net_kernel.start([name, :shortnames])
:erlang.set_cookie(node(), cookie)
IO.puts("mix-remote:ready")
MixRemote.Boot.halt_on_eof()
