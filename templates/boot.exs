# mix-remote boot program: the module `:mix_remote_boot`, compiled ahead into
# templates/mix_remote_boot*.beam by `cargo xtask boot-beam` (which puts templates/run_dirs.exs in
# place of its placeholder line, and compiles the module for OTP 25 and newer and, with `:r24`,
# for OTP 24). The node templates/boot.sh starts loads the beam for its release from stdin and
# calls `main/1` (templates/boot_start.erl), with the tick interval `:net_kernel.start/1` takes (a
# quarter of the net_ticktime). Change this file, then run `cargo xtask boot-beam`. Nothing is
# evaluated: no Elixir parser or compiler runs on the server for a boot.
#
# It reads the forward's port, the cookie and the tool's node name from stdin (as frames, see
# `read_frame`; so the cookie is never in argv, the environment or a file), starts distribution
# without any listener and with a dynamic name (the tool's node names it as it connects), sets
# the cookie for the tool's node, and only then connects out to the tool through the SSH tunnel:
# nobody can connect to this node, and it speaks to nobody but the tool. It halts when stdin
# closes or the tool's node goes down: when the tool exits, is killed, or the SSH connection or
# the link drops.
#
# The one other module it needs, the output relay (templates/mix_remote_relay.erl), comes compiled
# on stdin and is loaded as it is. The tool's requests are served by the process registered as
# `mix_remote`, made with
# `{:"$gen_call", {pid, ref}, {op, args}}` and answered `{ref, reply}` (`{ref, {:badrpc, reason}}`
# if the request crashed), each in a process of its own whose group leader is the relay, so
# everything it (and whatever it starts) prints reaches the tool, and after all of that output.
#
# The run's files on the server live in one private directory (see `run_dir`), which every way
# this program halts removes first (`halt`).
#
# The sections below follow a run: stdin's frames; how the node halts and what it removes first;
# the run's directory and files; Elixir's start and the modules loaded ahead; failures worded as
# Elixir's command line words them; the config files; the applications' start; loading the batch;
# calling the code; serving the tool's requests; distribution's port mapper; and last `main/1`,
# the boot's own sequence, and the rest of stdin. Functions are private but those called from
# outside by name: `main/1` and the port mapper's. What the program's processes share at run time
# is passed as arguments, or kept where it is looked up: the stdin port in the main process's
# dictionary (`:mix_remote_stdin`, put there by the start line), the run's directory and shipped
# applications as persistent terms (`:mix_remote_dir`, `:mix_remote_apps`), the processes `halt`
# and `stop_code` stop in ETS tables (`mix_remote_writers`, `mix_remote_calls`), and the
# long-lived processes under registered names (`mix_remote`, `mix_remote_sweeper`,
# `mix_remote_config`, `mix_remote_iex`, `mix_remote_going`).
defmodule :mix_remote_boot do
  # The relay comes compiled on stdin. `cargo xtask boot-beam` adds `@compile :r24` to the line
  # above for the OTP 24 beam.
  @compile {:no_warn_undefined, :mix_remote_relay}

  # ---- Stdin frames ------------------------------------------------------------------------------
  # The tool writes everything a boot needs on the node's stdin, as frames (see `read_frame`):
  # the forward's port, the distribution carrier and this program's beams (read by the start line,
  # templates/boot_start.erl), then the relay's beam, the cookie and the tool's node name, then a
  # cold run's batch (see `read_stdin`).

  # The next frame of stdin: what the tool wrote as one, its length before it in four bytes, read by
  # the port on descriptor 0 the launcher's `-eval` opened (templates/boot.sh, which starts the node
  # with `-noinput`: no IO server reads stdin, whose reader since OTP 26 takes 1024 bytes at a time,
  # 2.8 MB in 0.35-0.6 s on two cores, where the port takes 64 KB and frames need no decoding).
  # Erlang's own functions: the frames read before the connection back load no Elixir module (every
  # load waits for the one code server, busy with distribution's start then). The port is the main
  # process's, where the start line keeps it (`:mix_remote_stdin`): only that process reads frames.
  defp read_frame do
    stdin = :erlang.get(:mix_remote_stdin)

    receive do
      {^stdin, {:data, frame}} -> frame
      {^stdin, :eof} -> tool_gone()
    end
  end

  # How long a node waiting for its run (see `read_after_preloads`) may hear nothing at all on stdin
  # before it takes the tool for gone: a warm session's agent writes an empty frame to its waiting
  # spare every 5 s (src/remote/agent/keeper.rs, KEEPALIVE), a cold run's tool its cookie at once.
  @quiet_limit_ms 45_000

  # The next frame of stdin but empty ones (the agent's keepalives), as `read_frame`; or, once not one
  # byte has come for `@quiet_limit_ms` (counted by the port, so a large frame coming slowly is no
  # silence), the tool is gone (see `tool_gone`): the node's session may be lost without its stdin
  # ending (see `orphaned`), and where the node cannot see its sshd go (off Linux; a multiplexed
  # session's channel closed while sshd lives on) a spare would otherwise wait for ever.
  defp awaited_frame(came) do
    stdin = :erlang.get(:mix_remote_stdin)

    receive do
      {^stdin, {:data, ""}} -> awaited_frame(:erlang.port_info(stdin, :input))
      {^stdin, {:data, frame}} -> frame
      {^stdin, :eof} -> tool_gone()
    after
      @quiet_limit_ms ->
        case :erlang.port_info(stdin, :input) do
          ^came -> tool_gone()
          more -> awaited_frame(more)
        end
    end
  end

  # ---- Halting and teardown: the sweeper ---------------------------------------------------------
  # How the node halts (`halt`; `tool_gone` once the tool is gone) and what it removes first: the
  # run's directory, through the shell of `sweeper`. What writes there runs in processes `writing`
  # starts, which a halt stops first.

  # Removes the directory `dir` and everything in it. `rm` does it in a fraction of the time
  # `File.rm_rf/1` takes through the node's file server (a 2000-module batch's files: 40 ms against
  # 140-250 on an idle machine; minutes for 32 nodes ending at once on two busy cores), which stays
  # as the fallback.
  defp remove_tree(dir) do
    with rm when is_list(rm) <- :os.find_executable(~c"rm"),
         {_, 0} <- System.cmd(List.to_string(rm), ["-rf", "--", dir], stderr_to_stdout: true) do
      :ok
    else
      _ -> File.rm_rf(dir)
    end
  end

  # Removes the directories `paths` through the shell the node starts as it makes its run's
  # directory (see `sweeper`, registered as `mix_remote_sweeper`), once it runs and its `rm` is done;
  # without it (no `sh`, or it is gone), with `remove_tree`. A path with a newline (a TMPDIR that
  # holds one), which that shell reads as two lines, is removed with `remove_tree` too.
  defp removed(paths) do
    {lines, others} = :lists.partition(&(:binary.match(&1, "\n") == :nomatch), paths)

    through =
      case :erlang.whereis(:mix_remote_sweeper) do
        :undefined ->
          false

        sweeper ->
          ref = :erlang.monitor(:process, sweeper)
          send(sweeper, {:mix_remote_remove, self(), ref, lines})

          receive do
            {^ref, :removed} ->
              :erlang.demonitor(ref, [:flush])
              true

            {:DOWN, ^ref, :process, _, _} ->
              false
          end
      end

    :lists.foreach(&remove_tree/1, if(through, do: others, else: paths))
  end

  # Returns once the shell of `sweeper` runs (at once where there is none): `call` and
  # `evaluate_ahead` wait for it before they run code of the run's.
  defp sweeper_running, do: removed([])

  # The shell that removes the run's directory once the node has gone (the port's pipe closes
  # then), whichever way it went: the node halting otherwise than by `halt` (`System.halt/1`,
  # `System.stop/1` in the code or typed in IEx, a fatal error, SIGKILL) skips `halt`'s removal.
  # Held by this process, registered as `mix_remote_sweeper` by `run_dir` as it makes the directory,
  # as long-lived as the node, which also removes through it the directories `removed` is given
  # (`halt`'s, those of earlier runs), one `rm` each, answering once it is done: the VM itself then
  # starts no program as it halts, nor one a halt could cut short. OTP starts a program in two
  # steps (erl_child_setup.c): erl_child_setup forks a child, which waits, before it runs the
  # program, for the VM to acknowledge the fork on the program's stdin; a VM that halts (or closes
  # the port, its process killed) in between leaves that child reading end-of-file, which prints
  # `erl_child_setup: failed with error 32 on line 281` on the node's stderr, and the program never
  # runs: a sweeping shell so cut short would leave the run's directory behind. So this shell says
  # it runs (a newline) before the process serves anything, and `removed` waits for the process;
  # what runs the run's code waits for it first (`sweeper_running`), so that no code of the run can
  # halt the node before the shell is up. (The load's answer need not wait for it, nor a sweep
  # that found no earlier run's directory: neither runs code of the run's. An `-on_load` function
  # that halts the node is not waited for.) A shell of a VM that went while it
  # removed goes on (SIGPIPE ignored, its answers to nobody dropped) and removes the run's
  # directory last. Erlang's functions only (see `run_dir`).
  defp sweeper(dir, sh) do
    script = "trap '' PIPE; echo; while IFS= read -r p; do rm -rf -- \"$p\"; echo 2>/dev/null; done; rm -rf -- \"$0\""
    port = :erlang.open_port({:spawn_executable, sh}, [:binary, args: ["-c", script, dir]])
    watch = :erlang.monitor(:port, port)
    if answered(port, watch, 1), do: sweeper_serve(port, watch)
  end

  # Whether the sweeper's shell (`port`, monitored as `watch`) answered `n` times more (false
  # once it is gone).
  defp answered(port, watch, n) do
    if n <= 0 do
      true
    else
      receive do
        {^port, {:data, bytes}} -> answered(port, watch, n - byte_size(bytes))
        {:DOWN, ^watch, :port, _, _} -> false
      end
    end
  end

  # The sweeper's service: each `{:mix_remote_remove, from, ref, paths}` answered `{ref, :removed}`
  # once its shell has removed them, until the shell is gone.
  defp sweeper_serve(port, watch) do
    receive do
      {:mix_remote_remove, from, ref, paths} ->
        true = :erlang.port_command(port, for(path <- paths, do: [path, ?\n]))

        if answered(port, watch, length(paths)) do
          send(from, {ref, :removed})
          sweeper_serve(port, watch)
        end

      {:DOWN, ^watch, :port, _, _} ->
        :gone
    end
  end

  # Halts the node, removing the run's directory first, once the processes that write there (see
  # `writing`) are stopped.
  defp halt(status) do
    writers = if :ets.whereis(:mix_remote_writers) == :undefined, do: [], else: :ets.tab2list(:mix_remote_writers)

    for {pid} <- writers, pid != self() do
      ref = Process.monitor(pid)
      Process.exit(pid, :kill)

      receive do
        {:DOWN, ^ref, :process, _, _} -> :ok
      end
    end

    case :persistent_term.get(:mix_remote_dir, nil) do
      nil -> :ok
      dir -> removed([dir])
    end

    System.halt(status)
  end

  # How long the code may take to stop once the tool is gone (see `stop_code`) before the node
  # halts anyway.
  @stop_limit_ms 5_000

  # While a call runs (see `monitored`), stops it as `mix run` stops on SIGTERM: its processes
  # killed, then the applications stopped, newest first, within `@stop_limit_ms` (a database
  # client's statement is cancelled as its connection ends: a halt alone left it running on the
  # database server, holding its locks, after a Ctrl-C or a timeout). A node whose call is over
  # halts at once, as `mix run` does once its code is done.
  defp stop_code do
    calls = if :ets.whereis(:mix_remote_calls) == :undefined, do: [], else: :ets.tab2list(:mix_remote_calls)

    if calls != [] do
      spawn(fn ->
        Process.sleep(@stop_limit_ms)
        halt(126)
      end)

      for {pid} <- calls, do: Process.exit(pid, :kill)
      # Stopping them is this program's doing, no exit of theirs: OTP's report of each ("exited:
      # stopped"), which Logger leaves out, goes unsaid where Logger does not run.
      :logger.add_primary_filter(
        :mix_remote_stopping,
        {fn
           %{msg: {:report, %{label: {:application_controller, :exit}, report: report}}}, _ ->
             if report[:exited] == :stopped, do: :stop, else: :ignore

           _event, _ ->
             :ignore
         end, []}
      )

      runtime = [:kernel, :stdlib, :compiler, :elixir, :logger]
      for {app, _, _} <- :application.which_applications(), app not in runtime, do: :application.stop(app)
    end
  end

  # The tool is gone (its connection, or the session's stdin, ended: Ctrl-C, a timeout, a lost
  # link, a warm session's end): stops a call still running (see `stop_code`), then halts with
  # status 126, which the tool, should it still hear of it, does not take for the code's own halt
  # (0 to 125). Once only (a lost connection and stdin's end may both say so); the name it
  # registers first, `mix_remote_going`, tells `dispatch` that the end of the code it kills is no
  # result to answer (a run still connected, a warm session ended under it, learns that the node
  # went away). Unless the node is stopping already (`System.stop/1`: the connection goes as
  # distribution stops), whose status init gives.
  defp tool_gone do
    first =
      try do
        Process.register(spawn(fn -> Process.sleep(:infinity) end), :mix_remote_going)
      rescue
        ArgumentError -> false
      end

    case :init.get_status() do
      {:stopping, _} ->
        Process.sleep(:infinity)

      _running when not first ->
        Process.sleep(:infinity)

      _running ->
        stop_code()
        halt(126)
    end
  end

  # The process of sshd that runs the session, as Linux tells it (`/proc`), nil elsewhere, until it
  # goes: the node's parent (the login shell, the launcher and the scripts after it each exec the
  # next, down to the VM), or its grandparent where the launcher waits for the VM
  # (`MIX_REMOTE_LAUNCHER`, its pid: templates/boot.sh).
  defp parent do
    with ppid when is_binary(ppid) <- parent_of("self") do
      if :os.getenv(~c"MIX_REMOTE_LAUNCHER") == :erlang.binary_to_list(ppid),
        do: parent_of(ppid),
        else: ppid
    end
  end

  # The parent of process `pid` ("self" for the node's own), nil if Linux does not say.
  defp parent_of(pid) do
    with {:ok, status} <- :file.read_file("/proc/" <> pid <> "/status"),
         [_, rest] <- :binary.split(status, "\nPPid:\t"),
         [ppid | _] <- :binary.split(rest, "\n") do
      ppid
    else
      _ -> nil
    end
  end

  # The tool is gone (see `tool_gone`) once the node's parent is no longer `first`: the session's
  # sshd process has ended (the connection is lost, or ended), and the node belongs to init (or a
  # subreaper). Its stdin usually says so first, by its end; not where sshd gave the session a
  # socketpair rather than pipes (upstream OpenSSH's default; Debian's uses pipes) and closed it
  # with the node's output unread in it (a dead link fills the channel's window): the node's reads
  # then fail with ECONNRESET, which the port reading stdin does not report (OTP 25 to 29: no
  # message, no exit), so that a node not yet connected back (a spare waiting for its run, however
  # long: a run's own time, or the session's idle limit) would wait for ever; a connected one would
  # halt as its link's ticks stop. Looked at every second: a read of a small file.
  defp orphaned(first) do
    receive do
    after
      1_000 -> :ok
    end

    if parent() == first, do: orphaned(first), else: tool_gone()
  end

  # Starts `work` in a process of its own that `halt` stops before it removes the run's directory,
  # so that nothing writes there once it is gone; returns the process and its monitor. (An ETS
  # table holds them, not a persistent term: replacing one makes every process scan its heap.)
  defp writing(work) do
    {pid, ref} =
      spawn_monitor(fn ->
        receive do
          :mix_remote_go -> work.()
        end
      end)

    true = :ets.insert(:mix_remote_writers, {pid})
    send(pid, :mix_remote_go)
    {pid, ref}
  end

  # ---- The run's directory and its files: the shipped applications' lib dirs ---------------------
  # The run's private directory on the server (`run_dir`), and the batch's files written there.

  # Where runs put their directories, and which of them earlier runs left: templates/run_dirs.exs,
  # which `cargo xtask boot-beam` puts in place of the line below. It binds closures (`tmp_dir`,
  # `run_places`, `host_tag`, `stale_runs`, and `noexec`, which `tmp_dir` calls), since the check
  # program evaluates it too (templates/check.exs, a script: no module for the server to compile);
  # here they are bound when this is called (by `run_dir`, once a run) and returned by name.
  defp run_dirs do
