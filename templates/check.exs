# mix-remote check program, evaluated by the elixir that templates/check.sh starts. It prints the
# server's OTP release, Elixir version and full OTP version ("-" when its OTP records none), then
# the marker the tool waits for. It runs nothing of the project.
otp = System.otp_release()
file = Path.join([:code.root_dir(), "releases", otp, "OTP_VERSION"])

full =
  case File.read(file) do
    {:ok, text} -> String.trim(text)
    _ -> "-"
  end

IO.puts("mix-remote-versions #{otp} #{System.version()} #{full}")
IO.puts("mix-remote:checked")
