defmodule Mix.Tasks.Remote.Plan do
  @shortdoc "Shows what mix-remote run would push for a function (mix-remote plan)"
  @moduledoc """
  `mix-remote plan` from Mix, after compiling the project for the current `MIX_ENV`
  (`--no-compile` skips it); the other arguments go to the binary (`--help` lists them).

      mix remote.plan MyApp.Worker.process

  `mix help remote.run` tells how the binary is found and how the environment, stdin and exit
  status are passed.
  """
  use Mix.Task

  @impl Mix.Task
  def run(args), do: MixRemote.run("plan", args)
end