@RUN_DIRS@
    %{tmp_dir: tmp_dir, run_places: run_places, host_tag: host_tag, stale_runs: stale_runs}
  end

  # The run's private directory (0700, fresh: `:file.make_dir/1` fails rather than reuse anything),
  # `mix-remote-run-<OS pid>-<host tag>-<random>` in the directory `tmp_dir` picks, made on first use (after
  # `remote_env` is set, so TMPDIR may move it). The directories earlier runs left there (see
  # `run_places`) are removed meanwhile, by a process of its own. Returns the directory and, to its
  # first caller, that process's monitor, which `swept` waits on for how many it removed (0 to the
  # others), once they are removed (through the shell of `sweeper`, which the node starts here, if
  # there are any). `halt` knows the directory before it exists: a halt that stops this process
  # between the two (stdin closing as the batch comes) removes it all the same. Erlang's functions
  # only: it is on a cold run's way to the load, where each Elixir module loaded costs 0.5-5 ms
  # (String and String.Unicode, File, Path, System, Regex, Base: 40-60 ms on a booting node).
  defp run_dir do
    case :persistent_term.get(:mix_remote_dir, nil) do
      nil ->
        %{tmp_dir: tmp_dir, host_tag: host_tag, run_places: run_places, stale_runs: stale_runs} = run_dirs()
        tmp = tmp_dir.()
        random = :erlang.integer_to_binary(:rand.uniform(0xFFFFFFFFFFFFFF), 16)
        name = ["mix-remote-run-", :os.getpid(), ?-, host_tag.(), ?-, for(<<c <- random>>, do: c + if(c >= ?A, do: 32, else: 0))]
        dir = :filename.join(tmp, :erlang.iolist_to_binary(name))
        :persistent_term.put(:mix_remote_dir, dir)

        case :file.make_dir(dir) do
          :ok ->
            :ok = :file.change_mode(dir, 0o700)
            {:ok, {:file_info, _, _, _, _, _, _, _, _, _, _, _, uid, _}} = :file.read_link_info(dir)
            with sh when is_list(sh) <- :os.find_executable(~c"sh") do
              :erlang.register(:mix_remote_sweeper, spawn(fn -> sweeper(dir, sh) end))
            end

            {_pid, sweeping} =
              writing(fn ->
                stale = Enum.flat_map(run_places.(tmp), &stale_runs.(&1, uid))
                if stale != [], do: removed(stale)
                exit({:mix_remote_swept, length(stale)})
              end)

            {dir, sweeping}

          {:error, :eexist} ->
            :persistent_term.erase(:mix_remote_dir)
            run_dir()

          {:error, reason} ->
            :persistent_term.erase(:mix_remote_dir)
            raise "cannot create #{dir}: #{:file.format_error(reason)}"
        end

      dir ->
        {dir, 0}
    end
  end

  # How many stale directories the sweep `run_dir` started removed, once it is done.
  defp swept(sweeping) when is_reference(sweeping) do
    receive do
      {:DOWN, ^sweeping, :process, _, {:mix_remote_swept, count}} -> count
      {:DOWN, ^sweeping, :process, _, _failed} -> 0
    end
  end

  defp swept(count), do: count

  # Writes `files` ({path, bytes}) raw (no file server process per file), spread over one
  # process per scheduler running at `priority`; returns what `files_written` waits for.
  defp write_files(files, priority) do
    dealt = fn file, [hand | hands] -> hands ++ [[file | hand]] end
    hands = :lists.foldl(dealt, :lists.duplicate(:erlang.system_info(:schedulers_online), []), files)

    for_hand = fn
      [] ->
        false

      hand ->
        written = fn ->
          Process.flag(:priority, priority)
          :lists.foreach(&write_raw/1, hand)
        end

        {true, writing(written)}
    end

    :lists.filtermap(for_hand, hands)
  end

  # Writes a file of `write_files`; its writer exits with why it could not.
  defp write_raw({path, bytes}) do
    case :file.write_file(path, bytes, [:raw]) do
      :ok -> :ok
      {:error, reason} -> exit({:mix_remote_write, path, reason})
    end
  end

  # Waits for the writers `write_files` started; raises as File.write! would if one failed.
  defp files_written(writers) do
    :lists.foreach(fn {_pid, ref} ->
      receive do
        {:DOWN, ^ref, :process, _, :normal} ->
          :ok

        {:DOWN, ^ref, :process, _, {:mix_remote_write, path, reason}} ->
          raise File.Error, reason: reason, action: "write to", path: path

        {:DOWN, ^ref, :process, _, reason} ->
          exit(reason)
      end
    end, writers)
  end

  # Makes the directory `dir` and those above it that are missing, as File.mkdir_p!/1 does.
  defp make_path(dir) do
    case :file.make_dir(dir) do
      {:error, :enoent} ->
        make_path(:filename.dirname(dir))
        make_path(dir)

      {:error, :eexist} ->
        :ok

      :ok ->
        :ok

      {:error, reason} ->
        raise File.Error, reason: reason, action: "make directory (with -p)", path: dir
    end
  end

  # Writes `bytes` to the file `path`, as File.write!/2 does.
  defp write_file(path, bytes) do
    with {:error, reason} <- :file.write_file(path, bytes) do
      raise File.Error, reason: reason, action: "write to", path: path
    end
  end

  # Makes each application of a part of a batch `<dir>/lib/<app>/{ebin,priv}` (its `.app` and
  # `priv/` written, if the part has them: `{path, mode, bytes}` a file, `{path, mode}` a directory
  # that holds nothing that travels, path "" being `priv/` itself; see src/remote/wire.rs). Returns
  # each of the part's modules, by name, as its file and code (the modules' files are written by
  # `stage` and `finish`). Erlang's functions, as all of the way to a cold run's load (see
  # `run_dir`).
  defp write_apps(dir, apps, loose) do
    files = :lists.foldl(&app_written(dir, &1, &2), %{}, apps)
    :lists.foldl(fn {module, file, beam}, acc -> Map.put(acc, module, {file, beam}) end, files, loose)
  end

  # One application of a part written in the run's directory `dir` (see `write_apps`); `files`
  # with its modules added.
  defp app_written(dir, {app, spec, modules, priv}, files) do
    app_dir = :filename.join([dir, "lib", Atom.to_string(app)])
    ebin = :filename.join(app_dir, "ebin")
    make_path(ebin)
    if spec != "", do: write_file(:filename.join(ebin, Atom.to_string(app) <> ".app"), spec)

    :lists.foreach(fn
      {path, mode, bytes} ->
        target = :filename.join([app_dir, "priv", path])
        make_path(:filename.dirname(target))
        write_file(target, bytes)
        set_mode(target, mode)

      {path, mode} ->
        target = :filename.join([app_dir, "priv", path])
        make_path(target)
        set_mode(target, mode)
    end, priv)

    ebin_list = :unicode.characters_to_list(ebin)
    file = fn module -> :filename.join(ebin_list, Atom.to_charlist(module) ++ ~c".beam") end
    :lists.foldl(fn {module, beam}, files -> Map.put(files, module, {file.(module), beam}) end, files, modules)
  end

  # Sets the mode of the file `target`, as File.chmod!/2 does.
  defp set_mode(target, mode) do
    with {:error, reason} <- :file.change_mode(target, mode) do
      raise File.Error, reason: reason, action: "change mode for", path: target
    end
  end

  # ---- Elixir on the node: its start, and the modules loaded ahead -------------------------------
  # The elixir application's start, and the modules of the server's Elixir and OTP that runs load,
  # loaded ahead all at once rather than one by one on demand.

  # The elixir application (30-45 ms to start; on 1.15+ it puts Elixir's other lib dirs on the code
  # path), started once the node has said what it is (see `read_after_preloads`), off the path to
  # the connection back: whatever evaluates Elixir code, starts Logger or IEx, serves a request or
  # runs a module's -on_load first waits for that start (or makes it).
  defp elixir_started, do: {:ok, _} = Application.ensure_all_started(:elixir)

  # What a cold run loads from the server's Elixir whatever its code (`@started_modules`: Elixir's
  # and Logger's starts, the result's `inspect` of the usual terms) and what evaluating config
  # files adds (`@evaluator_modules`: the parser, the expander, Config.Reader), by Elixir 1.14's
  # names (and Logger.Utils, which Logger's start loads from 1.15 on). Loaded on demand, each
  # comes in turn through the one code server, behind the batch's own loads, so the last came as
  # the batch was loaded and the call waited for them (an Ecto job's 72 modules: 50-90 ms of its
  # call). Loaded ahead (`loaded_ahead`), they are read and prepared together, in parallel with
  # the batch. A name another Elixir lacks is skipped, and what it needs beyond these loads on
  # demand as before.
  @started_modules [
    Access, Application, Code.Identifier, Enum, Enumerable, Enumerable.List, File, File.Stat,
    GenServer, IO, IO.ANSI, Inspect, Inspect.Algebra, Inspect.Atom, Inspect.BitString,
    Inspect.Integer, Inspect.List, Inspect.Map, Inspect.Opts, Inspect.Tuple, Kernel, Keyword, List,
    Logger, Logger.App, Logger.BackendSupervisor, Logger.Backends.Console, Logger.Config,
    Logger.Filter, Logger.Formatter, Logger.Handler, Logger.Utils, Logger.Watcher, Macro, Macro.Env,
    Map, Node, Path, Regex, String.Chars, String.Chars.Integer, String.Tokenizer, Supervisor,
    Supervisor.Default, :elixir, :elixir_code_server, :elixir_config, :elixir_sup, :elixir_utils
  ]

  @evaluator_modules [
    Code, Config, Config.Reader, List.Chars, List.Chars.BitString, Module.ParallelChecker, Range,
    String, String.Chars.Atom, StringIO, :elixir_aliases, :elixir_bitstring, :elixir_dispatch,
    :elixir_env, :elixir_erl, :elixir_erl_pass, :elixir_erl_var, :elixir_expand, :elixir_import,
    :elixir_interpolation, :elixir_locals, :elixir_module, :elixir_parser, :elixir_quote,
    :elixir_rewrite, :elixir_tokenizer, :erl_bits
  ]

  # What compiling a script adds (see `evaluation`): Elixir's compiler and Erlang's, by OTP 25's and
  # Elixir 1.14's names, some 45 modules (130 ms of a core to load on demand, one after the other).
  @compiler_modules [
    IO, Kernel.LexicalTracker, Keyword, List, Path, :beam_a, :beam_asm, :beam_block,
    :beam_call_types, :beam_clean, :beam_dict, :beam_flatten, :beam_jump, :beam_kernel_to_ssa,
    :beam_opcodes, :beam_ssa, :beam_ssa_bsm, :beam_ssa_codegen, :beam_ssa_pre_codegen,
    :beam_ssa_recv, :beam_ssa_share, :beam_ssa_throw, :beam_trim, :beam_types, :beam_utils,
    :beam_validator, :beam_z, :cerl, :cerl_clauses, :cerl_trees, :compile, :core_lib, :core_lint,
    :elixir_compiler, :elixir_erl_compiler, :elixir_erl_for, :elixir_lexical, :erl_bifs, :sets,
    :sofs, :sys_core_alias, :sys_core_bsm, :sys_core_fold, :v3_core, :v3_kernel
  ]

  # Loads `modules` in a process of its own with code:ensure_modules_loaded/1, which leaves alone
  # a module loaded on demand meanwhile (see `@started_modules`).
  defp loaded_ahead(modules), do: spawn(fn -> :code.ensure_modules_loaded(modules) end)

  # ---- Failures, as Elixir's command line words them ---------------------------------------------
  # How a failure reads: as `mix run` prints it, and as the tool reads a request's.

  # Frames of this program (its module), and of Elixir's evaluation of the code of an `eval`
  # request, at the bottom of a stacktrace.
  @evaluators [:mix_remote_boot, :erl_eval, :elixir, :elixir_eval, Code, Module.ParallelChecker]

  # `stack` without those frames at its bottom: the code's own, as the code's author knows them.
  defp user_frames(stack) do
    stack |> Enum.reverse() |> Enum.drop_while(&(elem(&1, 0) in @evaluators)) |> Enum.reverse()
  end

  # A failure as Elixir's command line (so `mix run`) formats it: blamed, with its hints (`Did you
  # mean:`, the arguments a function clause was given, its clauses marked `+`/`-`), without
  # Elixir's internal frames (a compile error's `:elixir_expand` ones). `Kernel.CLI.format_error/3`
  # is no documented API (Elixir 1.14 to 1.20 have it): without it, `Exception`'s documented
  # functions, blamed as that command line blames.
  defp formatted(kind, reason, stack) do
    text =
      if Code.ensure_loaded?(Kernel.CLI) and function_exported?(Kernel.CLI, :format_error, 3) do
        Kernel.CLI.format_error(kind, reason, stack)
      else
        {blamed, stack} = Exception.blame(kind, reason, stack)
        Exception.format(kind, blamed, stack)
      end

    String.trim_trailing(IO.iodata_to_binary(text), "\n")
  end

  # The end of code killed by a linked process's exit as Elixir's command line prints it: `**
  # (EXIT from PID) reason` and an empty stacktrace, whose own newline makes an empty line last
  # (Elixir 1.14 and later), all but the text's final newline (see `formatted`).
  defp exit_from(pid, reason) do
    text =
      if Code.ensure_loaded?(Kernel.CLI) and function_exported?(Kernel.CLI, :format_error, 3),
        do: Kernel.CLI.format_error({:EXIT, pid}, reason, []),
        else: [Exception.format({:EXIT, pid}, reason, []), "\n\n"]

    String.replace_suffix(IO.iodata_to_binary(text), "\n", "")
  end

  # A Mix exception (one with a `:mix` field: `Mix.raise/2`'s `Mix.Error`, a `Hex`...) as Mix's
  # command line takes it once its task (so `mix run`'s code, or a config file) raised it: `{text,
  # status}`, the text `** (Mix) message`, without a stack trace (unless `MIX_DEBUG` asks for it),
  # the status what that command line exits with (`mix: true`: 1; `Mix.raise/2`'s `exit_status:`,
  # 0..255); nil for any other failure (Mix raises one with another `:mix` again, as any).
  defp mix_failure(:error, %{__exception__: true, __struct__: module, mix: mix} = e)
       when mix == true or mix in 0..255 do
    debug =
      try do
        Mix.debug?()
      catch
        _, _ -> false
      end

    unless debug do
      name = module |> inspect() |> String.split(".") |> hd()
      {"** (#{name}) #{Exception.message(e)}", if(mix == true, do: 1, else: mix)}
    end
  end

  defp mix_failure(_kind, _reason), do: nil

  # A failure of a request as the tool reads it (src/remote/node: `failure_text`): an exception as
  # its module and its message on one line (a `File.Error` has no message field of its own).
  defp failure(:error, %{__exception__: true, __struct__: module} = e) do
    {:error, %{__struct__: module, message: String.replace(Exception.message(e), "\n", " ")}}
  end

  defp failure(kind, reason), do: {kind, reason}

  # For an `undef` of a module the node does not have: that module (so the tool can name the flag).
  defp missing_module(:error, :undef, [{module, _, _, _} | _]),
    do: if(:code.is_loaded(module), do: nil, else: module)

  defp missing_module(_kind, _reason, _stack), do: nil

  # ---- Config evaluation: config.exs (ahead, for a cold run) and runtime.exs ---------------------
  # The config files evaluated as `mix run` evaluates them (a cold run's config.exs ahead, while its
  # batch is staged), and the configuration applied (`put_config`).

  # MIX_ENV and MIX_TARGET as `setup` has them (see src/remote/invoke.rs): the run's environment
  # and target, as under `MIX_ENV=prod MIX_TARGET=rpi mix run`, or a MIX_TARGET of `remote_env`;
  # they replace a login's own (MIX_TARGET unset for `host`, Mix's default; Mix reads it as it
  # starts, and the config files' `config_target()` is it).
  defp mix_env_set(setup) do
    with value when is_binary(value) <- Map.get(setup, :mix_env) do
      true = :os.putenv(~c"MIX_ENV", :unicode.characters_to_list(value))
    end

    case Map.get(setup, :mix_target) do
      "host" -> true = :os.unsetenv(~c"MIX_TARGET")
      value when is_binary(value) -> true = :os.putenv(~c"MIX_TARGET", :unicode.characters_to_list(value))
      nil -> true
    end
  end

  defp read_config(path, opts) do
    if File.regular?(path), do: Config.Reader.read!(path, opts), else: []
  end

  # Mix started, set to environment `env`, as `mix run` has it: for code that asks it
  # (`Mix.env()`), and with the tasks `mix run` has run before the code (`app.start`, `compile`...)
  # run, so that the code's `Mix.Task.run("app.start")` is `:noop` as there, rather than a
  # failure for want of a Mix project. `Mix.TasksServer` is no documented API (Elixir 1.14 to 1.20
  # have it): without it, those tasks stay to run.
  defp mix_started(env) do
    # A server whose Elixir lacks Mix (a release's own ERTS and Elixir) runs the code without it.
    with {:ok, _} <- Application.ensure_all_started(:mix) do
      Mix.env(String.to_atom(env))

      if function_exported?(Mix.TasksServer, :put, 1) do
        try do
          for task <- ~w(deps.loadpaths loadpaths compile compile.all app.config app.start run),
              do: Mix.TasksServer.put({:task, task, Mix.Project.get()})
        catch
          _, _ -> :ok
        end
      end
    end
  end

  # Takes the ebins of the run's directory `run` off the code path; returns them, in order.
  defp ebins_off_path(run) do
    run = String.to_charlist(run)
    ours = Enum.filter(:code.get_path(), &:lists.prefix(run, &1))
    Enum.each(ours, &:code.del_path/1)
    ours
  end

  # Evaluates the config files `names` (config.exs, runtime.exs) of `files` for Mix environment
  # `env`, in order, as `mix run` does (runtime.exs sees this server's environment), the files
  # written in `<run dir>/<subdir>` meanwhile: `{:ok, configs}`, one config each ([] for a missing
  # file), or `{:config_failed, "config/NAME", text}` for the first that failed, formatted as
  # `mix run` formats it (see `formatted`) with the run directory's paths shown as the project's
  # (`config/x.exs:3`), with the status Mix's command line exits with after it: `{:config_failed,
  # "config/NAME", text, status}` (1, a Mix exception's, or an exit's that ends the run with a
  # status, whose text is empty: `mix run` prints nothing of it).
  defp evaluate_config(files, env, names, subdir) do
    # An older config asks Mix for the environment (`Mix.env()`): Mix then runs, set to it.
    if Enum.any?(files, fn {_path, contents} -> String.contains?(contents, "Mix.") end) do
      mix_started(env)
    end

    {run, _stale} = run_dir()
    dir = Path.join(run, subdir)

    try do
      # As Mix reads them: runtime.exs may not import other files.
      with :ok <- config_written(files, dir) do
        in_dir(run, dir, fn ->
          Enum.reduce_while(names, {:ok, []}, &config_file_read(&1, &2, run, dir, env))
        end)
      end
    after
      File.rm_rf(dir)
    end
  end

  # Runs `evaluate` (the config files' evaluation) in their directory `dir`, as `mix run`
  # evaluates them in the project's: Elixir names a file relative to the working directory in what
  # it prints (a compiler warning's `config/dev.exs:4`), where the run's directory would show its
  # own path. The login's is back before anything else runs there (the function runs in it). Not
  # with a relative run directory (`run`), whose paths the staging of the batch meanwhile resolves
  # from there.
  defp in_dir(run, dir, evaluate) do
    with {:ok, cwd} <- :file.get_cwd(), :absolute <- Path.type(run), :ok <- :file.set_cwd(dir) do
      try do
        evaluate.()
      after
        :file.set_cwd(cwd)
      end
    else
      _not_there -> evaluate.()
    end
  end

  # The config `files` written in `dir` where they import each other from, as in the project.
  defp config_written(files, dir) do
    try do
      File.mkdir_p!(dir)

      for {path, contents} <- files do
        target = Path.join(dir, path)
        File.mkdir_p!(Path.dirname(target))
        File.write!(target, contents)
      end

      :ok
    rescue
      e in File.Error -> {:config_failed, "config/", Exception.message(e)}
    end
  end

  # The config file `name` of the config files written in `<run dir>/<subdir>` (`dir`) read for Mix
  # environment `env`, as `evaluate_config` goes through them: `{:cont, {:ok, configs}}` with its
  # config after `configs`, or `{:halt, {:config_failed, ...}}`.
  defp config_file_read(name, {:ok, configs}, run, dir, env) do
    imports = if name == "runtime.exs", do: [imports: :disabled], else: []

    # The file under way, said on the node's stdout (`mix-remote:config:config/NAME`, then
    # `mix-remote:config:` once it is done): a `System.halt/1` in it halts the node at
    # once, which the tool then reports as that file's end of the run, as `mix run` ends.
    IO.write(:user, "\nmix-remote:config:config/#{name}\n")

    # Mix evaluates config.exs before the project's code is on its code path: the shipped
    # applications' ebins are off it meanwhile (an evaluation ahead comes before they are
    # on it), so that a call there of a module of theirs not loaded fails as it fails `mix
    # run`, `function Demo.Money.new/2 is undefined (module Demo.Money is not available)`.
    # runtime.exs, evaluated after the compile, may call them.
    off_path = if name == "config.exs", do: ebins_off_path(run), else: []

    try do
      target = String.to_atom(System.get_env("MIX_TARGET", "host"))
      read_config(Path.join([dir, "config", name]), [env: String.to_atom(env), target: target] ++ imports)
    catch
      kind, reason ->
        # Its frames down to the reading of the file, as `mix run` shows them (and more
        # of its own below), or all of them when they go deeper than that (the
        # stacktrace's depth cut them before the reading: the file's own frame is one of
        # Elixir's evaluation, and Elixir 1.15+'s erl_eval frames soon fill the depth).
        stack =
          case Enum.split_while(Enum.reverse(__STACKTRACE__), &(elem(&1, 0) != Config.Reader)) do
            {_below, [_ | _] = frames} -> Enum.reverse(frames)
            {_all, []} -> __STACKTRACE__
          end

        # A Mix exception with the status Mix's command line exits with (see
        # `mix_failure`), and an exit Elixir's command line takes for an end with a
        # status (as `ended_by` does, in the code) without a word, end the run as they
        # end `mix run`.
        {text, status} =
          case {kind, reason} do
            {:exit, end_with} when end_with in [:normal, :shutdown] -> {"", 0}
            {:exit, {:shutdown, n}} when is_integer(n) and n >= 0 -> {"", rem(n, 256)}
            {:exit, {:shutdown, n}} when not is_integer(n) -> {"", 0}
            _failed -> mix_failure(kind, reason) || {formatted(kind, reason, stack), 1}
          end

        {:halt, {:config_failed, "config/" <> name, String.replace(text, dir <> "/", ""), status}}
    else
      config -> {:cont, {:ok, configs ++ [config]}}
    after
      if off_path != [], do: :code.add_pathsa(Enum.reverse(off_path))
      IO.write(:user, "\nmix-remote:config:\n")
    end
  end

  # What config.exs prints as it is evaluated ahead (see `evaluate_ahead`), said on the node's
  # stdout too as it is printed, as `mix-remote:held:<hex>` lines of at most 16 KiB of it each: a
  # halt the file reaches (`System.halt/1`, named in it or not) takes what the node holds with it,
  # and the tool shows this instead, as `mix run` shows what came before a halt. (The halt flushes
  # what is written to stdout before it.)
  defp held_said(out) do
    size = min(byte_size(out), 16384)
    IO.write(:user, ["\nmix-remote:held:", :binary.encode_hex(:binary.part(out, 0, size)), ?\n])
    if size < byte_size(out), do: held_said(:binary.part(out, size, byte_size(out) - size))
  end

  # The group leader of config.exs evaluated ahead: serves what it is asked with the StringIO `io`,
  # and keeps what it is given to print (`printed`), said as it comes (see `held_said`), until it is
  # asked for it (`{:mix_remote_printed, from}`).
  defp held_io(io, printed) do
    receive do
      {:io_request, from, reply_as, request} ->
        reply = :io.request(io, request)
        out = StringIO.flush(io)
        if out != "", do: held_said(out)
        send(from, {:io_reply, reply_as, reply})
        held_io(io, [printed | out])

      {:mix_remote_printed, from} ->
        send(from, {:mix_remote_printed, IO.iodata_to_binary(printed)})
    end
  end

  # A cold run's config.exs is evaluated as soon as it comes with the batch (see `stage_and_load`),
  # while the modules are staged and prepared, by a process registered as `mix_remote_config`, which
  # hands the first to ask `{files, env}` (what it evaluated), how that went, what the evaluation
  # printed (kept until then, for the relay), and the `System.at_exit/1` hooks it registered (gone
  # again if it is evaluated anew). Before that, it tells any that asks `mix_remote_config_wait`
  # once it is done evaluating (see `config_evaluated`): none of the batch loads before, as none of
  # the project's code is there as Mix evaluates config.exs. At normal priority, then, as the
  # staging: the load waits for it. The run's directory must exist before (it is made once).
  defp evaluate_ahead(files, env) do
    loaded_ahead(@evaluator_modules)

    {pid, _ref} =
      writing(fn ->
        elixir_started()
        sweeper_running()
        {:ok, io} = StringIO.open("")
        held = spawn_link(fn -> held_io(io, []) end)
        Process.group_leader(self(), held)
        hooks = :elixir_config.get(:at_exit, [])

        result =
          try do
            evaluate_config(files, env, ["config.exs"], "config-ahead")
          catch
            _kind, _reason -> :failed
          end

        send(held, {:mix_remote_printed, self()})
        printed =
          receive do
            {:mix_remote_printed, printed} -> printed
          end
        added = :elixir_config.get(:at_exit, []) -- hooks
        config_answered({:mix_remote_config, {files, env}, result, printed, added})
      end)

    Process.register(pid, :mix_remote_config)
  end

  # What `mix_remote_config` answers once config.exs evaluated ahead is done: that it is, to each
  # that asks `mix_remote_config_wait`, then `answer` to the first that asks `mix_remote_config`.
  defp config_answered(answer) do
    receive do
      {:mix_remote_config_wait, from} ->
        send(from, :mix_remote_config_evaluated)
        config_answered(answer)

      {:mix_remote_config, from} ->
        send(from, answer)
    end
  end

  # Returns once config.exs evaluated ahead (see `evaluate_ahead`) is done, if it is being evaluated.
  defp config_evaluated do
    with pid when is_pid(pid) <- Process.whereis(:mix_remote_config) do
      ref = Process.monitor(pid)
      send(pid, {:mix_remote_config_wait, self()})

      receive do
        :mix_remote_config_evaluated -> Process.demonitor(ref, [:flush])
        {:DOWN, ^ref, :process, _, _} -> :ok
      end
    end
  end

  # The config of config.exs (`{:ok, config}`), or how it failed (see `evaluate_config`): as
  # evaluated ahead if it was, of these `files` and `env` (what it printed is printed now: the
  # failure is the tool's to print, after it); else evaluated now, without the `System.at_exit/1`
  # hooks an evaluation ahead that went wrong registered, which this one registers again (they
  # would run twice). Not again after a failure ahead: the code loaded since, which Mix does not have
  # as it evaluates config.exs, would be there.
  defp config_exs(files, env) do
    ahead =
      with pid when is_pid(pid) <- Process.whereis(:mix_remote_config) do
        ref = Process.monitor(pid)
        send(pid, {:mix_remote_config, self()})

        receive do
          {:mix_remote_config, evaluated, result, printed, added} ->
            Process.demonitor(ref, [:flush])

            case {evaluated == {files, env}, result} do
              {true, {:ok, _}} ->
                IO.write(printed)
                result

              {true, {:config_failed, _file, _text, _status}} ->
                IO.write(printed)
                result

              _other_or_broken ->
                :elixir_config.update(:at_exit, &(&1 -- added))
                nil
            end

          {:DOWN, ^ref, :process, _, _} ->
            nil
        end
      end

    case ahead || evaluate_config(files, env, ["config.exs"], "config") do
      {:ok, [config]} -> {:ok, config}
      failed -> failed
    end
  end

  # Whether the compile-time config of `apps` (`Application.compile_env/3`, recorded in their
  # `.app`) is what config.exs gives them here, as `mix run` checks it when it compiles,
  # before runtime.exs: `:ok`, or `{:compile_env_differs, app}` for the first that differs, once
  # Elixir has said how (below), as it says it under `mix run`. Elixir before 1.10 records none.
  defp compile_env_checked(apps) do
    Code.ensure_loaded(Config.Provider)

    if function_exported?(Config.Provider, :validate_compile_env, 2) do
      # Elixir up to 1.14 prints what differs (`ERROR! ...`, on stdout) and raises; later ones
      # return it, and Mix raises it (`** (Mix) ...`, on stderr). Every shipped application is
      # loaded by now, as Mix has them (hence `false`: load none).
      Enum.reduce_while(apps, :ok, fn app, :ok ->
        try do
          Config.Provider.validate_compile_env(compile_env(app), false)
        catch
          :error, "aborting boot" -> {:halt, {:compile_env_differs, app}}
          kind, reason -> {:halt, {:config_failed, "the compile-time config", Exception.format(kind, reason, [])}}
        else
          {:error, message} ->
            IO.puts(:stderr, "** (Mix) " <> message)
            {:halt, {:compile_env_differs, app}}

          _ok ->
            {:cont, :ok}
        end
      end)
    else
      :ok
    end
  end

  # The compile-time config `app` recorded in its `.app`. The application controller keeps no keys
  # of its own: the `.app` is read as Mix reads it.
  defp compile_env(app) do
    with file when is_list(file) <- :code.where_is_file(Atom.to_charlist(app) ++ ~c".app"),
         {:ok, [{:application, ^app, keys}]} <- :file.consult(file) do
      :proplists.get_value(:compile_env, keys, [])
    else
      _ -> []
    end
  end

  # What Mix says, on standard error (red on a terminal, as `Mix.shell().error/1`), of a config
  # file (`name`) whose `config` configures kernel or stdlib, started before any config applies,
  # as it says it loading config.exs and runtime.exs for `mix run`.
  defp base_apps_said(config, name) do
    case Enum.filter([:stdlib, :kernel], &Keyword.has_key?(config, &1)) do
      [] ->
        :ok

      reserved ->
        text = """
        Cannot configure base applications: #{inspect(reserved)}

        These applications are already started by the time the configuration
        executes and these configurations have no effect.

        If you want to configure these applications for a release, you can
        specify them in your vm.args file:

            -kernel config_key config_value

        Alternatively, if you must configure them dynamically, you can wrap
        them in a conditional block in your config files:

            if System.get_env("RELEASE_MODE") do
              config :kernel, ...
            end

        and then configure your releases to reboot after configuration:

            releases: [
              my_app: [reboot_system_after_config: true]
            ]

        This happened when loading config/#{name} or
        one of its imports.
        """

        IO.puts(:stderr, IO.ANSI.format([:red, :bright, text]))
    end
  end

  # What Mix says on standard error, once the config files are applied, of each application they
  # configure (`configured`: runtime.exs's, then config.exs's, repeats included, as Mix lists
  # them) that is neither loaded nor on the code path: as `mix run` leaves out those of the
  # project's build (`built`: on its code path, shipped or not).
  defp unavailable_said(configured, built) do
    for app <- configured,
        app not in built,
        Application.spec(app, :vsn) == nil,
        :code.lib_dir(app) == {:error, :bad_name} do
      text = """
      You have configured application #{inspect(app)} in your configuration file,
      but the application is not available.

      This usually means one of:

        1. You have not added the application as a dependency in a mix.exs file.

        2. You are configuring an application that does not really exist.

      Please ensure #{inspect(app)} exists or remove the configuration.
      """

      IO.puts(:stderr, IO.ANSI.format([:red, :bright, text]))
    end
  end

  # Applies the configuration as `mix run` does: config.exs's (see `config_exs`) put with
  # `persistent: true`, so it beats the `.app` defaults, which load next with every shipped
  # application; then runtime.exs evaluated, seeing both, and merged into what each application
  # has (keyword lists deeply, as Mix merges them) before it is put. In between, the compile-time
  # config of `compile_env_apps` (those whose `.app` records one) is checked (see
  # `compile_env_checked`). Mix's words follow for an application configured that is not there
  # (see `unavailable_said`; `built`: the applications of the project's build), unless `built` is
  # `nil`: mix.exs sets `build_path:`, and Mix leaves that check to the umbrella owning the build.
  # Returns `:ok`, or how a config file failed (see `evaluate_config`) or which application's
  # compile-time config differs.
  defp put_config(files, env, compile_env_apps, built) do
    with {:ok, config} <- if(files != [], do: config_exs(files, env), else: {:ok, []}) do
      Application.put_all_env(config, persistent: true)
      base_apps_said(config, "config.exs")

      for app <- :persistent_term.get(:mix_remote_apps, []) do
        case Application.load(app) do
          :ok -> :ok
          {:error, {:already_loaded, _}} -> :ok
          {:error, reason} -> raise "cannot load application #{app}: #{inspect(reason)}"
        end
      end

      with :ok <- if(compile_env_apps != [], do: compile_env_checked(compile_env_apps), else: :ok),
           {:ok, [runtime]} <- if(files != [], do: evaluate_config(files, env, ["runtime.exs"], "config"), else: {:ok, [[]]}) do
        base_apps_said(runtime, "runtime.exs")

        merged =
          for {app, settings} <- runtime do
            [{^app, merged}] = Config.Reader.merge([{app, Application.get_all_env(app)}], [{app, settings}])
            {app, merged}
          end

        Application.put_all_env(merged, persistent: true)
        if built, do: unavailable_said(Keyword.keys(runtime) ++ Keyword.keys(config), built)
        :ok
      end
    end
  end

  # ---- The applications' start -------------------------------------------------------------------
  # The setup of a call (`configure`): the configuration applied and the applications started, as
  # `mix run` does before it runs the code.

  # Starts `apps` (and what they need) as `mix run` does; the first failure as Mix words it. With
  # `permanent` (mix.exs's `start_permanent:`), the process that waits for this call watches them
  # (see `awaited`): their application masters go to it. They are started temporary all the same:
  # a permanent application's exit would halt this node at once, before the tool hears why.
  defp start_apps(apps, permanent) do
    started =
      Enum.reduce_while(apps, {:ok, []}, fn app, {:ok, all} ->
        case :application.ensure_all_started(app, :temporary) do
          {:ok, started} -> {:cont, {:ok, all ++ started}}
          {:error, {failed, reason}} ->
            # The application controller logs the exit (`Application APP exited: ...`, as `mix
            # run` shows it) after its reply: a call to it waits for that, so that the report is
            # in Logger's hands before the run's end flushes them (see `settled`).
            _ = :application.which_applications()
            {:halt, {:not_started, failed, Application.format_error(reason)}}
        end
      end)

    with {:ok, all} <- started do
      with true <- permanent, waiter when is_pid(waiter) <- Process.get(:mix_remote_waiter) do
        masters =
          Enum.flat_map(all, fn app ->
            case :application_controller.get_master(app) do
              master when is_pid(master) -> [{app, master}]
              _none -> []
            end
          end)

        # Watched before the call begins: an exit from now on is the call's failure.
        ref = make_ref()
        send(waiter, {:mix_remote_permanent, self(), ref, masters})

        receive do
          {^ref, :watched} -> :ok
        end
      end

      :ok
    end
  end

  # Whether starting `apps` starts Logger: one of them needs it, directly or through others.
  defp starts_logger([], _seen), do: false
  defp starts_logger([:logger | _], _seen), do: true

  defp starts_logger([app | rest], seen) do
    if MapSet.member?(seen, app) do
      starts_logger(rest, seen)
    else
      # One not loaded yet (of the server's OTP or Elixir) is loaded, as its start would load it.
      needs =
        case Application.spec(app, :applications) do
          nil ->
            _ = Application.load(app)
            Application.spec(app, :applications) || []

          needs ->
            needs
        end

      starts_logger(needs ++ rest, MapSet.put(seen, app))
    end
  end

  # Elixir's own protocols as `mix run` has them, consolidated for the project (`setup.protocols`:
  # the Elixir version that made them and `{module, path, beam}` each; see src/remote/job.rs),
  # loaded over the server's copies when this node runs that same release: another release's
  # protocols need not have the same functions, nor its own types the same implementations. The
  # server's copies have no old code yet; should the loader refuse them, the call goes on with
  # the server's, unconsolidated, as it would on another release.
  defp protocols_consolidated({version, beams}) do
    if System.version() == version do
      as_loaded = fn {module, path, beam} -> {module, :unicode.characters_to_list(path), beam} end
      :code.atomic_load(:lists.map(as_loaded, beams))
    end
  end

  defp protocols_consolidated(nil), do: :ok

  # `setup` (see src/remote/invoke.rs): the config, then the applications started (or only loaded),
  # with Logger restarted in between if the config changed its settings, so that they apply either
  # way. (Otherwise it runs throughout, as started at boot: a restart costs a booting node 10-30 ms.)
  # Started, they run without Logger unless one of them needs it, as Mix's `app.start` stops it for
  # them to start again: Elixir's Logger calls print nothing then, and Erlang's logger writes in OTP's
  # own format, as under `mix run`. What the applications' processes print goes where the function's
  # output goes, as under `mix run`: to this process's group leader, the relay, rather than the node's
  # own stdout. (An application master forwards its processes' output to the group leader of the
  # application controller, which started it.) Mix runs first if the code asks it (`mix`: the tool saw
  # a call of Mix's in the shipped modules or the code). Returns `:ok`, or why the code is not to be
  # called: a config file failed (see `put_config`), the compile-time config differs (see
  # `compile_env_checked`), an application did not start (see `start_apps`).
  defp configure(%{config: files, env: env, apps: apps, start: start} = setup) do
    protocols_consolidated(Map.get(setup, :protocols))
    mix_env_set(setup)
    if Map.get(setup, :mix, false), do: mix_started(env)
    # Colours as `mix run` has them on a terminal (see `ansi` in src/remote/job.rs).
    if Map.get(setup, :ansi, false), do: Application.put_env(:elixir, :ansi_enabled, true)
    Process.group_leader(Process.whereis(:application_controller), Process.group_leader())
    # Logger's start at boot may be going on still: it ends first, with the settings it read, so
    # that a config that changes them restarts it rather than stopping a start half done.
    Application.ensure_all_started(:logger)
    before = logger_settings()

    built = if Map.get(setup, :check_configured, true), do: Map.get(setup, :built_apps, [])

    with :ok <- put_config(files, env, Map.get(setup, :compile_env_apps, []), built) do
      restart = logger_settings() != before
      stop =
        if start,
          do: restart or not starts_logger(apps, MapSet.new()),
          else: restart
      crash_here = List.keyfind(:logger.get_primary_config().filters, :mix_remote_crash_here, 0)
      if stop, do: Application.stop(:logger)
      started = if start, do: start_apps(apps, Map.get(setup, :permanent, false)), else: :ok
      if not start, do: Application.ensure_all_started(:logger)
      # Elixir 1.15+'s Logger puts its translator first as it starts (and drops, as it stops, the
      # filters added since it started at boot): the filter of crash reports goes first again.
      others = List.keydelete(:logger.get_primary_config().filters, :mix_remote_crash_here, 0)
      if crash_here, do: :logger.set_primary_config(:filters, [crash_here | others])
      started
    end
  end

  # Logger's settings as the config has them, in an order that compares.
  defp logger_settings, do: :lists.sort(Application.get_all_env(:logger))

  # ---- Loading the batch: what the node has, staging, chunks, finish -----------------------------
  # What the node has and lacks; the batch's parts staged in the run's directory as they come
  # (`stage`), their modules prepared chunk by chunk and loaded (`finish`).

  # Which of `apps` this node lacks, with the code path the elixir application's start makes (on
  # Elixir 1.15+ it puts Elixir's other lib dirs there, Logger's among them): one that is not on
  # the path is looked for again once that start is done. Only then: on a cold node the start is
  # still going on as the load frame comes, and waiting for it held the load up (some 40 ms).
  defp missing_apps(apps) do
    case lacking(apps) do
      [] ->
        []

      _some ->
        elixir_started()
        lacking(apps)
    end
  end

  # Which of `apps` are not on the code path now.
  defp lacking(apps), do: :lists.filter(&match?({:error, _}, :code.lib_dir(&1)), apps)

  # What this node is and has: its versions, the MD5 of every module it has loaded, its machine,
  # and which of `apps` it lacks. (Erlang's functions: a cold node says it before it connects back,
  # see `read_after_preloads`.)
  defp describe(apps) do
    md5 = fn {module, _} -> {module, :erlang.get_module_info(module, :md5)} end
    text = fn key -> :erlang.list_to_binary(:erlang.system_info(key)) end
    {:ok, [{:application, :elixir, elixir}]} = :file.consult(:filename.join(:code.lib_dir(:elixir), ~c"ebin/elixir.app"))

    {text.(:otp_release), text.(:version), :erlang.list_to_binary(:proplists.get_value(:vsn, elixir)),
     :lists.map(md5, :code.all_loaded()), text.(:system_architecture),
     :erlang.system_info({:wordsize, :external}), missing_apps(apps)}
  end

  # Before a batch is loaded on what the tool took for granted without asking (a warm run): the
  # node has each of `apps`, and each module of `expected` ({Module, Md5}) not in `eager` is loaded
  # with that MD5. `{:missing, apps}` or `{:stale, modules}` if not (a cold run, which asked, gives
  # `[]` for both).
  defp unexpected(eager, apps, expected) do
    differs = fn {module, md5} ->
      not :lists.member(module, eager) and
        (not :erlang.module_loaded(module) or :erlang.get_module_info(module, :md5) != md5)
    end

    stale = for {module, _} <- :lists.filter(differs, expected), do: module

    case {missing_apps(apps), stale} do
      {[], []} -> nil
      {[], stale} -> {:stale, stale}
      {missing, _} -> {:missing, missing}
    end
  end

  # Why a module's -on_load failed: the code server only logs it (as a warning); `on_load_reasons`
  # catches that report while the closure loads and sends it here instead.
  defp on_load_reason(module) do
    receive do
      {:mix_remote_on_load, ^module, term} -> "its -on_load function returned " <> inspect(term)
    after
      2000 -> :on_load_failure
    end
  end

  defp on_load_report(event, pid) do
    found =
      case event do
        %{msg: {:report, %{format: format, args: [module, term | _]}}} -> {format, module, term}
        %{msg: {format, [module, term | _]}} -> {format, module, term}
        _other -> nil
      end

    case found do
      {format, module, term} when is_list(format) and is_atom(module) ->
        if :string.find(format, "on_load function") != :nomatch do
          send(pid, {:mix_remote_on_load, module, term})
          :stop
        else
          event
        end

      _other ->
        event
    end
  end

  defp on_load_reasons(work) do
    :logger.add_primary_filter(:mix_remote_on_load, {&on_load_report/2, self()})

    try do
      work.()
    after
      :logger.remove_primary_filter(:mix_remote_on_load)
    end
  end

  defp load_one_by_one([]), do: :ok

  defp load_one_by_one([{module, file, binary} | rest]) do
    case :code.load_binary(module, file, binary) do
      {:module, ^module} -> load_one_by_one(rest)
      {:error, :on_load_failure} -> {:error, [{module, on_load_reason(module)}]}
      {:error, why} -> {:error, [{module, why}]}
    end
  end

  # Loads `modules`, which have an -on_load, one by one, in order (see `load_one_by_one`), once the
  # elixir application runs: their -on_load may need it.
  defp load_on_load([]), do: :ok

  defp load_on_load(modules) do
    elixir_started()
    load_one_by_one(modules)
  end

  # Loads the modules of `batch` (leaves first, as `{module, file, beam}`) whose names are not in
  # `on_load` with one code:atomic_load/1, all or nothing; then the `on_load` ones one by one, in
  # order, since atomic_load refuses modules with -on_load. A module atomic_load refuses for that
  # reason although the tool did not flag it joins them.
  defp load(batch, on_load) do
    {later, first} = Enum.split_with(batch, &(elem(&1, 0) in on_load))

    case :code.atomic_load(first) do
      :ok ->
        load_on_load(later)

      {:error, refused} = error ->
        case for {module, :on_load_not_allowed} <- refused, do: module do
          missed when length(missed) == length(refused) -> load(batch, on_load ++ missed)
          _ -> error
        end
    end
  end

  # Prepares each chunk of modules sent to it as `{:mix_remote_chunk, index, modules}`, in
  # order, until `:mix_remote_chunks_end`, and sends `finisher` `{tag, index, prepared}` for each,
  # then `{tag, :end}`; stops after the first chunk that could not be prepared.
  defp prepare_chunks(finisher, tag) do
    receive do
      {:mix_remote_chunk, index, chunk} ->
        prepared = :code.prepare_loading(chunk)
        send(finisher, {tag, index, prepared})
        if match?({:ok, _}, prepared), do: prepare_chunks(finisher, tag)

      :mix_remote_chunks_end ->
        send(finisher, {tag, :end})
    end
  end

  # Loads the prepared chunks from `index` on, in order, as they come (see `finish_chunks`).
  defp finished_chunks(tag, preparing, index) do
    receive do
      {^tag, ^index, {:ok, prepared}} ->
        case :code.finish_loading(prepared) do
          :ok -> finished_chunks(tag, preparing, index + 1)
          refused -> refused
        end

      {^tag, ^index, _failed} ->
        {:unprepared, index}

      {^tag, :end} ->
        :ok

      {:DOWN, ^preparing, :process, _, reason} when reason != :normal ->
        {:badrpc, {:exit, reason}}
    end
  end

  # Loads (code:finish_loading/1) the chunks the preparing process sends, in order, each as soon
  # as it is prepared, once config.exs evaluated ahead is done (see `config_evaluated`) and
  # `{:mix_remote_finish, true}` says they are wanted (`false`: none is);
  # then sends `stager` `{tag, :finished, outcome}`: `:ok`, `:dropped`, what finish_loading
  # refused, or `{:unprepared, index}` from the first chunk that could not be prepared (see
  # `finish`).
  defp finish_chunks(stager, tag) do
    preparing =
      receive do
        {:mix_remote_preparer, pid} -> Process.monitor(pid)
      end

    # Mix evaluates config.exs before the project's code is there: none of it loads before.
    config_evaluated()

    outcome =
      receive do
        {:mix_remote_finish, true} -> finished_chunks(tag, preparing, 0)
        {:mix_remote_finish, false} -> :dropped
      end

    send(stager, {tag, :finished, outcome})
  end

  # Tells the process that loads the prepared chunks of a batch staged for `closure` whether they
  # are wanted, given the load frame's `[eager, on_load, apps, expected]`: if nothing is
  # `unexpected` and they are all of `eager` (see `finish`).
  defp tell_finisher(finisher, closure, [eager, _on_load, apps, expected]) do
    wanted = eager == closure and unexpected(eager, apps, expected) == nil
    send(finisher, {:mix_remote_finish, wanted})
  end

  # Receives the parts of a batch for `stage`, as `{:mix_remote_part, data}` (the compressed term
  # of a part) until `:mix_remote_parts_end`: writes each part's applications,
  # hands its closure modules to the preparing process as a chunk, and writes the files of its
  # other modules at once. A load frame that comes meanwhile (see `stage_and_load`) tells the
  # finishing process at once whether to load the chunks as they are prepared (it is looked for
  # before each part: it comes after them all, often while they are still staged), and is left for
  # after. Returns what came.
  defp staged_parts(state) do
    state =
      if state.told do
        state
      else
        receive do
          {:mix_remote_load, _} = line -> load_heard(state, line)
        after
          0 -> state
        end
      end

    told = state.told

    receive do
      {:mix_remote_part, data} ->
        {apps, loose} = :erlang.binary_to_term(data)
        files = write_apps(state.dir, apps, loose)
        wanted = fn {m, _} -> Map.has_key?(state.wanted, m) end
        {here, on_demand} = :lists.partition(wanted, :maps.to_list(files))

        in_chunk = fn
          {m, {file, beam}} -> not Map.has_key?(state.on_load, m) and {true, {m, file, beam}}
        end

        chunk = :lists.filtermap(in_chunk, here)
        if chunk != [], do: send(state.preparer, {:mix_remote_chunk, length(state.chunks), chunk})
        writers = write_files(:lists.map(&elem(&1, 1), on_demand), :normal)
        part_apps = :lists.map(&elem(&1, 0), apps)

        staged_parts(
          %{state | files: Map.merge(state.files, files), writers: writers ++ state.writers,
            apps: state.apps ++ (part_apps -- state.apps),
            chunks: if(chunk == [], do: state.chunks, else: [chunk | state.chunks])}
        )

      {:mix_remote_load, _} = line when not told ->
        staged_parts(load_heard(state, line))

      :mix_remote_parts_end ->
        send(state.preparer, :mix_remote_chunks_end)
        state
    end
  end

  # The load frame heard while staging (see `staged_parts`): the finishing process told, the frame
  # left for after (sent to this process again), the state `told`.
  defp load_heard(state, {:mix_remote_load, load} = line) do
    tell_finisher(state.finisher, state.closure, load)
    send(self(), line)
    %{state | told: true}
  end

  # Stages a batch (see src/remote/wire.rs) whose parts are sent to this process (see
  # `staged_parts`): the applications are written as lib dirs, and the
  # modules named in `closure` (leaves first) but not in `on_load` prepared for loading
  # (code:prepare_loading/1) by a process of its own, a part's at a time, and loaded by another as
  # each chunk is prepared, once told to (`finish_chunks`): the first parts are loaded while the
  # last are still on their way. The files of modules that load on demand are written when it
  # returns; those of `closure`, loaded from memory, once they are loaded (see `finish`).
  defp stage(closure, on_load) do
    {dir, stale} = run_dir()
    {stager, tag} = {self(), make_ref()}
    {finisher, finishing} = writing(fn -> finish_chunks(stager, tag) end)
    {preparer, _} = writing(fn -> prepare_chunks(finisher, tag) end)
    send(finisher, {:mix_remote_preparer, preparer})

    set = fn modules -> :maps.from_list(:lists.map(&{&1, true}, modules)) end

    came =
      staged_parts(
        %{dir: dir, preparer: preparer, finisher: finisher, told: false,
          closure: closure, wanted: set.(closure), on_load: set.(on_load), files: %{}, writers: [],
          apps: [], chunks: []}
      )

    :persistent_term.put(:mix_remote_apps, came.apps)

    modules =
      :lists.map(fn m -> {file, beam} = Map.fetch!(came.files, m); {m, file, beam} end, closure)

    ebin = fn app -> :unicode.characters_to_list(:filename.join([dir, "lib", Atom.to_string(app), "ebin"])) end
    files_written(came.writers)

    %{closure: closure, modules: modules, chunks: :lists.reverse(came.chunks), tag: tag,
      finisher: finisher, finishing: finishing, told: came.told, stale: stale,
      loaded_files: :lists.map(fn {_, file, beam} -> {file, beam} end, modules),
      ebins: :lists.map(ebin, came.apps)}
  end

  # Sends this process the parts of `batch` (the list of them in the external term format), for
  # `stage` to take.
  defp parts_sent(batch) do
    for part <- :erlang.binary_to_term(batch), do: send(self(), {:mix_remote_part, part})
    send(self(), :mix_remote_parts_end)
  end

  # How the chunks of a `staged` batch were loaded (see `finish_chunks`), or `{:badrpc, ...}` if
  # the process loading them died.
  defp chunks_finished(%{tag: tag, finishing: ref}) do
    receive do
      {^tag, :finished, outcome} ->
        Process.demonitor(ref, [:flush])
        outcome

      {:DOWN, ^ref, :process, _, reason} ->
        {:badrpc, {:exit, reason}}
    end
  end

  # Once config.exs evaluated ahead is done, if it is being evaluated (see `config_evaluated`),
  # puts the ebins of a `staged` batch on the code path and loads the modules named in `eager`, as
  # `load` does: the prepared code if that is all of them (the usual case: a cold node has none of
  # the closure), a chunk as soon as it is prepared (from the first that could not be prepared
  # on, the rest is loaded as `load` loads, which says why, or loads one by one the modules with
  # an -on_load the tool did not flag); then the modules with an -on_load. The files of the modules
  # loaded from memory are written then, at low priority, while the call begins: written beside
  # the load, they held it up (2000 modules: 80-110 ms on two cores; the file operations run on the
  # dirty I/O threads, which the process's priority does not hold back).
  defp finish(staged, eager, on_load) do
    # Mix evaluates config.exs before the project's code is there: none of it is, before.
    config_evaluated()
    unless staged.told, do: send(staged.finisher, {:mix_remote_finish, eager == staged.closure})
    :ok = :code.add_pathsa(staged.ebins)
    later = :lists.filter(fn {m, _, _} -> :lists.member(m, on_load) end, staged.modules)

    loaded =
      on_load_reasons(fn ->
        case chunks_finished(staged) do
          :ok ->
            load_on_load(later)

          :dropped ->
            load(for({m, _, _} = module <- staged.modules, m in eager, do: module), on_load)

          {:unprepared, index} ->
            rest = staged.chunks |> Enum.drop(index) |> Enum.concat()
            with :ok <- load(rest, on_load), do: load_on_load(later)

          failed ->
            failed
        end
      end)

    write_files(staged.loaded_files, :low)

    case loaded do
      :ok -> {:ok, swept(staged.stale)}
      error -> error
    end
  end

  # How the load of the batch sent on stdin went (see `stage_and_load`), for the tool
  # (`mix-remote:loaded:<hex of the reply>`) and for the server, which holds the tool's
  # `after_load` requests until then.
  defp say_loaded(reply) do
    :io.put_chars(:standard_io, ["\nmix-remote:loaded:", :binary.encode_hex(:erlang.term_to_binary(reply)), ?\n])
    send(:mix_remote, {:mix_remote_loaded, reply})
  end

  # Stages a cold run's batch (see `stage`; `read_stdin` sends the parts as they come)
  # after `env` is put (a TMPDIR there places the run's directory, made first), with the config.exs
  # of `setup` evaluated meanwhile (`evaluate_ahead`); then loads it as the `load` request would
  # once `read_stdin` hands it the load frame's `[eager, on_load, apps, expected]` (usually there
  # before the staging is done), and says how that went. Staging runs at normal priority: at low,
  # it waited behind the processes code:prepare_loading/1 makes (one a module), and the chunks
  # after with it.
  defp stage_and_load(closure, on_load, env, setup) do
    staged =
      try do
        :lists.foreach(fn {name, value} -> true = :os.putenv(:unicode.characters_to_list(name), :unicode.characters_to_list(value)) end, :maps.to_list(env))
        {_dir, stale} = run_dir()
        mix_env_set(setup)
        if setup.config != [], do: evaluate_ahead(setup.config, setup.env)
        if Map.get(setup, :script, false), do: loaded_ahead(@evaluator_modules ++ @compiler_modules)
        {:ok, %{stage(closure, on_load) | stale: stale}}
      catch
        kind, reason -> {:badrpc, failure(kind, reason)}
      end

    receive do
      {:mix_remote_load, [eager, on_load, apps, expected]} ->
        reply =
          try do
            case staged do
              {:ok, staged} -> unexpected(eager, apps, expected) || finish(staged, eager, on_load)
              {:badrpc, _} = failed -> failed
            end
          catch
            kind, reason -> {:badrpc, failure(kind, reason)}
          end

        say_loaded(reply)
    end
  end

  # ---- Calling: the entry, eval, scripts, iex, the at_exit hooks ---------------------------------
  # The code run after the setup in a monitored process of its own (`in_process`, `monitored`), then
  # its `System.at_exit/1` hooks.

  # How code that raised, threw or exited ends the run, as Elixir's command line takes it: the
  # exits it takes for an end with a status (`:normal`, `:shutdown`, `{:shutdown, term}`: 0;
  # `{:shutdown, n}`: n, as the OS has a halt with it, 300 giving 44) as `{:stopped, status}`,
  # anything else as `{:failed, kind, text, missing}`, the failure formatted as that command line
  # (so `mix run`) formats it (see `formatted`), with the missing module of an `undef`.
  defp ended_by(:exit, reason, _stack) when reason in [:normal, :shutdown], do: {:stopped, 0}

  defp ended_by(:exit, {:shutdown, status}, _stack) when is_integer(status) and status >= 0,
    do: {:stopped, rem(status, 256)}

  defp ended_by(:exit, {:shutdown, other}, _stack) when not is_integer(other), do: {:stopped, 0}

  defp ended_by(kind, reason, stack) do
    stack = user_frames(stack)
    {:failed, kind, formatted(kind, reason, stack), missing_module(kind, reason, stack)}
  end

  # Runs the entry after applying `setup`; the result already formatted as `inspect/2` shows it, or
  # how it ended otherwise (see `ended_by`; a Mix exception as `{:failed, kind, text, nil, status}`,
  # the status Mix's command line exits with: see `mix_failure`).
  defp call(module, function, args, setup) do
    sweeper_running()

    try do
      case configure(setup) do
        :ok ->
          result = apply(module, function, args)
          {:ok, inspect(result, limit: :infinity, printable_limit: :infinity)}

        not_configured ->
          not_configured
      end
    catch
      kind, reason ->
        case mix_failure(kind, reason) do
          nil -> ended_by(kind, reason, __STACKTRACE__)
          {text, status} -> {:failed, kind, text, nil, status}
        end
    end
  end

  # The end of the call `pid` (monitored as `ref`; see `monitored`), with the monitors of the
  # applications it started that `start_permanent:` makes permanent (`masters`, their names by
  # monitor; see `start_apps`). One that goes down otherwise than by a stop (`Application.stop/1`:
  # `:normal`) kills the call, and is its failure, as a permanent application's exit halts `mix
  # run`'s node; that node runs no `System.at_exit/1` hook then, nor does this one
  # (`mix_remote_permanent_exit`, for `in_process`).
  defp awaited(pid, ref, masters) do
    receive do
      {:DOWN, ^ref, :process, _, {:mix_remote, result}} ->
        {result, masters}

      # Killed by a linked process's exit: Elixir's command line names the process it lost.
      {:DOWN, ^ref, :process, _, reason} ->
        {{:failed, :exit, exit_from(pid, reason), nil}, masters}

      {:mix_remote_permanent, ^pid, ack, started} ->
        watched = Map.new(started, fn {app, master} -> {Process.monitor(master), app} end)
        send(pid, {ack, :watched})
        awaited(pid, ref, Map.merge(masters, watched))

      {:DOWN, mref, :process, _, :normal} when is_map_key(masters, mref) ->
        awaited(pid, ref, Map.delete(masters, mref))

      {:DOWN, mref, :process, _, reason} when is_map_key(masters, mref) ->
        Process.exit(pid, :kill)
        Process.put(:mix_remote_permanent_exit, true)

        receive do
          {:DOWN, ^ref, :process, _, _} -> :ok
        end

        text =
          "** (exit) application #{masters[mref]} exited: #{inspect(reason)} " <>
            "(start_permanent: in mix.exs makes it permanent: mix run's node stops then)"

        {{:failed, :exit, text, nil}, Map.delete(masters, mref)}
    end
  end

  # Runs `fun` in a monitored process of its own, which ends with `{:mix_remote, result}`: a
  # linked process that crashes it is reported as an exit (the one path of `run`, `eval` and
  # `iex`); with `watch`, so is the exit of an application it starts permanent (see `awaited`).
  # The process is listed in `mix_remote_calls` meanwhile, for `stop_code`.
  defp monitored(fun, watch) do
    waiter = self()

    {pid, ref} =
      spawn_monitor(fn ->
        if watch, do: Process.put(:mix_remote_waiter, waiter)
        exit({:mix_remote, fun.()})
      end)

    true = :ets.insert(:mix_remote_calls, {pid})
    {result, masters} = awaited(pid, ref, %{})
    for {mref, _app} <- masters, do: Process.demonitor(mref, [:flush])
    :ets.delete(:mix_remote_calls, pid)
    result
  end

  # Runs a `System.at_exit/1` hook with `status` as Elixir's command line runs one: `:ok`, or how
  # it ended the run (see `ended_by`).
  defp hook_run(hook, status) do
    monitored(fn ->
      try do
        hook.(status)
        :ok
      catch
        kind, reason -> ended_by(kind, reason, __STACKTRACE__)
      end
    end, false)
  end

  # The `System.at_exit/1` hooks the code registered, run once it is done as Elixir's command line
  # (so `mix run`) runs them: newest first, each given the status the run ends with so far (0
  # after `result` `{:ok, _}`, n after `{:stopped, n}` or a Mix exception's `{:failed, kind, text,
  # nil, n}` (see `call`) or a config file's `{:config_failed, file, text, n}` (see
  # `evaluate_config`), 1 after another failure), until none is left
  # (a hook may register more). A hook that fails or exits with a status ends the run so instead;
  # a failure it replaces is written on standard error first, as that command line prints it
  # before its hooks run. Returns the run's outcome.
  defp at_exit(result) do
    case :elixir_config.get_and_put(:at_exit, []) do
      [] ->
        result

      hooks ->
        result =
          Enum.reduce(hooks, result, fn hook, result ->
            case hook_run(hook, status_so_far(result)) do
              :ok ->
                result

              ended ->
                case result do
                  {:failed, _kind, text, _missing} -> IO.write(:stderr, [text, ?\n])
                  {:failed, _kind, text, _missing, _status} -> IO.write(:stderr, [text, ?\n])
                  _ended -> :ok
                end
                ended
            end
          end)

        at_exit(result)
    end
  end

  # The status a run ends with after `result` (see `at_exit`).
  defp status_so_far({:ok, _}), do: 0
  defp status_so_far({:stopped, status}), do: status
  defp status_so_far({:failed, _kind, _text, _missing, status}), do: status
  defp status_so_far({:config_failed, _file, _text, status}), do: status
  defp status_so_far(_failed), do: 1

  # Returns once the relay has sent the tool every byte it has received so far: a reply sent then
  # reaches the tool after them, and the tool writes them before it acts on the reply.
  defp output_sent(relay) do
    ref = make_ref()
    send(relay, {:mix_remote_sync, self(), ref})

    receive do
      {^ref, :synced} -> :ok
    end
  end

  # Before the `System.at_exit/1` hooks run, when there are some and the tool prints the value
  # (`setup.value_ahead`): the value of `result` `{:ok, text}`, sent to the tool (the request's
  # `:mix_remote_tool`) once the output before it is, so that it shows before the hooks' output,
  # as `mix run -e 'IO.inspect(...)'` prints it. The outcome still comes with the reply.
  defp value_ahead(result, setup) do
    with {:ok, text} <- result,
         true <- Map.get(setup, :value_ahead, false),
         [_ | _] <- :elixir_config.get(:at_exit) do
      output_sent(Process.group_leader())
      send(Process.get(:mix_remote_tool), {:mix_remote_value, text})
    end
  end

  # Calls `module.function(args)` after `setup` in a monitored process of its own (see `call`),
  # then the `System.at_exit/1` hooks it registered (after `value_ahead`): the path of `run` and
  # `eval`.
  defp in_process(module, function, args, setup) do
    result = monitored(fn -> call(module, function, args, setup) end, true)

    if Process.get(:mix_remote_permanent_exit) do
      result
    else
      value_ahead(result, setup)
      at_exit(result)
    end
  end

  # Elixir code run as `mix run -e CODE` evaluates it (file "nofile"), or a script as `mix run FILE
  # ARGS` runs it (file its local path, for `__ENV__.file` and `__DIR__`), with `System.argv/0` set:
  # a function for `in_process` to call, so that code runs as an entry does. A script is compiled,
  # its top level too, as Code.require_file/2 compiles it for `mix run`: its loops run compiled, not
  # interpreted by erl_eval (a top-level `Enum.map` over 3,000,000 integers with a `fn`: 2.1 s
  # evaluated, 0.4 s compiled), and a failure has its frames (`FILE:LINE: (file)`). Compiling
  # drops the top level's value, which the run reports: it is kept by wrapping the script's forms
  # in a `:erlang.put/2` of it.
  defp evaluation(code, file, argv) do
    fn ->
      System.argv(argv)

      case file do
        "nofile" ->
          forms = code |> Code.string_to_quoted!(file: file, line: 1) |> flushing_halts()
          {value, _binding} = Code.eval_quoted(forms, [], file: file, line: 1)
          value

        script ->
          key = {:mix_remote, :script_value}
          forms = code |> Code.string_to_quoted!(file: script, line: 1) |> flushing_halts()
          Code.compile_quoted({{:., [], [:erlang, :put]}, [], [key, forms]}, script)
          :erlang.erase(key)
      end
    end
  end

  # Evaluated code's and a script's `System.halt/0,1` and `:erlang.halt/0,1,2` made calls through
  # the relay (`mix_remote_relay:flushed_apply/3`), which halts once the tool has written the
  # output printed before, as `mix run`'s halt flushes its stdout; a shipped module's halts are
  # redirected as it ships (src/build/beam/halts.rs). `System` stays an alias, resolved where it
  # is written (an `alias Other.System` there is still obeyed).
  defp flushing_halts(forms) do
    Macro.prewalk(forms, fn
      {{:., dot, [{:__aliases__, _, [:System]} = mod, :halt]}, meta, args} when length(args) <= 1 ->
        {{:., dot, [:mix_remote_relay, :flushed_apply]}, meta, [mod, :halt, args]}

      {{:., dot, [:erlang, :halt]}, meta, args} when length(args) <= 2 ->
        {{:., dot, [:mix_remote_relay, :flushed_apply]}, meta, [:erlang, :halt, args]}

      form ->
        form
    end)
  end

  # IEx in this process, the relay its terminal, until its input ends: the prompt
  # `iex(NAME)N>` (`...(NAME)N>` for the further lines of an expression), colours if the tool's
  # terminal has them, no .iex.exs of the server's user, and this process registered as
  # `mix_remote_iex` for `expand` and `interrupt`.
  defp shell(name, ansi) do
    {:ok, _} = Application.ensure_all_started(:iex)
    if ansi, do: Application.put_env(:elixir, :ansi_enabled, true)
    prompt = "%prefix(#{name})%counter>"

    # Elixir 1.14 to 1.18 have a continuation prompt of their own; later ones derive it.
    continuation =
      if function_exported?(IEx.Config, :alive_continuation_prompt, 0),
        do: [alive_continuation_prompt: prompt],
        else: []

    IEx.configure([alive_prompt: prompt] ++ continuation)
    Process.register(self(), :mix_remote_iex)

    try do
      IEx.Server.run(prefix: "iex", dot_iex_path: "", dot_iex: "", on_eof: :stop_evaluator)
    after
      # IEx links itself to its group leader: this process's exit must not take the relay along.
      Process.unlink(Process.group_leader())
    end
  end

  # ---- Serving the tool's requests ---------------------------------------------------------------
  # The request server (`serve`) and the requests it dispatches, each in a process of its own.

  # The requests the tool makes (src/remote/boot.rs, `Request`), by name: each a function of the
  # request's arguments, which `dispatch` applies.
  defp requests do
    %{
      info: &describe/1,
      load: &load_request/5,
      run: &in_process/4,
      eval: &eval_request/4,
      iex: &iex_request/3,
      expand: &expand/1,
      interrupt: &interrupt/1
    }
  end

  # `batch` staged and its `eager` modules loaded, unless something is `unexpected` (then nothing
  # is written or loaded).
  defp load_request(batch, eager, on_load, apps, expected) do
    with nil <- unexpected(eager, apps, expected) do
      parts_sent(batch)
      finish(stage(eager, on_load), eager, on_load)
    end
  end

  # Elixir code as `mix run` evaluates it, called by `in_process` as the entry (`run`) is.
  defp eval_request(code, file, argv, setup) do
    # A script's compilers load beside the setup (a cold node's load with its batch already).
    if file != "nofile", do: loaded_ahead(@evaluator_modules ++ @compiler_modules)
    in_process(:erlang, :apply, [evaluation(code, file, argv), []], setup)
  end

  # An IEx session (see `shell`) after the same setup as `run`, in the same kind of process; no
  # at_exit hooks after it, as `iex -S mix` runs none (it ends by halting).
  defp iex_request(name, ansi, setup) do
    # Not watched: IEx's server is linked to the relay, which a kill of it would take down.
    monitored(fn -> call(:erlang, :apply, [&shell/2, [name, ansi]], setup) end, false)
  end

  # IEx's own completion of `text`, the line up to the cursor, in the session (its variables,
  # aliases and imports too): {:yes | :no, hint, entries}, texts as binaries.
  defp expand(text) do
    shell = Process.whereis(:mix_remote_iex)
    {kind, hint, entries} = IEx.Autocomplete.expand(Enum.reverse(String.to_charlist(text)), shell)
    {kind, List.to_string(hint), Enum.map(entries, &List.to_string/1)}
  end

  # Interrupts the session's evaluation as IEx's break does: IEx kills it, says
  # `** (EXIT) interrupted` and prompts again; with `newline` (the tool's terminal echoed ^C
  # after the evaluation's output), a newline first, so that IEx's words start a row: asked of
  # the relay (this process's group leader, IEx's too) before the kill, without waiting for its
  # answer, which a relay held up by a slow terminal would delay. False while no session runs
  # yet (the push, the configuration or the applications' start): the tool then ends the run.
  defp interrupt(newline) do
    case Process.whereis(:mix_remote_iex) do
      nil ->
        false

      pid ->
        if newline do
          send(Process.group_leader(), {:io_request, self(), make_ref(), {:put_chars, :unicode, "\n"}})
        end

        Process.exit(pid, :interrupt)
    end
  end

  # The node's own output is all out: what Logger's handlers still hold is written to stdout, then
  # `mix-remote:done`, after which the tool need not wait for anything but the reply.
  defp settled do
    if Process.whereis(Logger), do: Logger.flush()

    for id <- :logger.get_handler_ids(),
        match?({:ok, %{module: :logger_std_h}}, :logger.get_handler_config(id)),
        do: :logger_std_h.filesync(id)

    IO.puts(:user, "\nmix-remote:done")
  end

  # Runs request `op` for the tool's process `from` in a process of its own (which has the tool's
  # pid as `:mix_remote_tool`), whose group leader is the relay; replies once the output it made is
  # sent (and, after run/eval/iex, the node's own). A `load` that loaded then lets the `after_load`
  # requests held for it go (a warm run's call goes with its load, a round trip sooner), after its
  # reply: the tool holds their output until it has heard the push is over, and the load's own
  # output is synced before theirs can fill the relay's window. One that did not leaves them held:
  # the tool then asks what the node has and loads again, or ends the run.
  defp dispatch(relay, {tool_pid, ref}, op, args) do
    spawn(fn ->
      Process.group_leader(self(), relay)
      Process.put(:mix_remote_tool, tool_pid)

      reply =
        try do
          elixir_started()
          apply(Map.fetch!(requests(), op), args)
        catch
          kind, reason -> {:badrpc, failure(kind, reason)}
        end

      # After Logger's flush: a handler of its writing to standard_error writes through the relay.
      if op in [:run, :eval, :iex], do: settled()
      output_sent(relay)
      # Not the end of code the node stopped as the tool went (see `tool_gone`), nor of code that
      # stopped the node itself (`System.stop/1` returns at once while init stops it): the node's
      # halt, with the status given, ends the run, as it ends `mix run`.
      stopping = op in [:run, :eval] and match?({:stopping, _}, :init.get_status())
      unless Process.whereis(:mix_remote_going) || stopping, do: send(tool_pid, {ref, reply})
      if op == :load and match?({:ok, _}, reply), do: send(:mix_remote, {:mix_remote_loaded, reply})
    end)
  end

  # A request `{:after_load, [op, args]}` is `op` once the batch is loaded, sent on stdin (see
  # `read_stdin`) or by a `load` request that went before it: the tool sends it without waiting to
  # read `mix-remote:loaded` or the load's reply. If a stdin load failed, the reply is `:not_loaded`
  # (the tool reads why from the line).
  defp after_load(relay, {tool_pid, ref} = from, [op, args], loaded) do
    case loaded do
      {:ok, _stale} -> dispatch(relay, from, op, args)
      _failed -> send(tool_pid, {ref, :not_loaded})
    end
  end

  # The request server's loop (the process registered as `mix_remote`, see `serve_requests`).
  # The relay starts with the first request, which names the tool's pid. The size of the tool's
  # terminal comes here and goes to the relay (one that came before the relay, once it is started).
  # `loaded` is the stdin load's reply (or a `load` request's that loaded) once there is one;
  # `waiting`, the `after_load` requests that came before it.
  defp serve(state) do
    receive do
      {:mix_remote_geometry, _cols, _rows} = size ->
        if state.relay, do: send(state.relay, size)
        serve(%{state | geometry: size})

      {:mix_remote_loaded, loaded} ->
        for {from, args} <- Enum.reverse(state.waiting), do: after_load(state.relay, from, args, loaded)
        serve(%{state | loaded: loaded, waiting: []})

      {:"$gen_call", {tool_pid, _ref} = from, {op, args}} ->
        relay = state.relay || :mix_remote_relay.start(tool_pid)
        if state.geometry, do: send(relay, state.geometry)
        state = %{state | relay: relay, geometry: nil}

        cond do
          op != :after_load ->
            dispatch(relay, from, op, args)
            serve(state)

          state.loaded ->
            after_load(relay, from, args, state.loaded)
            serve(state)

          true ->
            serve(%{state | waiting: [{from, args} | state.waiting]})
        end
    end
  end

  # ---- Distribution's port mapper ----------------------------------------------------------------
  # Named by `-epmd_module mix_remote_boot` in templates/boot.sh, so these functions are public.
  # Distribution asks it where the tool's node is: at the reverse forward's port on the server's
  # loopback, which the start line reads from stdin (`:mix_remote_port`, see
  # templates/boot_start.erl) once the node runs. The launcher need not wait for the port before it
  # starts the node: the tool learns it only as the session opens, a round trip before the node
  # could have it. No EPMD is asked or started; the node registers nowhere (it listens nowhere).

  # Distribution's supervisor starts nothing for it.
  def start_link, do: :ignore

  # Where a node is: always the tool's, as the one node this node ever connects to.
  def address_please(_name, _host, _family) do
    {:ok, {127, 0, 0, 1}, :persistent_term.get(:mix_remote_port), 5}
  end

  def port_please(name, host), do: port_please(name, host, :infinity)
  def port_please(_name, _host, _timeout), do: {:port, :persistent_term.get(:mix_remote_port), 5}

  def names(_host), do: {:error, :address}

  # ---- Main: the boot's sequence -----------------------------------------------------------------
  # `main/1`, which the start line calls, and the steps it takes in turn.

  # The boot, in the node's main process (the start line's, which owns the stdin port): a watch on
  # the session's sshd (see `orphaned`), the tables of the processes `halt` and `stop_code` stop,
  # the relay's beam, the connection back started (see `connect_back`) while the node says what it
  # is and reads its cookie (see `read_after_preloads`), the request server, then the rest of
  # stdin (see `read_stdin`) until its end halts the node. `tick_ms`: the tick interval of the
  # node's net_ticktime (templates/boot_start.erl).
  def main(tick_ms) do
    with ppid when is_binary(ppid) <- parent(), do: spawn(fn -> orphaned(ppid) end)
    :ets.new(:mix_remote_writers, [:public, :named_table])
    :ets.new(:mix_remote_calls, [:public, :named_table])
    # The relay's beam: loaded by the request server (below), once the connection back
    # has begun.
    relay_beam = read_frame()
    connector = spawn(fn -> connect_back(tick_ms) end)
    {cookie, said} = read_after_preloads(true)
    cookie = :erlang.binary_to_atom(cookie)
    tool = :erlang.binary_to_atom(read_frame())
    server = spawn(fn -> serve_requests(relay_beam) end)
    Process.register(server, :mix_remote)

    # The node connects back once it has said what it is: the line leaves before the connection
    # starts, and the handshake takes a round trip more, so the tool has it by the time the node is
    # up and need not ask instead (before, a node slow to print lost that race now and then, and the
    # run made its own `info` request). The line is written while this process reads the cookie.
    receive do
      {:mix_remote_said, ^said} -> send(connector, {:connect, cookie, tool})
    end

    # A process's crash that no link takes is reported by the emulator with the node's name, since
    # this node is alive, where `mix run`'s is not: "Process #PID<0.93.0> on node
    # :mix_remote_5f0c...@localhost raised an exception" (Logger's words). Reported as on a node
    # that is not alive, as under `mix run`: "Process #PID<0.93.0> raised an exception". A filter of
    # the primary config, put before Logger starts, which keeps it across its restarts.
    :logger.add_primary_filter(
      :mix_remote_crash_here,
      {fn
         %{msg: {~c"Error in process ~p on node ~p with exit value:~n~p~n", [pid, here, reason]}} =
             event,
         _extra
         when here == node() ->
           %{event | msg: {~c"Error in process ~p with exit value:~n~p~n", [pid, reason]}}

         event, _extra ->
           event
       end, []}
    )

    # Logger starts meanwhile, as `elixir` would have started it before the program ran (what the
    # node logs before the call is formatted by Elixir), at low priority: the connection and the
    # batch come first.
    spawn(fn ->
      Process.flag(:priority, :low)
      Application.ensure_all_started(:logger)
    end)

    read_stdin(nil)
  end

  # Before it reads its cookie, the node says what it is and has, as `info` would answer:
  # `mix-remote:info:<hex of {Worked, Info}>`; the run then need not ask (and a cold run sends its
  # batch at once). A spare node of a warm session (src/remote/agent) has started distribution
  # (see below) as it says that; before its cookie it may be given a previous run's batch to load
  # ahead, as `preload:<[batch, eager, on_load] in the external term format>` frames, and says that
  # again after each, with whether that preload worked (the agent hands the last one to the run).
  # The code a later preload replaces is purged at once, so the run can replace it again; a preload
  # that fails leaves the run to load what it needs. Another process says it, and then starts the
  # elixir application, while this one reads the next frame at once: a cold run's cookie is there
  # already, and the connection back starts 10-30 ms sooner. Returns the frame after the preloads
  # and the tag the last of those processes sends this one once it has said it: the node connects
  # back only then (below).
  # Each `mix-remote:` line the node writes on its stdout starts with a newline: output left
  # without its own (an -on_load's `IO.write`, a Logger format without one) would otherwise hide
  # the marker behind it (the tool takes markers only at the start of a line, and drops blank
  # lines).
  defp read_after_preloads(worked) do
    {main, said} = {self(), make_ref()}

    spawn(fn ->
      info = :binary.encode_hex(:erlang.term_to_binary({worked, describe([])}))
      :io.put_chars(:standard_io, ["\nmix-remote:info:", info, ?\n])
      send(main, {:mix_remote_said, said})
      loaded_ahead(@started_modules)
      elixir_started()
    end)

    case awaited_frame(:erlang.port_info(:erlang.get(:mix_remote_stdin), :input)) do
      "preload:" <> data ->
        # A spare (idle until its run) also loads what evaluating config files needs: a warm run
        # evaluates its config.exs as it begins, not ahead as a cold one does.
        loaded_ahead(@evaluator_modules)

        worked =
          try do
            [batch, eager, on_load] = :erlang.binary_to_term(data)
            parts_sent(batch)
            loaded = finish(stage(eager, on_load), eager, on_load)
            Enum.each(eager, &:code.purge/1)
            match?({:ok, _}, loaded)
          catch
            _kind, _reason -> false
          end

        read_after_preloads(worked)

      line ->
        {line, said}
    end
  end

  # Distribution starts in a process of its own, this one (the start line started it already: this
  # waits for that), while the main one goes on to the batch, the longer part of a cold boot. It listens
  # nowhere, and has no cookie yet: nothing can reach it. Its name is dynamic (`undefined` on the
  # host of the tool's node): the tool's node names it as it connects. A short net_ticktime (the
  # tick interval is a quarter of it): the node halts soon after a dead link, when the tool's node
  # stops ticking. Then, given the cookie and the tool's name, the process sets the cookie for the
  # tool's node, watches for the tool's node to go (the node then halts), and connects back, over
  # the connection a cold node's start line opened ahead (templates/mix_remote_dist.erl). That may
  # take longer than OTP's 7 s default setup time while the node loads a large batch on a busy
  # server: templates/boot.sh sets 120 s (OTP's largest), and the tool's --boot-timeout is the
  # limit that counts. Nothing links to this process: should it fail before connecting, it says why
  # and halts the node, which would otherwise wait for the tool's boot limit.
  defp connect_back(tick_ms) do
    try do
      case :net_kernel.start([:undefined@localhost, :shortnames, tick_ms]) do
        {:ok, _} ->
          :ok

        # Started by the start line (templates/boot_start.erl): this call waited for it.
        {:error, {:already_started, _}} ->
          :ok

        error ->
          IO.puts(:stderr, "mix-remote: distribution did not start: #{inspect(error)}")
          halt(1)
      end

      # The handshake's module, loaded before the connection starts rather than during it,
      # behind the modules loaded ahead then (see `@started_modules`).
      {:module, _} = :code.ensure_loaded(:dist_util)

      receive do
        {:connect, cookie, tool} ->
          :erlang.set_cookie(tool, cookie)
          connecting = self()

          {_watcher, watching} =
            spawn_monitor(fn ->
              :ok = :net_kernel.monitor_nodes(true, node_type: :all)
              send(connecting, :watching)

              receive do
                {:nodedown, ^tool, _info} -> tool_gone()
              end
            end)

          receive do
            :watching -> Process.demonitor(watching, [:flush])
            {:DOWN, ^watching, :process, _, reason} -> exit(reason)
          end

          # A second try, should the connection opened ahead have been lost (see
          # templates/mix_remote_dist.erl): that one is opened then.
          unless Node.connect(tool) == true or Node.connect(tool) == true do
            IO.puts(:stderr, "mix-remote: the remote node could not connect back to the tool")
            halt(1)
          end
      end
    catch
      kind, reason ->
        banner = Exception.format_banner(kind, reason, __STACKTRACE__)
        IO.puts(:stderr, "mix-remote: the remote node could not connect back to the tool: " <> banner)
        halt(1)
    end
  end

  # The request server, registered as `mix_remote` (see `serve`): it loads the relay first
  # (`relay_beam`), and requests wait in its mailbox meanwhile.
  defp serve_requests(relay_beam) do
    case :code.load_binary(:mix_remote_relay, ~c"mix_remote_relay", relay_beam) do
      {:module, _} ->
        serve(%{relay: nil, geometry: nil, loaded: nil, waiting: []})

      error ->
        IO.puts(:stderr, "mix-remote: the output relay did not load: #{inspect(error)}")
        halt(1)
    end
  end

  # The rest of stdin, until its end halts the node. A cold run's batch comes in two steps. The
  # first as soon as the tool has it: the frame `batch:<count>:<[closure, on_load, env, setup] in
  # the external term format>`, then the batch's `count` parts, a frame each, staged by a process
  # of its own as they come (`stage_and_load`, which `halt` stops first). Then, once the tool has
  # heard what the node has, the frame `load:<[eager, on_load, apps, expected] in the external
  # term format>`, read while the batch is staged and handed to that process.
  defp read_stdin(stager) do
    case read_frame() do
      "batch:" <> data ->
        [count, args] = :binary.split(data, ":")
        [closure, on_load, env, setup] = :erlang.binary_to_term(args)
        {pid, _ref} = writing(fn -> stage_and_load(closure, on_load, env, setup) end)
        part = fn _ -> send(pid, {:mix_remote_part, read_frame()}) end
        :lists.foreach(part, :lists.seq(1, :erlang.binary_to_integer(count)))
        send(pid, :mix_remote_parts_end)
        read_stdin(pid)

      "load:" <> data ->
        load = :erlang.binary_to_term(data)

        if stager,
          do: send(stager, {:mix_remote_load, load}),
          else: say_loaded({:badrpc, {:error, :no_batch}})

        read_stdin(nil)

      _other ->
        read_stdin(stager)
    end
  end
end
