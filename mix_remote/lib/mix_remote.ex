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
    Process.put(:mix_remote_json, "--json" in flags)
    check_env(command, flags)
    binary = binary(command)
    elsewhere = elsewhere?(flags)
    compiles = not elsewhere and Enum.all?(["--no-compile", "--help", "-h"], &(&1 not in flags))
    if compiles, do: compile(command)
    argv = [command | compile_flags_taken(flags)] ++ rest

    case execute(command, [binary | argv], env(elsewhere, compiles)) do
      0 -> :ok
      code -> exit({:shutdown, code})
    end
  end

  # `--compile` and `--no-compile` are Mix's to follow: the binary gets neither (with `--compile`
  # it would compile what Mix has just compiled), unless both are given, a conflict it reports.
  defp compile_flags_taken(flags) do
    if "--compile" in flags and "--no-compile" in flags,
      do: flags,
      else: Enum.reject(flags, &(&1 in ["--compile", "--no-compile"]))
  end

  # `--project` (or MIX_REMOTE_PROJECT) names another project than this one: Mix does not
  # compile it, the binary does.
  defp elsewhere?(flags) do
    Enum.any?(flags, &(&1 == "--project" or String.starts_with?(&1, "--project="))) or
      System.get_env("MIX_REMOTE_PROJECT", "") != ""
  end

  # The binary's environment: Mix's environment; unless the project is elsewhere, no compile of
  # its own (Mix compiled, or was told not to) and the build where Mix put it; when Mix has just
  # compiled, no check of the build's age either (a file in lib/ that is no source would look
  # newer than the build).
  defp env(elsewhere, compiled) do
    mix_env = String.to_charlist(Atom.to_string(Mix.env()))
    default_build = Path.join([File.cwd!(), "_build", Atom.to_string(Mix.env())])
    build = Mix.Project.build_path()

    [{~c"MIX_ENV", mix_env}, {~c"MIX_REMOTE_ENV", mix_env}] ++
      if elsewhere do
        []
      else
        [{~c"MIX_REMOTE_NO_COMPILE", ~c"true"}] ++
          if(compiled, do: [{~c"MIX_REMOTE_COMPILED_BY_MIX", ~c"true"}], else: []) ++
          if(build != default_build,
            do: [{~c"MIX_BUILD_PATH", String.to_charlist(build)}],
            else: []
          )
      end
  end

  # `--env` (else MIX_REMOTE_ENV, which the binary would read) must name the environment Mix
  # compiles for, or the binary would read another build.
  defp check_env(command, flags) do
    env = Atom.to_string(Mix.env())

    named =
      case {env_flag(flags), System.get_env("MIX_REMOTE_ENV", "")} do
        {nil, ""} -> nil
        {nil, variable} -> {"MIX_REMOTE_ENV=#{variable}", variable}
        {flag, _} -> {"--env #{flag}", flag}
      end

    case named do
      {said, given} when given != env ->
        fail(
          command,
          2,
          "#{said} is not MIX_ENV (#{env}): run `MIX_ENV=#{given} mix remote.#{command}` instead"
        )

      _ ->
        :ok
    end
  end

  defp env_flag(["--env", value | _]), do: value
  defp env_flag(["--env=" <> value | _]), do: value
  defp env_flag([_ | rest]), do: env_flag(rest)
  defp env_flag([]), do: nil

  # As `mix run` compiles, with Mix's messages on stderr: stdout carries what the binary prints.
  defp compile(command) do
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

    with {:error, _} <- result,
         do: fail(command, 2, "the project did not compile (Mix's messages are above)")
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
  defp execute(command, command_line, env) do
    guard =
      case System.find_executable("setpriv") do
        nil -> []
        setpriv -> [setpriv, "--pdeathsig", "TERM", "--"]
      end

    if stdin_untouched?() do
      wait(open(guard ++ command_line, env))
    else
      relayed(command, guard, command_line, env)
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
  defp relayed(command, guard, command_line, env) do
    name = "mix-remote-stdin-#{System.pid()}-#{System.unique_integer([:positive])}"
    dir = Path.join(System.tmp_dir!(), name)
    fifo = Path.join(dir, "stdin")
    File.mkdir_p!(dir)

    try do
      File.chmod!(dir, 0o700)
      {_, 0} = System.cmd("mkfifo", [fifo])
      redirect = ["/bin/sh", "-c", ~S(f=$1; shift; exec "$@" <"$f"), "sh", fifo]
      port = open(guard ++ redirect ++ command_line, env)
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

  defp open([program | args], env) do
    Port.open({:spawn_executable, program}, [:nouse_stdio, :exit_status, args: args, env: env])
  end

  # The binary's exit status. A SIGTERM to this BEAM (a CI job cancelled) goes to the binary,
  # which stops its remote nodes and exits 130, instead of stopping the BEAM with status 0 (OTP's
  # own handler, which does that, is set aside meanwhile).
  # A binary that has ended already (a quick `plan`) has closed its port: its status waits.
  defp wait(port) do
    case Port.info(port, :os_pid) do
      {:os_pid, pid} -> forwarding_sigterm(pid, fn -> exit_status(port) end)
      nil -> exit_status(port)
    end
  end

  defp exit_status(port) do
    receive do
      {^port, {:exit_status, code}} -> code
    end
  end

  defp forwarding_sigterm(pid, work) do
    forward = fn -> System.cmd("kill", ["-TERM", Integer.to_string(pid)]) && :ok end
    {:ok, trap} = System.trap_signal(:sigterm, forward)
    set_aside = :gen_event.delete_handler(:erl_signal_server, :erl_signal_handler, :ok)

    try do
      work.()
    after
      if set_aside == :ok,
        do: :gen_event.add_handler(:erl_signal_server, :erl_signal_handler, [])

      System.untrap_signal(:sigterm, trap)
    end
  end

  defp fail(command, code, message) do
    Mix.shell().error("mix remote.#{command}: error: #{message}")

    # With --json, the events the binary prints for a command that fails before any host.
    if Process.get(:mix_remote_json) do
      IO.puts(~s({"event":"error","host":null,"message":#{json_string(message)}}))
      IO.puts(~s({"event":"summary","hosts":0,"failed":0,"exit_code":#{code}}))
    end

    exit({:shutdown, code})
  end

  defp json_string(text) do
    escaped =
      for <<char::utf8 <- text>>, into: "" do
        case char do
          ?" -> ~S(\")
          ?\\ -> ~S(\\)
          c when c < 0x20 -> "\\u" <> String.pad_leading(Integer.to_string(c, 16), 4, "0")
          c -> <<c::utf8>>
        end
      end

    ~s("#{escaped}")
  end
end
