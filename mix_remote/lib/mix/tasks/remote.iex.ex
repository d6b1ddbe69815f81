defmodule Mix.Tasks.Remote.Iex do
  @shortdoc "Opens IEx on a server with this project loaded (mix-remote iex)"
  @moduledoc """
  `mix-remote iex` from Mix, after compiling the project for the current `MIX_ENV`
  (`--no-compile` skips it); the other arguments go to the binary (`--help` lists them).

      mix remote.iex --host deploy@db-1

  `mix help remote.run` tells how the binary is found and how the environment, stdin and exit
  status are passed.
  """
  use Mix.Task

  @impl Mix.Task
  def run(args), do: MixRemote.run("iex", args)
end
