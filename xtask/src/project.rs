//! The benchmark's generated Mix project: an entry module whose closure is exactly N modules.
//!
//! Module `Bench.M<i>` calls `Bench.M<2i+1>` and `Bench.M<2i+2>` (those below N), so every module
//! is reachable from `Bench.M0` and `Bench.M0.run/0` returns N. Each module has docs, a struct,
//! guards, string interpolation and pipelines, so its `.beam` is about the median size of the
//! modules Elixir itself ships (6-7 KiB). Names, atoms and strings differ from module to module
//! (pseudo-random words), so that the batch compresses about as well as real code (to a fifth
//! of the files, as Elixir's own modules do) rather than as N copies of one template.

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
    compile(&project, n)?;
    Ok(project)
}

/// Compiles the `n`-module project in `project` with `mix`.
pub fn compile(project: &Path, n: usize) -> Result<(), String> {
    let out = Command::new("mix")
        .arg("compile")
        .current_dir(project)
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
    Ok(())
}

/// Writes `text` unless the file already holds it, so that mix does not recompile a kept project.
fn write(path: &Path, text: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Syllables of the pseudo-random words.
const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ren", "tu", "sar", "vex", "dol", "pi", "zen", "qua", "bri", "mo", "nel",
    "ost", "fey",
];

/// A pseudo-random word for (`i`, `k`): the same on every generation.
fn word(i: usize, k: usize) -> String {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (k as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut out = String::new();
    for _ in 0..3 {
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        out += SYLLABLES[(x >> 60) as usize];
    }
    out
}

/// A few more functions for module `i`, from 0 to 5 of them, each of one of four shapes: the
/// modules differ in their code too, not only in their names.
fn extras(i: usize) -> String {
    let w = |k| word(i, k);
    let pick = |k| w(k).len() + w(k + 1).len();
    let mut out = String::new();
    for f in 0..pick(20) % 6 {
        let (name, a, b) = (w(30 + 3 * f), w(31 + 3 * f), w(32 + 3 * f));
        let body = match pick(40 + f) % 4 {
            0 => format!(
                "  def {name}(map) when is_map(map) do\n    map\n    |> Map.put(:{a}, {f})\n    \
                 |> Map.update(:{b}, [{i}], &[{i} | &1])\n    |> Map.to_list()\n  end\n"
            ),
            1 => format!(
                "  def {name}(text) when is_binary(text) do\n    text\n    |> String.split(\"{a}\")\n    \
                 |> Enum.map(&String.upcase/1)\n    |> Enum.join(\"{b}\")\n  end\n"
            ),
            2 => format!(
                "  def {name}({{:{a}, value}}), do: {{:ok, value * {f}}}\n  \
                 def {name}({{:{b}, _}}), do: {{:error, :{b}}}\n  def {name}(_), do: :error\n"
            ),
            _ => format!(
                "  def {name}(items) do\n    for {{k, v}} <- items, v > {i}, into: %{{}} do\n      \
                 {{k, \"{a}-#{{v}}-{b}\"}}\n    end\n  end\n"
            ),
        };
        out += "\n";
        out += &body;
    }
    out
}

/// The source of module `i` of `n`.
fn module(i: usize, n: usize) -> String {
    let w = |k| word(i, k);
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

  defstruct [:id, :name, :{f0}, tags: [:{f1}], meta: %{{{f2}: "{f3} {f4}"}}]

  @doc "Counts the modules of the subtree rooted here."
  def run, do: {calls}

  @doc "A record for this module, tagged {f5}."
  def new(name, tags \\ []), do: %__MODULE__{{id: {i}, name: name, tags: [:{f5} | tags]}}

  @doc "Describes a record, or anything else."
  def describe(%__MODULE__{{id: id, name: name, tags: tags}}),
    do: "module #{{id}}: #{{name}} (#{{Enum.join(tags, ", ")}})"

  def describe(other), do: "not a {f6} of module {i}: #{{inspect(other)}}"

  @doc "Sorts a value into a category."
  def classify(x) when is_integer(x) and x > {factor}00, do: :{f7}
  def classify(x) when is_integer(x), do: :{f8}
  def classify(x) when is_binary(x), do: {{:text, String.length(x)}}
  def classify(%{{}} = map) when map_size(map) == 0, do: :empty_map
  def classify(list) when is_list(list), do: {{:list, length(list)}}
  def classify(_), do: :{f9}

  @doc "Sums the multiples of three among the scaled values ({f10})."
  def {f10}(list) do
    list
    |> Enum.map(&(&1 * {factor}))
    |> Enum.filter(&(rem(&1, 3) == 0))
    |> Enum.reduce(0, &+/2)
  end

  @doc "Merges options with this module's defaults."
  def options(opts) do
    defaults = [{f11}: {factor}, {f12}: 5_000, label: "{f13} {f14}"]
    Keyword.merge(defaults, opts, fn _key, _default, given -> given end)
  end
{extras}end
"#,
        extras = extras(i),
        f0 = w(0),
        f1 = w(1),
        f2 = w(2),
        f3 = w(3),
        f4 = w(4),
        f5 = w(5),
        f6 = w(6),
        f7 = w(7),
        f8 = w(8),
        f9 = w(9),
        f10 = w(10),
        f11 = w(11),
        f12 = w(12),
        f13 = w(13),
        f14 = w(14),
    )
}
