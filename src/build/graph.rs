//! The module dependency graph of a project and the closure an entry function needs.
//!
//! An edge A -> B means loading A's code without B can fail. The edges, strongest first:
//! - A calls a function of B (B is in A's import table);
//! - an atom of A names B (a struct, a remote function reference, a module used as a value);
//! - a literal of A names B (a module attribute or constant list/map of modules, the compiler keeps
//!   those out of the atom table; typical for plugins called through `apply/3`);
//! - A declares B as its behaviour;
//! - B implements a protocol the project defines, A (a consolidated protocol dispatches to all its
//!   implementations directly, so all of them go along);
//! - B implements any protocol (Elixir's own included) for A's struct.
//!
//! Modules that OTP or Elixir ship are never nodes, since they are not in `_build`. Cycles (mutual
//! recursion) are common, so the push order comes from strongly connected components: Tarjan's
//! algorithm emits them dependencies first, which is exactly leaves-first loading order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::build::beam::Beam;

/// Why one module needs another: the kinds of edges, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Why {
    /// The module calls a function of the other.
    Calls,
    /// An atom of the module names the other.
    Names,
    /// Only literal data of the module names the other.
    Literal,
    /// The module declares the other as its behaviour.
    Behaviour,
    /// The other implements this protocol, which the project defines.
    Implementation,
    /// The other implements a protocol for this struct.
    StructImpl,
}

impl Why {
    /// A stable machine-readable name for the kind of edge (`plan --json`, `graph --format json`).
    pub fn key(self) -> &'static str {
        match self {
            Why::Calls => "calls",
            Why::Names => "names",
            Why::Literal => "literal",
            Why::Behaviour => "behaviour",
            Why::Implementation => "protocol_implementation",
            Why::StructImpl => "struct_implementation",
        }
    }
}

/// Why a module is in a closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'g> {
    /// It is the entry module.
    Entry,
    /// The user asked for it (`--include`).
    Included,
    /// The code run (a script, an expression) names it.
    Code,
    /// The first module found (breadth first from the roots) that needs it, and how.
    Edge {
        /// The module that needs it.
        from: &'g str,
        /// How.
        why: Why,
    },
}

/// One module of a closure and why it is there.
#[derive(Debug, Clone, Copy)]
pub struct Member<'g> {
    /// The module.
    pub beam: &'g Beam,
    /// Why it was pulled in.
    pub reason: Reason<'g>,
}

/// The project's modules and the edges between them.
pub struct Graph {
    /// Shared, so that what ships (on the wire form's thread) holds the modules without copies.
    beams: Vec<Arc<Beam>>,
    edges: Vec<Vec<(usize, Why)>>,
    index: HashMap<String, usize>,
}

