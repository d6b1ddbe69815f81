# Source of the MD5 test vector Elixir.MixRemote.Md5Vector.beam (compiled with `elixirc`).
# A closure gives it a FunT chunk, the map and string literals a LitT chunk.
defmodule MixRemote.Md5Vector do
  @moduledoc "A module whose MD5 beam_lib computed, for wire.rs's tests."

  @doc "Adds `n` to every element."
  def add_all(list, n), do: Enum.map(list, fn x -> x + n end)

  def describe(%{name: name}), do: "named #{name}"
  def describe(_), do: %{kind: :unknown, tags: ["a", "b"]}
end
