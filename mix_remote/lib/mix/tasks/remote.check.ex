defmodule Mix.Tasks.Remote.Check do
  @shortdoc "Checks that mix-remote can run on the servers (mix-remote check)"
  @moduledoc """
  `mix-remote check` from Mix, after compiling the project for the current `MIX_ENV`
  (`--no-compile` skips it); the other arguments go to the binary (`--help` lists them).

      mix remote.check --host deploy@db-1

  `mix help remote.run` tells how the binary is found and how the environment, stdin and exit
  status are passed.
  """
  use Mix.Task

  @impl Mix.Task
  def run(args), do: MixRemote.run("check", args)
end
