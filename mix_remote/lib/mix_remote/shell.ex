defmodule MixRemote.Shell do
  @moduledoc """
  Mix's shell while the `remote.*` tasks compile. The runner points the group leader at stderr
  then, so Mix's messages and compile errors go there, as cargo's do, and stdout carries only what
  mix-remote prints (a result, `--json` events); questions are asked on the terminal (`:user`).
  """
  @behaviour Mix.Shell

  @impl true
  defdelegate info(message), to: Mix.Shell.IO

  @impl true
  defdelegate error(message), to: Mix.Shell.IO

  @impl true
  defdelegate print_app(), to: Mix.Shell.IO

  @impl true
  defdelegate cmd(command, options \\ []), to: Mix.Shell.IO

  @impl true
  def prompt(message), do: on_user(fn -> Mix.Shell.IO.prompt(message) end)

  @impl true
  def yes?(message, options \\ []), do: on_user(fn -> Mix.Shell.IO.yes?(message, options) end)

  defp on_user(ask) do
    group_leader = Process.group_leader()
    Process.group_leader(self(), Process.whereis(:user))

    try do
      ask.()
    after
      Process.group_leader(self(), group_leader)
    end
  end
end
