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
       this, and so does a `--project` naming another project (the binary compiles that one).
       Mix may report compiling this package, or dependencies that changed, on stdout, before
       the task starts (in CI, `mix deps.compile` first keeps stdout the binary's);
    2. runs `mix-remote COMMAND` with the same arguments (less `--no-compile` and `--compile`, which
       are Mix's to follow, unless both are given: the binary says they conflict), with `MIX_ENV`
       and `MIX_REMOTE_ENV` set to Mix's environment (an `--env`, or without one a
       `MIX_REMOTE_ENV`, naming another one is an error: set `MIX_ENV` instead),
       `MIX_REMOTE_NO_COMPILE=true` as Mix has compiled already (and
       `MIX_REMOTE_COMPILED_BY_MIX=true` when it has just done so), and `MIX_BUILD_PATH` when
       `mix.exs` puts the build elsewhere;
    3. exits with the binary's exit status (see `mix-remote run --help`). A SIGTERM to the BEAM
       goes to the binary, which stops its remote nodes and exits 130. With `--json`, a failure
       before the binary runs prints its `error` and `summary` events too.

  The binary is `MIX_REMOTE_BIN` if set, else `mix-remote` on `PATH`, else the release build of
  the mix-remote checkout this package lives in (`target/release/mix-remote`, built with
  `cargo build --release` when missing), else the task stops with one line saying how to install
  it (exit status 3).

  The binary writes to this terminal (or to the pipes mix was given) itself. Its stdin is the
  terminal too on Erlang/OTP 28 and later; on older releases the BEAM running Mix reads stdin
  itself, so the task passes what it reads on to the binary line by line (the BEAM's reading
  turns `\\r\\n` into `\\n`, and reads ahead): input and prompts work, but line editing in the
  binary (`remote.iex`) does not, unless Mix runs with `elixir --erl -noinput -S mix
  remote.iex`; for data on stdin, run `mix-remote` itself. Ctrl-C opens the BEAM's break menu as under
  `mix run`; (a)bort ends Mix and, on Linux, sends the binary SIGTERM, which stops its remote
  nodes.
  """
  use Mix.Task

  @impl Mix.Task
  def run(args), do: MixRemote.run("run", args)
end
