//! `mix-remote graph`: the dependency graph (the whole project, or the closure of an entry or of a
//! script) as Graphviz DOT or JSON, with the same edge kinds the closure follows.

use std::collections::{BTreeMap, HashSet};

use crate::build::entry::display_module;
use crate::build::graph::{Graph, Why};
use crate::build::project::{self, app_of};
use crate::cli::{GraphArgs, GraphFormat};
use crate::cmd::{fresh, plan};
use crate::config::{self, Config};
use crate::exit::CliError;
use crate::remote::job::Code;
use crate::remote::wire;
use crate::report::Reporter;

/// Prints the graph; the build is resolved as for `run`: flags over the `defaults` of
/// mix-remote.yaml, and read as it is (a source newer than it is a warning).
pub fn exec(args: &GraphArgs, config: Option<&Config>, report: &Reporter) -> Result<u8, CliError> {
    // A script is read first, as `run` reads it: an unreadable one is bad input.
    let script = Code::script_of(args.entry.as_deref(), Vec::new())?;
    let build = config::build(config, args.build.project(), &args.build.layer(), &[])?;
    fresh::warn_stale(&build, report);
    let text = match &args.entry {
        Some(text) => {
            let (plan, _) = plan::planned(text, script, &build)?;
            let closure = plan.closure();
            let only: HashSet<&str> = closure.iter().map(|m| m.beam.name.as_str()).collect();
            render(plan.graph(), Some(&only), args.format)
        }
        None => render(
            &Graph::new(project::scan(&build.project, &build.mix_env)?),
            None,
            args.format,
        ),
    };
    report.output(text.as_bytes());
    Ok(0)
}

fn render(graph: &Graph, only: Option<&HashSet<&str>>, format: GraphFormat) -> String {
    match format {
        GraphFormat::Dot => dot(graph, only),
        GraphFormat::Json => json(graph, only),
    }
}

/// Renders the modules named in `only` (all modules when `None`) and the edges between them as
/// DOT: one cluster per application, edge styles by kind, a legend in the comments.
pub fn dot(graph: &Graph, only: Option<&HashSet<&str>>) -> String {
    let keep = |name: &str| only.is_none_or(|set| set.contains(name));
    let mut apps: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for beam in graph.modules().iter().filter(|b| keep(&b.name)) {
        apps.entry(app_of(&beam.path)).or_default().push(&beam.name);
    }
    let mut out = String::from(
        "// mix-remote module graph. Edges: solid = calls, dashed = names the module,\n\
         // dotted = named in literal data, empty arrow = behaviour, diamond = protocol impl.\n\
         digraph modules {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n  \
         edge [fontname=\"Helvetica\", fontsize=8];\n",
    );
    for (i, (app, modules)) in apps.iter().enumerate() {
        out.push_str(&format!(
            "  subgraph cluster_{i} {{\n    label={};\n",
            quote(app)
        ));
        for module in modules {
            out.push_str(&format!("    {};\n", quote(&display_module(module))));
        }
        out.push_str("  }\n");
    }
    for (from, to, why) in graph.edges() {
        if keep(&from.name) && keep(&to.name) {
            out.push_str(&format!(
                "  {} -> {} [{}];\n",
                quote(&display_module(&from.name)),
                quote(&display_module(&to.name)),
                style(why)
            ));
        }
    }
    out.push_str("}\n");
    out
}

/// Renders the same selection as one JSON object: `{"nodes": [...], "edges": [...]}`, each
/// node's `bytes` as a run sends the module (as `plan` counts it).
pub fn json(graph: &Graph, only: Option<&HashSet<&str>>) -> String {
    let keep = |name: &str| only.is_none_or(|set| set.contains(name));
    let nodes: Vec<serde_json::Value> = graph
        .modules()
        .iter()
        .filter(|b| keep(&b.name))
        .map(|b| {
            serde_json::json!({
                "module": display_module(&b.name),
                "app": app_of(&b.path),
                "bytes": wire::sent_size(b),
            })
        })
        .collect();
    let edges: Vec<serde_json::Value> = graph
        .edges()
        .filter(|(from, to, _)| keep(&from.name) && keep(&to.name))
        .map(|(from, to, why)| {
            serde_json::json!({
                "from": display_module(&from.name),
                "to": display_module(&to.name),
                "why": why.key(),
            })
        })
        .collect();
    format!(
        "{}\n",
        serde_json::json!({ "nodes": nodes, "edges": edges })
    )
}

fn style(why: Why) -> &'static str {
    match why {
        Why::Calls => "style=solid",
        Why::Names => "style=dashed",
        Why::Literal => "style=dotted",
        Why::Behaviour => "arrowhead=empty",
        Why::Implementation | Why::StructImpl => "arrowhead=diamond, style=dashed",
    }
}

/// A DOT double-quoted ID: module names contain dots and `?`, so every ID is quoted.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::beam::Beam;

    fn graph() -> Graph {
        let beam = |name: &str, atoms: &[&str]| Beam {
            name: name.to_owned(),
            atoms: std::iter::once(name)
                .chain(atoms.iter().copied())
                .map(str::to_owned)
                .collect(),
            path: format!("/p/_build/dev/lib/app/ebin/{name}.beam").into(),
            ..Beam::default()
        };
        let mut a = beam("Elixir.A", &["Elixir.B"]);
        a.imports = vec!["Elixir.B".into()];
        Graph::new(vec![
            a,
            beam("Elixir.B", &[]),
            beam("weird\"mod", &["Elixir.A"]),
        ])
    }

    #[test]
    fn dot_quotes_every_id_and_keeps_only_the_selection() {
        let g = graph();
        let all = dot(&g, None);
        assert!(all.contains("\"A\" -> \"B\" [style=solid];"), "{all}");
        assert!(
            all.contains("\":weird\\\"mod\" -> \"A\" [style=dashed];"),
            "{all}"
        );
        let only: HashSet<&str> = ["Elixir.A", "Elixir.B"].into();
        let some = dot(&g, Some(&only));
        assert!(!some.contains("weird"), "{some}");
    }

    #[test]
    fn json_counts_each_module_as_plan_and_a_run_do_without_the_chunks_never_sent() {
        let path = "/p/_build/dev/lib/app/ebin/Elixir.MixRemote.Md5Vector.beam";
        let bytes = include_bytes!("../../tests/vectors/md5/Elixir.MixRemote.Md5Vector.beam");
        let beam = crate::build::beam::parse(path.as_ref(), bytes.to_vec()).unwrap();
        let sent = wire::sent_size(&beam);
        assert!(sent < bytes.len(), "the vector has chunks a run leaves out");
        let v: serde_json::Value =
            serde_json::from_str(&json(&Graph::new(vec![beam]), None)).unwrap();
        assert_eq!(v["nodes"][0]["bytes"], sent);
    }

    #[test]
    fn json_lists_nodes_and_edges() {
        let v: serde_json::Value = serde_json::from_str(&json(&graph(), None)).unwrap();
        assert_eq!(v["nodes"].as_array().unwrap().len(), 3);
        assert_eq!(v["edges"][0]["from"], "A");
        assert_eq!(v["edges"][0]["why"], "calls");
    }
}
