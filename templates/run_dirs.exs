# Where runs put their directories, and those earlier runs left there. Shared by the boot and
# check programs (in place of @RUN_DIRS@).

# Whether `dir` lies on a filesystem mounted noexec, from which no NIF in priv/ can be mapped,
# by `mountinfo` (the text of /proc/self/mountinfo, "" where there is none, as off Linux): the
# options of the deepest mount point above `dir`, the last mounted of equals.
noexec = fn dir, mountinfo ->
  dir = :unicode.characters_to_binary(dir)
  above = fn point -> point == "/" or point == dir or :binary.longest_common_prefix([dir, point <> "/"]) == byte_size(point) + 1 end

  deepest = fn line, {depth, _} = best ->
    case :binary.split(line, " ", [:global]) do
      [_id, _parent, _device, _root, point, options | _] ->
        if byte_size(point) >= depth and above.(point), do: {byte_size(point), options}, else: best

      _other ->
        best
    end
  end

  {_, options} = :lists.foldl(deepest, {-1, ""}, :binary.split(mountinfo, "\n", [:global]))
  :lists.member("noexec", :binary.split(options, ",", [:global]))
end

# The directory runs put their directories in: TMPDIR, TEMP or TMP when set (as System.tmp_dir!/0
# finds it: a `remote_env` or the server's own setting places it), else the user's runtime
# directory (XDG_RUNTIME_DIR: the memory filesystem systemd gives each login) unless it is mounted
# noexec, else /tmp, else the working directory; the first that is a directory this user can
# write. In memory, a run's files cost far less: on the benchmark's server (ext4 on a virtual
# disk) writing 258 small files took 73-86 ms, in memory 5-15 (the Ecto job of `cargo xtask
# bench-ecto` was 140 ms faster). Erlang's functions only: it is on a cold run's way to the load,
# where each Elixir module loaded costs 0.5-5 ms.
tmp_dir = fn ->
  writable = fn dir ->
    match?({:ok, {:file_info, _, :directory, access, _, _, _, _, _, _, _, _, _, _}}
           when access in [:read_write, :write], :file.read_file_info(dir))
  end

  set = fn name -> with dir when is_list(dir) <- :os.getenv(name), do: {true, dir} end

  case :lists.search(writable, :lists.filtermap(set, [~c"TMPDIR", ~c"TEMP", ~c"TMP"])) do
    {:value, dir} ->
      :unicode.characters_to_binary(dir)

    false ->
      mountinfo = fn ->
        case :file.read_file(~c"/proc/self/mountinfo") do
          {:ok, text} -> text
          _none -> ""
        end
      end

      runtime = for dir <- [:os.getenv(~c"XDG_RUNTIME_DIR")], is_list(dir), writable.(dir), not noexec.(dir, mountinfo.()), do: dir

      case :lists.search(writable, runtime ++ [~c"/tmp", elem(:file.get_cwd(), 1)]) do
        {:value, dir} -> :unicode.characters_to_binary(dir)
        false -> raise "no writable temporary directory"
      end
  end
end

# Directories that earlier runs left in `tmp` (the node was killed before it could remove its
# own): named `mix-remote-run-<OS pid>-<random>` by templates/boot.exs, owned by `uid`, whose
# node's OS process is gone. The pattern is compiled when it runs, not with the boot program's
# beam: a compiled regex is bound to the PCRE of the OTP that made it.
stale_runs = fn tmp, uid ->
  pattern = Regex.compile!("^mix-remote-run-(\\d+)-[0-9a-f]+$")

  alive = fn pid ->
    if File.dir?("/proc/self") do
      File.dir?("/proc/" <> pid)
    else
      match?({_, 0}, System.cmd("kill", ["-0", pid], stderr_to_stdout: true))
    end
  end

  names =
    case File.ls(tmp) do
      {:ok, names} -> names
      _error -> []
    end

  for name <- names,
      [_, pid] <- [Regex.run(pattern, name)],
      path = Path.join(tmp, name),
      match?({:ok, %File.Stat{type: :directory, uid: ^uid}}, File.lstat(path)),
      not alive.(pid),
      do: path
end
