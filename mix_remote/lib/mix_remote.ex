defmodule MixRemote do
  @moduledoc """
  What the `remote.*` Mix tasks share: compile the project for the current Mix environment, find
  the mix-remote binary, run it with the task's arguments on this terminal and pass its exit
  status through. `mix help remote.run` describes the behaviour.
  """

  # The directory above this package: a checkout of mix-remote when the package is used from one.
  @checkout Path.expand("../..", __DIR__)

  @install "put it on PATH (from a checkout of mix-remote: `cargo install --path .`) " <>
             "or set MIX_REMOTE_BIN to it"

  @doc """
  `mix remote.COMMAND ARGS`: compiles (unless `--no-compile` or `--help` comes before any
  `--`), then runs `mix-remote COMMAND ARGS`; returns `:ok` when that exits with 0, else exits
  with its status.
  """
  @spec run(String.t(), [String.t()]) :: :ok
  def run(command, args) do
    {flags, rest} = Enum.split_while(args, &(&1 != "--"))
    check_env(command, flags)
    binary = binary(command)
    if Enum.all?(["--no-compile", "--help", "-h"], &(&1 not in flags)), do: compile()
    argv = [command | List.delete(flags, "--no-compile")] ++ rest

    case execute(command, [binary | argv]) do
      0 -> :ok
      code -> exit({:shutdown, code})
    end
  end

  # `--env` must name the environment Mix compiles for, or the binary would read another build.
  defp check_env(command, flags) do
    env = Atom.to_string(Mix.env())

    case env_flag(flags) do
      given when given in [nil, env] ->
        :ok

      given ->
        fail(
          command,
          2,
          "--env #{given} is not MIX_ENV (#{env}): " <>
            "run `MIX_ENV=#{given} mix remote.#{command}` instead"
        )
    end
  end

  defp env_flag(["--env", value | _]), do: value
  defp env_flag(["--env=" <> value | _]), do: value
  defp env_flag([_ | rest]), do: env_flag(rest)
  defp env_flag([]), do: nil

  # As `mix run` compiles, with Mix's messages on stderr: stdout carries what the binary prints.
  defp compile do
    {shell, group_leader} = {Mix.shell(), Process.group_leader()}
    Mix.shell(MixRemote.Shell)
    Process.group_leader(self(), Process.whereis(:standard_error))

    result =
      try do
        Mix.Task.run("compile", ["--return-errors"])
      after
        Process.group_leader(self(), group_leader)
        Mix.shell(shell)
      end

    with {:error, _} <- result, do: exit({:shutdown, 2})
  end

  # MIX_REMOTE_BIN, else mix-remote on PATH, else the release build of the checkout around us.
  defp binary(command) do
    case System.get_env("MIX_REMOTE_BIN", "") do
      "" ->
        System.find_executable("mix-remote") || from_checkout(command) ||
          fail(command, 3, "mix-remote not found: " <> @install)

      path ->
        if executable?(path),
          do: Path.expand(path),
          else: fail(command, 3, "MIX_REMOTE_BIN=#{path} is not an executable file")
    end
  end

  defp from_checkout(command) do
    binary = Path.join(@checkout, "target/release/mix-remote")
    cargo = System.find_executable("cargo")

    cond do
      not checkout?() -> nil
      executable?(binary) -> binary
      cargo == nil -> nil
      true -> build(command, cargo, binary)
    end
  end

  defp checkout? do
    case File.read(Path.join(@checkout, "Cargo.toml")) do
      {:ok, manifest} -> manifest =~ ~r/^name = "mix-remote"$/m
      {:error, _} -> false
    end
  end

  defp build(command, cargo, binary) do
    IO.puts(
      :stderr,
      "mix remote.#{command}: building mix-remote in #{@checkout} " <>
        "(cargo build --release)"
    )

    case System.cmd(cargo, ["build", "--release", "--bin", "mix-remote"], cd: @checkout) do
      {_, 0} -> binary
      {_, _} -> fail(command, 3, "`cargo build --release` failed in #{@checkout}")
    end
  end

  defp executable?(path) do
    case File.stat(path) do
      {:ok, %File.Stat{type: :regular, mode: mode}} -> Bitwise.band(mode, 0o111) != 0
      _ -> false
    end
  end

  # The child inherits this BEAM's stdin, stdout and stderr (the terminal, or the pipes of a
  # script) unless this BEAM reads stdin itself (see below). With setpriv (Linux) it gets SIGTERM
  # when the BEAM dies, say after Ctrl-C and (a)bort, and stops its remote nodes as on Ctrl-C.
  defp execute(command, command_line) do
    guard =
      case System.find_executable("setpriv") do
        nil -> []
        setpriv -> [setpriv, "--pdeathsig", "TERM", "--"]
      end

    if stdin_untouched?() do
      wait(open(guard ++ command_line))
    else
      relayed(command, guard, command_line)
    end
  end

  # Erlang/OTP 28 and later read stdin only when asked; earlier releases read it as soon as it has
  # data, racing any child for each keystroke, unless the last of -noshell and -noinput given to
  # erl was -noinput (`elixir --erl -noinput -S mix remote.iex`).
  defp stdin_untouched? do
    last_mode =
      :init.get_arguments()
      |> Enum.filter(&(elem(&1, 0) in [:noshell, :noinput]))
      |> List.last()

    String.to_integer(System.otp_release()) >= 28 or last_mode == {:noinput, []}
  end

  # What this BEAM reads from stdin is relayed, line by line, to a FIFO that is the child's stdin
  # and closed at the end of input: input works, line editing in the child (remote.iex) does not.
  defp relayed(command, guard, command_line) do
    name = "mix-remote-stdin-#{System.pid()}-#{System.unique_integer([:positive])}"
    dir = Path.join(System.tmp_dir!(), name)
    fifo = Path.join(dir, "stdin")
    File.mkdir_p!(dir)

    try do
      File.chmod!(dir, 0o700)
      {_, 0} = System.cmd("mkfifo", [fifo])
      redirect = ["/bin/sh", "-c", ~S(f=$1; shift; exec "$@" <"$f"), "sh", fifo]
      port = open(guard ++ redirect ++ command_line)
      relay = spawn(fn -> relay(fifo, dir) end)

      if command == "iex" do
        IO.puts(
          :stderr,
          "mix remote.iex: no line editing on Erlang/OTP #{System.otp_release()}" <>
            " (use `elixir --erl -noinput -S mix remote.iex`, or `mix-remote iex`)"
        )
      end

      code = wait(port)
      Process.exit(relay, :kill)
      :io.setopts(:standard_io, encoding: :unicode)
      code
    after
      File.rm_rf(dir)
    end
  end

  defp relay(fifo, dir) do
    # Opening blocks until the child has opened its end; then the name is needed no more, and
    # removing it at once leaves nothing behind even when the BEAM is killed.
    {:ok, out} = :file.open(fifo, [:write, :raw, :binary])
    File.rm_rf(dir)
    # Bytes as they come: a latin1 device passes each byte on unchanged.
    :io.setopts(:standard_io, encoding: :latin1)
    copy(out)
  end

  defp copy(out) do
    with data when is_binary(data) or is_list(data) <- IO.binread(:stdio, :line),
         :ok <- :file.write(out, data) do
      copy(out)
    else
      _eof_or_error -> :file.close(out)
    end
  end

  defp open([program | args]) do
    env = String.to_charlist(Atom.to_string(Mix.env()))

    Port.open({:spawn_executable, program}, [
      :nouse_stdio,
      :exit_status,
      args: args,
      # The binary compiles no more: Mix just did (or was told not to, with --no-compile).
      env: [{~c"MIX_ENV", env}, {~c"MIX_REMOTE_ENV", env}, {~c"MIX_REMOTE_NO_COMPILE", ~c"true"}]
    ])
  end

  defp wait(port) do
    receive do
      {^port, {:exit_status, code}} -> code
    end
  end

  defp fail(command, code, message) do
    Mix.shell().error("mix remote.#{command}: error: #{message}")
    exit({:shutdown, code})
  end
end
