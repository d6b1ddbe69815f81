# Test vectors: the Elixir shapes a project's closure must follow.

# A struct.
defmodule VecElixir.Point do
  defstruct x: 0, y: 0
end

# A protocol of the project, implemented for the struct.
defprotocol VecElixir.Shape do
  def area(shape)
end

defimpl VecElixir.Shape, for: VecElixir.Point do
  def area(_point), do: 0
end

# An implementation of a standard-library protocol.
defimpl String.Chars, for: VecElixir.Point do
  def to_string(%VecElixir.Point{x: x, y: y}), do: "(#{x}, #{y})"
end

# Two behaviours and a module implementing both: each @behaviour is its own Attr entry.
defmodule VecElixir.Store do
  @callback fetch(key :: term) :: {:ok, term} | :error
end

defmodule VecElixir.Cache do
  @callback evict(key :: term) :: :ok
end

defmodule VecElixir.MemoryStore do
  @behaviour VecElixir.Store
  @behaviour VecElixir.Cache

  @impl VecElixir.Store
  def fetch(key), do: {:ok, key}

  @impl VecElixir.Cache
  def evict(_key), do: :ok
end

# A module attribute holding a list of modules, reachable only through that literal list.
defmodule VecElixir.Registry do
  @stores [VecElixir.MemoryStore, VecElixir.Point]

  def stores, do: @stores
end
