defmodule MixRemote.MixProject do
  use Mix.Project

  # Mix tasks that compile the project and hand over to the mix-remote binary; no dependencies.
  def project do
    [app: :mix_remote, version: "0.1.0", elixir: "~> 1.14", deps: []]
  end

  def application, do: [extra_applications: []]
end
