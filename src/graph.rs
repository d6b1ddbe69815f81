//! The module dependency graph of a project and the closure an entry function needs.
//!
//! An edge A -> B exists when an atom of A names project module B: calls, remote function
//! references and module names used as data all leave such an atom. Modules that OTP or Elixir
//! ship are never nodes, since they are not in `_build`. Cycles (mutual recursion) are common, so
//! the push order comes from strongly connected components: Tarjan's algorithm emits them
//! dependencies first, which is exactly leaves-first loading order.

use std::collections::HashMap;

use crate::beam::Beam;

/// The project's modules and the edges between them.
pub struct Graph {
    beams: Vec<Beam>,
    edges: Vec<Vec<usize>>,
    index: HashMap<String, usize>,
}

impl Graph {
    /// Builds the graph from every module of the project.
    pub fn new(beams: Vec<Beam>) -> Self {
        let index: HashMap<String, usize> = beams
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.clone(), i))
            .collect();
        let edges = beams
            .iter()
            .enumerate()
            .map(|(me, beam)| {
                let mut out: Vec<usize> = beam
                    .atoms
                    .iter()
                    .filter_map(|atom| index.get(atom).copied())
                    .filter(|&other| other != me)
                    .collect();
                out.sort_unstable();
                out.dedup();
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
        self.index.get(name).map(|&i| &self.beams[i])
    }

    /// Every module reachable from `entry` (itself included), dependencies before dependents.
    /// Modules of one cycle come out together, in a stable order.
    pub fn closure(&self, entry: &str) -> Vec<&Beam> {
        let Some(&root) = self.index.get(entry) else {
            return Vec::new();
        };
        self.sccs_from(root)
            .into_iter()
            .flatten()
            .map(|i| &self.beams[i])
            .collect()
    }

    /// Tarjan's SCC algorithm from `root`, iterative so deep graphs cannot overflow the stack.
    /// Returns components in the order Tarjan completes them: every component after all the
    /// components it depends on.
    fn sccs_from(&self, root: usize) -> Vec<Vec<usize>> {
        const UNSEEN: usize = usize::MAX;
        let n = self.beams.len();
        let mut order = vec![UNSEEN; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut components = Vec::new();
        let mut next = 0;
        // (node, index of the next edge to follow)
        let mut work = vec![(root, 0)];
        order[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if let Some(&w) = self.edges[v].get(*edge) {
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
        components
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn beam(name: &str, refs: &[&str]) -> Beam {
        let mut atoms = vec![name.to_owned()];
        atoms.extend(refs.iter().map(|s| s.to_string()));
        Beam {
            name: name.to_owned(),
            atoms,
            exports: Vec::new(),
            path: PathBuf::from(format!("{name}.beam")),
            bytes: Vec::new(),
            on_load: false,
            needs: Default::default(),
        }
    }

    fn names(g: &Graph, entry: &str) -> Vec<String> {
        g.closure(entry).iter().map(|b| b.name.clone()).collect()
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
