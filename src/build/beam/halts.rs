//! Halts that wait for the output: a shipped module's calls to `erlang:halt/0,1,2` and
//! `'Elixir.System':halt/0,1` made calls to the relay's functions of the same arities
//! (templates/mix_remote_relay.erl: `halt/0,1,2`, `system_halt/0,1`), which halt the node once the
//! tool has written all output printed before, as `mix run`'s halt flushes its stdout.
//!
//! Only the tables change: an import names its module and function by their indices in the atom
//! table, so the redirected imports point at atoms appended to it (`mix_remote_relay`, and
//! `system_halt` where `'Elixir.System':halt` is called); the code, which calls imports by their
//! place in the import table, stays as it is.

use super::{BeamErrorKind, atom_table, import_entries};

/// The relay's module, which the remote node always has loaded before the code runs.
const RELAY: &str = "mix_remote_relay";

/// The atom and import tables of a module whose halts are redirected.
#[derive(Debug, PartialEq)]
pub struct Redirected {
    /// The atom table's data, the atoms the redirected imports need appended.
    pub atoms: Vec<u8>,
    /// The import table's data with the halts' entries pointing at the relay.
    pub imports: Vec<u8>,
}

/// The tables of a module with `atoms` (AtU8 or Atom data) and `imports` (ImpT data) redirected,
/// or `None` when it calls no halt (the table then stays exactly as it is).
pub fn redirect(atoms: &[u8], imports: &[u8]) -> Result<Option<Redirected>, BeamErrorKind> {
    // Most modules have no `halt` atom at all: they are passed over without decoding anything.
    if !atoms.windows(4).any(|w| w == b"halt") {
        return Ok(None);
    }
    let names = atom_table(atoms)?;
    if names.first().is_some_and(|name| name == RELAY) {
        return Ok(None);
    }
    let mut entries = import_entries(imports)?;
    let name = |index: u32| {
        names
            .get((index as usize).wrapping_sub(1))
            .map(String::as_str)
    };
    let mut appended: Vec<&str> = Vec::new();
    let mut index_of = |atom: &'static str| -> u32 {
        let at = match names.iter().position(|n| n == atom) {
            Some(at) => at,
            None => {
                let new = appended.iter().position(|n| *n == atom).unwrap_or_else(|| {
                    appended.push(atom);
                    appended.len() - 1
                });
                names.len() + new
            }
        };
        // One-based, as the tables count; the table's count fitted in its four bytes.
        at as u32 + 1
    };
    let mut changed = false;
    for entry in &mut entries {
        let target = match (name(entry[0]), name(entry[1]), entry[2]) {
            (Some("erlang"), Some("halt"), 0..=2) => "halt",
            (Some("Elixir.System"), Some("halt"), 0..=1) => "system_halt",
            _ => continue,
        };
        entry[0] = index_of(RELAY);
        entry[1] = index_of(target);
        changed = true;
    }
    if !changed {
        return Ok(None);
    }
    Ok(Some(Redirected {
        atoms: appended_to(atoms, names.len(), &appended)?,
        imports: encoded(&entries),
    }))
}

/// An import table holding `entries`.
fn encoded(entries: &[[u32; 3]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + entries.len() * 12);
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for value in entries.iter().flatten() {
        out.extend_from_slice(&value.to_be_bytes());
    }
    out
}

