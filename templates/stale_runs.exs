# Directories that earlier runs left in `tmp` (the node was killed before it could remove its
# own): named `mix-remote-run-<OS pid>-<random>` by templates/boot.exs, owned by `uid`, whose
# node's OS process is gone. Shared by the boot and check programs (in place of @STALE_RUNS@).
# The pattern is compiled when it runs, not with the boot program's beam: a compiled regex is
# bound to the PCRE of the OTP that made it.
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