impl Graph {
    /// Builds the graph from every module of the project.
    pub fn new(beams: Vec<Beam>) -> Self {
        let beams: Vec<Arc<Beam>> = beams.into_iter().map(Arc::new).collect();
        let index: HashMap<String, usize> = beams
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.clone(), i))
            .collect();
        let mut edges: Vec<HashMap<usize, Why>> = vec![HashMap::new(); beams.len()];
        let mut add = |from: usize, to: usize, why: Why| {
            if from != to {
                let slot = edges[from].entry(to).or_insert(why);
                *slot = (*slot).min(why);
            }
        };
        for (me, beam) in beams.iter().enumerate() {
            for atom in &beam.atoms {
                if let Some(&to) = index.get(atom) {
                    let calls = beam.imports.binary_search(atom).is_ok();
                    add(me, to, if calls { Why::Calls } else { Why::Names });
                }
            }
            for atom in &beam.literal_atoms {
                if let Some(&to) = index.get(atom) {
                    add(me, to, Why::Literal);
                }
            }
            for behaviour in &beam.behaviours {
                if let Some(&to) = index.get(behaviour) {
                    add(me, to, Why::Behaviour);
                }
            }
            if let Some(imp) = &beam.implements {
                if let Some(&protocol) = index.get(&imp.protocol)
                    && beams[protocol].is_protocol
                {
                    add(protocol, me, Why::Implementation);
                }
                if let Some(&target) = index.get(&imp.for_type) {
                    add(target, me, Why::StructImpl);
                }
            }
        }
        let edges = edges
            .into_iter()
            .map(|targets| {
                let mut out: Vec<(usize, Why)> = targets.into_iter().collect();
                out.sort_unstable_by_key(|&(to, why)| (why, to));
                out
            })
            .collect();
        Graph {
            beams,
            edges,
            index,
        }
    }

    /// The module called `name`, if the project has it.
    pub fn module(&self, name: &str) -> Option<&Beam> {
        self.index.get(name).map(|&i| &*self.beams[i])
    }

    /// The module called `name` as a shared handle, for what must outlive a borrow of the graph
    /// (the wire form, prepared on a thread of its own).
    pub fn shared(&self, name: &str) -> Option<Arc<Beam>> {
        self.index.get(name).map(|&i| Arc::clone(&self.beams[i]))
    }

    /// Every module of the project, sorted by name.
    pub fn modules(&self) -> &[Arc<Beam>] {
        &self.beams
    }

    /// Every edge of the graph: (from, to, why), strongest first for each module.
    pub fn edges(&self) -> impl Iterator<Item = (&Beam, &Beam, Why)> {
        self.edges.iter().enumerate().flat_map(move |(from, out)| {
            out.iter()
                .map(move |&(to, why)| (&*self.beams[from], &*self.beams[to], why))
        })
    }

    /// Every module reachable from `entry`, the `included` ones and those some code `named`
    /// (themselves included), dependencies before dependents; modules of one cycle come out
    /// together, in a stable order. Names the project does not have are ignored: callers check
    /// them first.
    pub fn closure(&self, entry: &str, included: &[String], named: &[String]) -> Vec<Member<'_>> {
        let mut roots: Vec<(usize, Reason)> = Vec::new();
        let all = std::iter::once((entry, Reason::Entry))
            .chain(included.iter().map(|m| (m.as_str(), Reason::Included)))
            .chain(named.iter().map(|m| (m.as_str(), Reason::Code)));
        for (name, reason) in all {
            if let Some(&i) = self.index.get(name)
                && roots.iter().all(|&(r, _)| r != i)
            {
                roots.push((i, reason));
            }
        }
        let reasons = self.reasons(&roots);
        let starts: Vec<usize> = roots.iter().map(|&(i, _)| i).collect();
        self.sccs_from(&starts)
            .into_iter()
            .flatten()
            .map(|i| Member {
                beam: &self.beams[i],
                reason: reasons[&i],
            })
            .collect()
    }

    /// Breadth first from the roots: each reachable module's first discoverer, so a plan can say
    /// why a module is there along the shortest chain.
    fn reasons<'g>(&'g self, roots: &[(usize, Reason<'g>)]) -> HashMap<usize, Reason<'g>> {
        let mut reasons: HashMap<usize, Reason> = roots.iter().copied().collect();
        let mut queue: VecDeque<usize> = roots.iter().map(|&(i, _)| i).collect();
        while let Some(v) = queue.pop_front() {
            for &(w, why) in &self.edges[v] {
                if let std::collections::hash_map::Entry::Vacant(slot) = reasons.entry(w) {
                    slot.insert(Reason::Edge {
                        from: &self.beams[v].name,
                        why,
                    });
                    queue.push_back(w);
                }
            }
        }
        reasons
    }

    /// Tarjan's SCC algorithm from each root in turn, iterative so deep graphs cannot overflow the
    /// stack. Returns components in the order Tarjan completes them: every component after all
    /// the components it depends on.
    fn sccs_from(&self, roots: &[usize]) -> Vec<Vec<usize>> {
        const UNSEEN: usize = usize::MAX;
        let n = self.beams.len();
        let mut order = vec![UNSEEN; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut components = Vec::new();
        let mut next = 0;
        for &root in roots {
            if order[root] != UNSEEN {
                continue;
            }
            // (node, index of the next edge to follow)
            let mut work = vec![(root, 0)];
            order[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root);
            on_stack[root] = true;
            while let Some(&mut (v, ref mut edge)) = work.last_mut() {
                if let Some(&(w, _)) = self.edges[v].get(*edge) {
                    *edge += 1;
                    if order[w] == UNSEEN {
                        order[w] = next;
                        low[w] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        work.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(order[w]);
                    }
                    continue;
                }
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == order[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    component.sort_unstable();
                    components.push(component);
                }
            }
        }
        components
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::beam::Impl;

    fn beam(name: &str, refs: &[&str]) -> Beam {
        let mut atoms = vec![name.to_owned()];
        atoms.extend(refs.iter().map(|s| s.to_string()));
        Beam {
            name: name.to_owned(),
            atoms,
            ..Beam::default()
        }
    }

    fn names(g: &Graph, entry: &str) -> Vec<String> {
        g.closure(entry, &[], &[])
            .iter()
            .map(|m| m.beam.name.clone())
            .collect()
    }

    fn reason<'g>(g: &'g Graph, entry: &str, included: &[String], module: &str) -> Reason<'g> {
        let closure = g.closure(entry, included, &[]);
        let found = closure.iter().find(|m| m.beam.name == module);
        found
            .map(|m| m.reason)
            .unwrap_or_else(|| panic!("{module} not in closure"))
    }

    #[test]
    fn literals_behaviours_and_protocols_pull_modules_in() {
        let mut pipeline = beam("pipeline", &[]);
        pipeline.literal_atoms = vec!["plugin".into(), "some_option".into()];
        let mut plugin = beam("plugin", &[]);
        plugin.behaviours = vec!["plugin_behaviour".into(), "gen_server".into()];
        let mut shape = beam("shape", &[]);
        shape.is_protocol = true;
        let implement = |name: &str, protocol: &str, for_type: &str| {
            let mut b = beam(name, &[protocol, for_type]);
            b.implements = Some(Impl {
                protocol: protocol.into(),
                for_type: for_type.into(),
            });
            b
        };
        let mut entry = beam("entry", &["pipeline", "shape", "money"]);
        entry.imports = vec!["pipeline".into()];
        let g = Graph::new(vec![
            entry,
            pipeline,
            plugin,
            beam("plugin_behaviour", &[]),
            shape,
            implement("shape.integer", "shape", "Elixir.Integer"),
            beam("money", &[]),
            implement("string_chars.money", "Elixir.String.Chars", "money"),
            beam("circle", &[]),
            implement("shape.circle", "shape", "circle"),
            beam("unused", &["entry"]),
        ]);
        let all = names(&g, "entry");
        for m in [
            "pipeline",
            "plugin",
            "plugin_behaviour",
            "shape",
            "shape.integer",
        ] {
            assert!(all.contains(&m.to_owned()), "{m} missing from {all:?}");
        }
        for m in ["money", "string_chars.money", "circle", "shape.circle"] {
            assert!(all.contains(&m.to_owned()), "{m} missing from {all:?}");
        }
        assert!(!all.contains(&"unused".to_owned()));
        let edge = |from, why| Reason::Edge { from, why };
        assert_eq!(reason(&g, "entry", &[], "entry"), Reason::Entry);
        assert_eq!(
            reason(&g, "entry", &[], "pipeline"),
            edge("entry", Why::Calls)
        );
        assert_eq!(reason(&g, "entry", &[], "money"), edge("entry", Why::Names));
        assert_eq!(
            reason(&g, "entry", &[], "plugin"),
            edge("pipeline", Why::Literal)
        );
        assert_eq!(
            reason(&g, "entry", &[], "plugin_behaviour"),
            edge("plugin", Why::Behaviour)
        );
        assert_eq!(
            reason(&g, "entry", &[], "shape.integer"),
            edge("shape", Why::Implementation)
        );
        assert_eq!(
            reason(&g, "entry", &[], "string_chars.money"),
            edge("money", Why::StructImpl)
        );
        let included = ["unused".to_owned()];
        assert_eq!(reason(&g, "entry", &included, "unused"), Reason::Included);
    }

    #[test]
    fn included_modules_bring_their_own_closure_in_push_order() {
        let g = Graph::new(vec![
            beam("entry", &[]),
            beam("extra", &["helper"]),
            beam("helper", &[]),
        ]);
        let included = ["extra".to_owned(), "not_a_module".to_owned()];
        let closure: Vec<&str> = g
            .closure("entry", &included, &[])
            .iter()
            .map(|m| m.beam.name.as_str())
            .collect();
        assert_eq!(closure, ["entry", "helper", "extra"]);
    }

    #[test]
    fn closure_is_leaves_first_and_excludes_unreachable_and_foreign() {
        let g = Graph::new(vec![
            beam("app", &["mid", "lists", "io"]),
            beam("mid", &["leaf", "format"]),
            beam("leaf", &[]),
            beam("unused", &["app"]),
        ]);
        assert_eq!(names(&g, "app"), ["leaf", "mid", "app"]);
        assert_eq!(names(&g, "leaf"), ["leaf"]);
        assert!(names(&g, "lists").is_empty());
    }

    #[test]
    fn cycles_are_loaded_together_after_their_dependencies() {
        let g = Graph::new(vec![
            beam("entry", &["a"]),
            beam("a", &["b", "util"]),
            beam("b", &["a"]),
            beam("util", &[]),
        ]);
        assert_eq!(names(&g, "entry"), ["util", "a", "b", "entry"]);
    }

    #[test]
    fn deep_chains_do_not_overflow() {
        let names_: Vec<String> = (0..100_000).map(|i| format!("m{i}")).collect();
        let beams = (0..names_.len())
            .map(|i| {
                let refs: Vec<&str> = names_.get(i + 1).map(|s| s.as_str()).into_iter().collect();
                beam(&names_[i], &refs)
            })
            .collect();
        let g = Graph::new(beams);
        let closure = names(&g, "m0");
        assert_eq!(closure.len(), 100_000);
        assert_eq!(closure.first().map(String::as_str), Some("m99999"));
    }
}