/// The atom table `data` (of `count` atoms) with `extra` appended, each atom's length encoded as
/// the table encodes its others: one byte up to OTP 27, compact (as its first atom's) from 28.
fn appended_to(data: &[u8], count: usize, extra: &[&str]) -> Result<Vec<u8>, BeamErrorKind> {
    let truncated = || BeamErrorKind::Truncated("atom table");
    let header: [u8; 4] = data
        .get(..4)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(truncated)?;
    let compact = i32::from_be_bytes(header) < 0;
    let total = i32::try_from(count + extra.len()).map_err(|_| truncated())?;
    let mut out = Vec::with_capacity(data.len() + 32);
    out.extend_from_slice(&(if compact { -total } else { total }).to_be_bytes());
    out.extend_from_slice(&data[4..]);
    // The tag bits the compiler gave the first atom's length: the others get the same.
    let tag = data.get(4).map_or(0, |first| first & 0x07);
    for atom in extra {
        let len = atom.len();
        if compact {
            if len < 16 {
                out.push(((len as u8) << 4) | tag);
            } else {
                out.push((((len >> 3) & 0xE0) as u8) | 0x08 | tag);
                out.push((len & 0xFF) as u8);
            }
        } else {
            out.push(len as u8);
        }
        out.extend_from_slice(atom.as_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::beam::tests::{compact_atoms as compact, old_atoms as table};

    #[test]
    fn the_halts_of_a_module_call_the_relay_and_nothing_else_changes() {
        let atoms = table(&[
            "Elixir.Job",
            "erlang",
            "halt",
            "Elixir.System",
            "puts",
            "Elixir.IO",
        ]);
        let imports = encoded(&[[2, 3, 1], [6, 5, 1], [4, 3, 1], [4, 3, 2], [2, 3, 3]]);
        let out = redirect(&atoms, &imports).unwrap().unwrap();
        let names = atom_table(&out.atoms).unwrap();
        assert_eq!(
            names[..6],
            [
                "Elixir.Job",
                "erlang",
                "halt",
                "Elixir.System",
                "puts",
                "Elixir.IO"
            ]
        );
        assert_eq!(names[6..], ["mix_remote_relay", "system_halt"]);
        assert_eq!(
            import_entries(&out.imports).unwrap(),
            // erlang:halt/1 and System.halt/1 redirected; System.halt/2 and erlang:halt/3 do not
            // exist, and their calls fail as they would.
            [[7, 3, 1], [6, 5, 1], [7, 8, 1], [4, 3, 2], [2, 3, 3]]
        );
    }

    #[test]
    fn a_compact_atom_table_gets_its_atoms_in_its_own_encoding() {
        let atoms = compact(&["job", "erlang", "halt"]);
        let imports = encoded(&[[2, 3, 0]]);
        let out = redirect(&atoms, &imports).unwrap().unwrap();
        assert_eq!(
            atom_table(&out.atoms).unwrap(),
            ["job", "erlang", "halt", "mix_remote_relay"]
        );
        assert_eq!(
            out.atoms,
            compact(&["job", "erlang", "halt", "mix_remote_relay"])
        );
        assert_eq!(import_entries(&out.imports).unwrap(), [[4, 3, 0]]);
    }

    #[test]
    fn a_module_without_halts_or_the_relay_itself_stays_as_it_is() {
        let no_halt = table(&["job", "erlang", "self"]);
        assert_eq!(redirect(&no_halt, &encoded(&[[2, 3, 0]])).unwrap(), None);
        // `halt` as an atom of its own (a message, a local function) is no call.
        let local = table(&["job", "halt"]);
        assert_eq!(redirect(&local, &encoded(&[])).unwrap(), None);
        let relay = table(&["mix_remote_relay", "erlang", "halt"]);
        assert_eq!(redirect(&relay, &encoded(&[[2, 3, 1]])).unwrap(), None);
    }

    #[test]
    fn a_bad_import_table_is_an_error_not_a_panic() {
        let atoms = table(&["job", "erlang", "halt"]);
        let lying = [0, 0, 1, 0, 0, 0, 0, 2];
        assert!(matches!(
            redirect(&atoms, &lying),
            Err(BeamErrorKind::Truncated("import table"))
        ));
        // An index past the atom table names nothing: the entry is left alone.
        let far = encoded(&[[90, 3, 1]]);
        assert_eq!(redirect(&atoms, &far).unwrap(), None);
    }
}
