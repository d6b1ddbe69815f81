//! The benchmark's generated Mix project: an entry module whose closure is exactly N modules.
//!
//! Module `Bench.M<i>` calls `Bench.M<2i+1>` and `Bench.M<2i+2>` (those below N), so every module
//! is reachable from `Bench.M0` and `Bench.M0.run/0` returns N. Each module has docs, a struct,
//! guards, string interpolation and pipelines, so its `.beam` is about the median size of the
//! modules Elixir itself ships (6-7 KiB).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The entry function the benchmark runs.
pub const ENTRY: &str = "Bench.M0.run";

/// Writes the project for `n` modules under `dir/n<N>`, compiles it with `mix`, and returns the
/// project directory.
pub fn generate(dir: &Path, n: usize) -> Result<PathBuf, String> {
    let project = dir.join(format!("n{n}"));
    let lib = project.join("lib");
    std::fs::create_dir_all(&lib).map_err(|e| format!("cannot create {}: {e}", lib.display()))?;
    let mix_exs = format!(
        "defmodule Bench{n}.MixProject do\n  use Mix.Project\n\n  \
         def project, do: [app: :bench_{n}, version: \"0.1.0\", deps: []]\nend\n"
    );
    write(&project.join("mix.exs"), &mix_exs)?;
    for i in 0..n {
        write(&lib.join(format!("m{i}.ex")), &module(i, n))?;
    }
    let out = Command::new("mix")
        .arg("compile")
        .current_dir(&project)
        .env("MIX_ENV", "dev")
        .env_remove("MIX_BUILD_PATH")
        .env_remove("MIX_BUILD_ROOT")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run mix: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mix compile of the {n}-module project failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(project)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The source of module `i` of `n`.
fn module(i: usize, n: usize) -> String {
    let mut calls = String::from("1");
    for child in [2 * i + 1, 2 * i + 2] {
        if child < n {
            let _ = write!(calls, " + Bench.M{child}.run()");
        }
    }
    let factor = i + 1;
    format!(
        r#"defmodule Bench.M{i} do
  @moduledoc """
  Generated module {i} of {n} for the mix-remote benchmark.

  It calls its children in a binary tree, so the closure of `Bench.M0.run/0` is every module.
  """

  defstruct [:id, :name, tags: [], meta: %{{}}]

  @doc "Counts the modules of the subtree rooted here."
  def run, do: {calls}

  @doc "A record for this module."
  def new(name, tags \\ []), do: %__MODULE__{{id: {i}, name: name, tags: [:generated | tags]}}

  @doc "Describes a record, or anything else."
  def describe(%__MODULE__{{id: id, name: name, tags: tags}}),
    do: "module #{{id}}: #{{name}} (#{{Enum.join(tags, ", ")}})"

  def describe(other), do: "not a record of module {i}: #{{inspect(other)}}"

  @doc "Sorts a value into a category."
  def classify(x) when is_integer(x) and x > {factor}00, do: :large
  def classify(x) when is_integer(x), do: :small
  def classify(x) when is_binary(x), do: {{:text, String.length(x)}}
  def classify(%{{}} = map) when map_size(map) == 0, do: :empty_map
  def classify(list) when is_list(list), do: {{:list, length(list)}}
  def classify(_), do: :other

  @doc "Sums the multiples of three among the scaled values."
  def transform(list) do
    list
    |> Enum.map(&(&1 * {factor}))
    |> Enum.filter(&(rem(&1, 3) == 0))
    |> Enum.reduce(0, &+/2)
  end

  @doc "Merges options with this module's defaults."
  def options(opts) do
    defaults = [retries: {factor}, timeout: 5_000, label: "m{i}"]
    Keyword.merge(defaults, opts, fn _key, _default, given -> given end)
  end
end
"#
    )
}
