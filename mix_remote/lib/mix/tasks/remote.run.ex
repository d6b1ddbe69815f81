defmodule Mix.Tasks.Remote.Run do
  @shortdoc "Runs a function of this project on a server over SSH (mix-remote run)"
  @moduledoc """
  Runs a function of this project on servers reached by SSH: `mix-remote run` from Mix.

      mix remote.run MyApp.Worker.process --host deploy@db-1 -- 42 '"batch-7"'
      MIX_ENV=prod mix remote.run MyApp.Smoke.check --group web --expect ok

  The `remote.*` tasks (`remote.run`, `remote.eval`, `remote.iex`, `remote.plan`,
  `remote.check`) come from the `mix_remote` package of the mix-remote repository, added to
  `deps`:

      {:mix_remote, path: "PATH/TO/mix-remote/mix_remote", only: [:dev, :prod], runtime: false}

  `only:` lists the environments you run in (in the others the tasks do not exist);
  `runtime: false` keeps the package out of the application and its releases. Each task:

    1. compiles the project for the current `MIX_ENV`, as `mix run` does, with Mix's messages on
       stderr; a compile error stops it with exit status 2. `--no-compile` (and `--help`) skips
       this. Only the package's own compilation, the first time, is reported on stdout, by Mix,
       before the task starts;
    2. runs `mix-remote COMMAND` with the same arguments (less `--no-compile`), with `MIX_ENV`
       and `MIX_REMOTE_ENV` set to Mix's environment (an `--env` naming another one is an error:
       set `MIX_ENV` instead) and `MIX_REMOTE_NO_COMPILE=true`, as Mix has compiled already;
    3. exits with the binary's exit status (see `mix-remote run --help`).

  The binary is `MIX_REMOTE_BIN` if set, else `mix-remote` on `PATH`, else the release build of
  the mix-remote checkout this package lives in (`target/release/mix-remote`, built with
  `cargo build --release` when missing), else the task stops with one line saying how to install
  it (exit status 3).

  The binary writes to this terminal (or to the pipes mix was given) itself. Its stdin is the
  terminal too on Erlang/OTP 28 and later; on older releases the BEAM running Mix reads stdin
  itself, so the task passes what it reads on to the binary line by line: input and prompts
  work, but line editing in the binary (`remote.iex`) does not, unless Mix runs with
  `elixir --erl -noinput -S mix remote.iex`. Ctrl-C opens the BEAM's break menu as under
  `mix run`; (a)bort ends Mix and, on Linux, sends the binary SIGTERM, which stops its remote
  nodes.
  """
  use Mix.Task

  @impl Mix.Task
  def run(args), do: MixRemote.run("run", args)
end
