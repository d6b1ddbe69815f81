# Where runs put their directories, and those earlier runs left there. Shared by the boot and
# check programs (in place of @RUN_DIRS@): closures bound in turn, as the check program is a
# script the server evaluates (templates/check.exs, which defines no module, so nothing is
# compiled there), and the boot program's module binds them in its `run_dirs/0`
# (templates/boot.exs), which returns `tmp_dir`, `run_places`, `host_tag` and `stale_runs`.

# Whether a NIF in priv/ might not map from directory `dir` (of st_dev `device`): its mount is
# noexec, or `mountinfo` (the text of /proc/self/mountinfo) does not show which mount it is on
# (the deepest mount point above the path is of another device: a symlink on the path, a mount
# hidden by a later one). Mount points come escaped there (`\040` for a space...), and of two on
# one point the one mounted on the other is on top, whichever is listed first. Without a
# mountinfo (off Linux) it cannot tell: false, as for /tmp. Erlang's functions only (see
# `tmp_dir`).
noexec = fn dir, device, mountinfo ->
  escape = fn {char, code}, path -> :binary.replace(path, char, code, [:global]) end
  codes = [{"\\", "\\134"}, {" ", "\\040"}, {"\t", "\\011"}, {"\n", "\\012"}]
  path = :lists.foldl(escape, :unicode.characters_to_binary(dir), codes)
  above = fn point -> point == "/" or point == path or :binary.longest_common_prefix([path, point <> "/"]) == byte_size(point) + 1 end

  # st_dev's major and minor numbers, as glibc's makedev/3 packs them.
  bits = fn shift, mask -> :erlang.band(:erlang.bsr(device, shift), mask) end
  major = :erlang.bor(bits.(8, 0xFFF), bits.(32, :erlang.bnot(0xFFF)))
  minor = :erlang.bor(bits.(0, 0xFF), bits.(12, :erlang.bnot(0xFF)))
  numbers = :erlang.iolist_to_binary([:erlang.integer_to_binary(major), ?:, :erlang.integer_to_binary(minor)])

  deepest = fn line, {best, best_id, _, _} = found ->
    case :binary.split(line, " ", [:global]) do
      [_id, parent, _numbers, _root, ^best, _options | _] when parent != best_id -> found
      [id, _parent, numbers, _root, point, options | _] ->
        if byte_size(point) >= byte_size(best) and above.(point), do: {point, id, numbers, options}, else: found

      _other ->
        found
    end
  end

  case :lists.foldl(deepest, {"", nil, nil, nil}, :binary.split(mountinfo, "\n", [:global])) do
    {"", _, _, _} -> false
    {_, _, ^numbers, options} -> :lists.member("noexec", :binary.split(options, ",", [:global]))
    _another_device -> true
  end
end

# The directory runs put their directories in: TMPDIR, TEMP or TMP when set to a writable
# directory (as System.tmp_dir!/0 finds it: a `remote_env` or the server's own setting places
# it), else the user's runtime directory (XDG_RUNTIME_DIR: the memory filesystem systemd gives
# each login) unless a NIF might not map from it (`noexec`), else /tmp, else the working
# directory. In memory, a run's files cost far less: on the benchmark's server (ext4 on a virtual
# disk) writing 258 small files took 73-86 ms, in memory 5-15, and a cold Ecto job ran 44-81 ms
# sooner side by side. Erlang's functions only: it is on a cold run's way to the load, where each
# Elixir module loaded costs 0.5-5 ms.
tmp_dir = fn ->
  writable = fn dir ->
    case :file.read_file_info(dir) do
      {:ok, {:file_info, _, :directory, access, _, _, _, _, _, device, _, _, _, _}}
      when access in [:read_write, :write] ->
        {:ok, device}

      _not ->
        false
    end
  end

  mountinfo = fn ->
    case :file.read_file(~c"/proc/self/mountinfo") do
      {:ok, text} -> text
      _none -> ""
    end
  end

  runtime = fn ->
    with dir when is_list(dir) <- :os.getenv(~c"XDG_RUNTIME_DIR"),
         {:ok, device} <- writable.(dir),
         false <- noexec.(dir, device, mountinfo.()) do
      [dir]
    else
      _unusable -> []
    end
  end

  set = fn name -> with dir when is_list(dir) <- :os.getenv(name), do: {true, dir} end
  first = fn dirs -> :lists.search(&(writable.(&1) != false), dirs) end

  found =
    with false <- first.(:lists.filtermap(set, [~c"TMPDIR", ~c"TEMP", ~c"TMP"])),
         [] <- runtime.() do
      first.([~c"/tmp", elem(:file.get_cwd(), 1)])
    else
      [dir] -> {:value, dir}
      value -> value
    end

  case found do
    {:value, dir} -> :unicode.characters_to_binary(dir)
    false -> raise "no writable temporary directory"
  end
end

# The directories where runs may have left theirs: `tmp` (see `tmp_dir`), and /tmp too when that
# is the runtime directory, since releases before it put them in /tmp then.
run_places = fn tmp ->
  case :os.getenv(~c"XDG_RUNTIME_DIR") do
    dir when is_list(dir) -> if :unicode.characters_to_binary(dir) == tmp, do: [tmp, "/tmp"], else: [tmp]
    false -> [tmp]
  end
end

# This machine's part of a run directory's name: its host name hashed, 8 hex digits. Servers
# that share a directory (a home on NFS where `remote_env` puts TMPDIR) then tell their own
# runs' directories from the others', whose node pids mean nothing here.
host_tag = fn ->
  # As the kernel read it at boot (`:inet.gethostname/0` opens a socket to ask again).
  host = :inet_db.gethostname()
  hex = :erlang.integer_to_binary(:erlang.phash2(host, 0x100000000) + 0x100000000, 16)
  :erlang.list_to_binary(for <<c <- binary_part(hex, 1, 8)>>, do: c + if(c >= ?A, do: 32, else: 0))
end

# Directories that earlier runs on this machine left in `tmp` (the node was killed before it
# could remove its own): named `mix-remote-run-<OS pid>-<host tag>-<random>` by
# templates/boot.exs (before the host tag, `mix-remote-run-<OS pid>-<random>`, still swept),
# owned by `uid`, whose node's OS process is gone. The patterns are compiled when they run, not
# with the boot program's beam: a compiled regex is bound to the PCRE of the OTP that made it.
stale_runs = fn tmp, uid ->
  ours = Regex.compile!("^mix-remote-run-(\\d+)-" <> host_tag.() <> "-[0-9a-f]+$")
  untagged = Regex.compile!("^mix-remote-run-(\\d+)-[0-9a-f]+$")

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
      [_, pid] <- [Regex.run(ours, name) || Regex.run(untagged, name)],
      path = Path.join(tmp, name),
      match?({:ok, %File.Stat{type: :directory, uid: ^uid}}, File.lstat(path)),
      not alive.(pid),
      do: path
end
