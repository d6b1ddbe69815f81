# mix-remote check program, evaluated by the elixir that templates/check.sh starts, with `apps`
# bound to the names of the applications the build needs of the server. It prints the server's
# OTP release, Elixir version and full OTP version ("-" when its OTP records none), which of
# `apps` it lacks, what its ERTS runs on (for the build's native code), how many directories
# runs that were killed left where runs put them (and where that is), or, when there is no
# directory a run could put its own in, which it tried, then the marker the tool waits for. It
# runs nothing of the project and changes nothing.
otp = System.otp_release()
file = Path.join([:code.root_dir(), "releases", otp, "OTP_VERSION"])

full =
  case File.read(file) do
    {:ok, text} -> String.trim(text)
    _ -> "-"
  end

IO.puts("mix-remote-versions #{otp} #{System.version()} #{full}")

# As a run's node looks for them (templates/boot.exs, `missing_apps`).
missing = Enum.filter(apps, &match?({:error, _}, :code.lib_dir(String.to_atom(&1))))
IO.puts("mix-remote-missing" <> Enum.map_join(missing, &(" " <> &1)))
arch = :erlang.system_info(:system_architecture)
IO.puts("mix-remote-machine #{arch} #{:erlang.system_info({:wordsize, :external})}")

@RUN_DIRS@

uid =
  case File.stat("/proc/self") do
    {:ok, %File.Stat{uid: uid}} -> uid
    _error -> System.cmd("id", ["-u"]) |> elem(0) |> String.trim() |> String.to_integer()
  end

# A run makes its directory where `tmp_dir` says, or fails to load ("no writable temporary
# directory"): so does the check, naming the places `tmp_dir` looks at.
try do
  tmp_dir.()
rescue
  _none_writable ->
    set = for name <- ~w(TMPDIR TEMP TMP XDG_RUNTIME_DIR), dir = System.get_env(name), do: "#{name}=#{dir}"

    cwd =
      case File.cwd() do
        {:ok, dir} -> [dir]
        _gone -> []
      end

    IO.puts("mix-remote-no-run-dir tried #{Enum.join(Enum.uniq(set ++ ["/tmp" | cwd]), ", ")}")
else
  tmp ->
    places = run_places.(tmp)
    stale = Enum.flat_map(places, &stale_runs.(&1, uid))
    IO.puts("mix-remote-stale #{length(stale)} #{Enum.join(places, " or ")}")
end

IO.puts("mix-remote:checked")
