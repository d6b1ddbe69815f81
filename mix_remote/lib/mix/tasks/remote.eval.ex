defmodule Mix.Tasks.Remote.Eval do
  @shortdoc "Evaluates an expression on a server with this project loaded (mix-remote eval)"
  @moduledoc """
  `mix-remote eval` from Mix, after compiling the project for the current `MIX_ENV`
  (`--no-compile` skips it); the other arguments go to the binary (`--help` lists them).

      mix remote.eval 'MyApp.Repo.aggregate(MyApp.User, :count)' --host deploy@db-1
      mix remote.eval 'MyApp.Fix.run(System.argv())' --host deploy@db-1 -- 2024-01 dry-run

  `mix help remote.run` tells how the binary is found and how the environment, stdin and exit
  status are passed.
  """
  use Mix.Task

  @impl Mix.Task
  def run(args), do: MixRemote.run("eval", args)
end
