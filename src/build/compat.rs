//! Version preflight: before anything is pushed, what the closure's beams need is compared with
//! what the remote runs, so a module the remote's loader would refuse is reported in one line
//! naming both versions and what to do, and nothing is half-loaded. Differences that usually work
//! are warnings.
//!
//! The rules are the loaders' own, established by experiment: every `.beam` of OTP 25, 27 and 29
//! (their own OTP and Elixir installations, 4,231 files) was offered to each of the three
//! runtimes as the push offers it: `erlang:prepare_loading/2` (what `code:atomic_load/1` runs),
//! plus `erl_features:load_allowed/1` where it exists for `-on_load` modules (which are pushed
//! with `code:load_binary/3`). These rules predict all 12,693 verdicts
//! (`tests/compat_loader.rs` repeats the comparison):
//!
//! | beams by \ runtime | OTP 25 | OTP 27 | OTP 29 |
//! | --- | --- | --- | --- |
//! | OTP 25 | all 1,669 load | 1 refused (`make_fun2`, `init`) | 354 refused (`bs_test_unit`, OTP 24 binary construction) |
//! | OTP 27 | 510 of 1,259 refused (opcodes 181+, guard `min/max`, `maybe_expr` in `-on_load` modules) | all load | all load |
//! | OTP 29 | all 1,303 refused (compact atom table, declared opcode 181+) | all refused (compact atom table) | all load |
//!
//! A loader refuses a module when:
//! - its Code header declares a higher opcode than the loader knows (OTP 25: 180, 26: 182,
//!   27: 183, 28: 184, 29: 191; a compiler may declare more than it uses: OTP 29's declares at
//!   least 181 so that OTP 25 refuses its beams);
//! - its atom table has the compact layout of OTP 28+ compilers (OTP 27 and older: "corrupt atom
//!   table");
//! - it has `-on_load` and was compiled with a language feature the runtime has not enabled (OTP
//!   27+ compilers record `maybe_expr`, which OTP 25 and 26 keep disabled by default): in OTP 25,
//!   `code:load_binary/3` checks features and `code:atomic_load/1` does not;
//! - a BIF instruction calls a function that is not a BIF there (`min/2`, `max/2` are guard BIFs
//!   since OTP 26, `is_integer/3` since OTP 29);
//! - it uses an instruction the loader no longer accepts: OTP 27+ refuse `allocate_zero`,
//!   `allocate_heap_zero`, `init`, `make_fun2` and modules declaring less than opcode 169 (OTP 22
//!   and older); OTP 29 also refuses `bs_test_unit` (which OTP 25's compiler still emits for
//!   `<<n, b::binary-size(n), _::binary>>`-style matches) and the binary construction
//!   instructions of OTP 24 and older compilers.
//!
//! OTP 26 and 28 were not observed; their entries come from the release that introduced each
//! opcode and feature. For a remote newer than OTP 29 only what is known to stay refused is
//! checked, with a warning.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::build::beam::Beam;
use crate::build::beam::code::{self, KNOWN_MAX};
use crate::build::beam::term::{self, Term};
use crate::build::entry::display_module;
use crate::build::project::{self, ProjectError};

/// The oldest OTP release mix-remote runs on, on the server: the output relay it loads there
/// (`templates/mix_remote_relay.erl`) is built for OTP 24 and newer.
pub const MIN_REMOTE_OTP: u32 = 24;

/// The newest OTP release whose loader rules are known here (the oldest is [`MIN_REMOTE_OTP`]).
const NEWEST_KNOWN: u32 = 29;

/// Highest opcode each release's loader knows (25, 27 and 29 observed with `beam_opcodes`; 24
/// from those OTP 25 added, `bs_create_bin` 177 to `badrecord` 180; 26 and 28 from the release
/// that introduced `update_record`/`bs_match` and `debug_line`).
const MAX_OPCODE: [(u32, u8); 6] = [
    (24, 176),
    (25, 180),
    (26, 182),
    (27, 183),
    (28, 184),
    (29, KNOWN_MAX),
];

/// Compact atom tables load from this release on.
const COMPACT_ATOMS_SINCE: u32 = 28;

/// Language features each release enables by default, with the first release that does.
const FEATURES: [(&str, u32); 1] = [("maybe_expr", 27)];

/// Functions that BIF instructions may call only from a release on.
const NEW_BIFS: [(&str, u32); 3] = [
    ("erlang:max/2", 26),
    ("erlang:min/2", 26),
    ("erlang:is_integer/3", 29),
];

/// Instructions loaders stopped accepting, with the first release that refuses them.
const REMOVED: [(u8, u32); 19] = [
    (14, 27),  // allocate_zero
    (15, 27),  // allocate_heap_zero
    (17, 27),  // init
    (103, 27), // make_fun2
    (89, 29),  // bs_put_integer
    (90, 29),  // bs_put_binary
    (91, 29),  // bs_put_float
    (92, 29),  // bs_put_string
    (109, 29), // bs_init2
    (111, 29), // bs_add
    (131, 29), // bs_test_unit
    (134, 29), // bs_append
    (135, 29), // bs_private_append
    (137, 29), // bs_init_bits
    (144, 29), // bs_utf8_size
    (145, 29), // bs_put_utf8
    (146, 29), // bs_utf16_size
    (147, 29), // bs_put_utf16
    (148, 29), // bs_put_utf32
];

/// Modules declaring less than this opcode (`swap`, OTP 23) were built for OTP 22 or older.
const OLDEST_DECLARED: u32 = 169;
/// The first release that refuses such modules.
const OLD_CODE_REFUSED_SINCE: u32 = 27;

/// What the remote runs, as it reports itself (a run's first request, or `check`'s program).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteVersions {
    /// `erlang:system_info(otp_release)`, e.g. `"27"`.
    pub otp_release: String,
    /// The ERTS version, `erlang:system_info(version)`, e.g. `"15.2"`; empty where unknown.
    pub erts: String,
    /// `System.version()`, e.g. `"1.18.3"`.
    pub elixir: String,
}

/// The Elixir and OTP versions Mix recorded when it compiled each application of the build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Built {
    /// Application directory (`_build/<env>/lib/<app>`) -> (Elixir version, OTP release).
    apps: Vec<(PathBuf, String, String)>,
}

impl Built {
    /// Reads `.mix/compile.elixir_scm` of every application the closure comes from. Mix writes
    /// `{_, {ElixirVersion, OtpRelease}, Scm, ...}` there (Elixir 1.14, 1.18 and 1.20 alike);
    /// an application without a readable one is simply unknown.
    pub fn read(closure: &[&Beam]) -> Built {
        let dirs: BTreeSet<&Path> = closure
            .iter()
            .filter_map(|b| b.path.parent()?.parent())
            .collect();
        let apps = dirs
            .into_iter()
            .filter_map(|dir| {
                let bytes = std::fs::read(dir.join(".mix/compile.elixir_scm")).ok()?;
                let (elixir, otp) = scm_versions(&bytes)?;
                Some((dir.to_owned(), elixir, otp))
            })
            .collect();
        Built { apps }
    }

    /// The OTP release that compiled `beam`, if Mix recorded it.
    fn otp_of(&self, beam: &Beam) -> Option<u32> {
        let dir = beam.path.parent()?.parent()?;
        let (_, _, otp) = self.apps.iter().find(|(d, _, _)| d == dir)?;
        otp.parse().ok()
    }

    /// The Elixir version Mix recorded, the newest where applications differ: the release that
    /// consolidated the project's protocols.
    pub fn elixir(&self) -> Option<&str> {
        self.newest().0
    }

    /// The newest Elixir and OTP versions among the applications.
    fn newest(&self) -> (Option<&str>, Option<u32>) {
        let elixir = self
            .apps
            .iter()
            .map(|(_, e, _)| e.as_str())
            .max_by_key(|e| version(e));
        let otp = self
            .apps
            .iter()
            .filter_map(|(_, _, o)| o.parse().ok())
            .max();
        (elixir, otp)
    }
}

/// The (Elixir version, OTP release) of a `compile.elixir_scm` file.
fn scm_versions(bytes: &[u8]) -> Option<(String, String)> {
    let Term::Tuple(items) = term::decode_with_binaries(bytes).ok()? else {
        return None;
    };
    let Some(Term::Tuple(pair)) = items.get(1) else {
        return None;
    };
    let text = |term: &Term| match term {
        Term::Bytes(bytes) => String::from_utf8(bytes.clone()).ok(),
        _ => None,
    };
    match pair.as_slice() {
        [elixir, otp] => Some((text(elixir)?, text(otp)?)),
        _ => None,
    }
}

/// The whole local build, as `check` compares it with each server: every module, and the
/// versions Mix recorded for its applications.
pub struct LocalBuild {
    beams: Vec<Beam>,
    built: Built,
}

impl LocalBuild {
    /// Reads the project's build for `env` (see [`project::scan`]); `None` when there is no
    /// compiled build to compare.
    pub fn read(project: &Path, env: &str) -> Result<Option<LocalBuild>, ProjectError> {
        match project::scan(project, env) {
            Ok(beams) => {
                let built = Built::read(&beams.iter().collect::<Vec<_>>());
                Ok(Some(LocalBuild { beams, built }))
            }
            Err(
                ProjectError::NoBuild { .. }
                | ProjectError::NotMix { .. }
                | ProjectError::Empty(..),
            ) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The modules of the build (as atoms).
    pub fn modules(&self) -> Vec<&str> {
        self.beams.iter().map(|beam| beam.name.as_str()).collect()
    }

    /// [`preflight`] for the whole build: the warnings, or why `remote` refuses it.
    pub fn against(&self, remote: &RemoteVersions) -> Result<Vec<String>, Refusal> {
        let beams: Vec<&Beam> = self.beams.iter().collect();
        preflight(&beams, &self.built, remote)
    }
}

/// The closure cannot run on the remote: one line naming the module, both versions and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Checks the closure against the remote before anything is pushed: the warnings to show (one
/// line each), or why the remote's loader would refuse it.
pub fn preflight(
    closure: &[&Beam],
    built: &Built,
    remote: &RemoteVersions,
) -> Result<Vec<String>, Refusal> {
    let mut warnings = Vec::new();
    let (local_elixir, local_otp) = built.newest();
    let Ok(otp) = remote.otp_release.parse::<u32>() else {
        warnings.push(format!(
            "the remote reports OTP release `{}`, which this tool cannot read: versions not checked",
            remote.otp_release
        ));
        return Ok(warnings);
    };
    if otp < MIN_REMOTE_OTP {
        return Err(Refusal(format!(
            "the remote runs OTP {otp}: mix-remote needs OTP {MIN_REMOTE_OTP} or newer on the server"
        )));
    }
    let refused: Vec<(&Beam, Problem)> = closure
        .iter()
        .filter_map(|beam| problem(beam, otp).map(|p| (*beam, p)))
        .collect();
    if let Some((beam, problem)) = refused.first() {
        return Err(refusal(beam, problem, refused.len() - 1, built, otp));
    }
    if otp > NEWEST_KNOWN {
        warnings.push(format!(
            "the remote runs OTP {otp}, newer than this tool's tables (up to OTP {NEWEST_KNOWN}): \
             its loader has the last word"
        ));
    }
    if let Some(local) = local_otp {
        if local < otp {
            let unsupported = if otp >= 29 && local <= 25 {
                format!(" (OTP {otp} no longer supports code compiled by OTP 25 or older)")
            } else {
                String::new()
            };
            warnings.push(format!(
                "built with OTP {local}, the remote runs OTP {otp}: older beams on a newer OTP \
                 usually work{unsupported}; rebuild with OTP {otp} to be sure"
            ));
        } else if local > otp {
            warnings.push(format!(
                "built with OTP {local}, the remote runs OTP {otp}: the modules load, but calls \
                 to OTP functions newer than OTP {otp} fail at run time; rebuild with OTP {otp} \
                 to be sure"
            ));
        }
    }
    if let Some(local) = local_elixir {
        warnings.extend(elixir_warning(local, &remote.elixir));
    }
    Ok(warnings)
}

/// Why one module would be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    /// It needs a newer release than the remote's.
    TooNew {
        /// The first release that loads it.
        needs: u32,
        /// What in the module needs it.
        what: String,
    },
    /// It was compiled with a language feature the remote does not enable.
    Feature {
        /// The feature.
        feature: String,
        /// The first release that enables it by default, if any does.
        since: Option<u32>,
    },
    /// The remote's release no longer loads it.
    TooOld {
        /// What in the module is too old.
        what: String,
    },
}

/// The first reason the loader of release `otp` (from [`MIN_REMOTE_OTP`] on) would refuse `beam`.
fn problem(beam: &Beam, otp: u32) -> Option<Problem> {
    let needs = &beam.needs;
    let known = otp <= NEWEST_KNOWN;
    let max = MAX_OPCODE
        .iter()
        .rev()
        .find(|(release, _)| *release <= otp)
        .map_or(0, |(_, max)| *max);
    let highest = needs.opcodes.highest();
    if known && (needs.declared_max > u32::from(max) || highest > max) {
        let (op, verb) = if highest > max {
            (u32::from(highest), "uses")
        } else {
            (needs.declared_max, "declares")
        };
        let named = u8::try_from(op)
            .ok()
            .and_then(code::name)
            .map_or(String::new(), |n| format!(", {n}"));
        return Some(Problem::TooNew {
            needs: MAX_OPCODE
                .iter()
                .find(|(_, max)| u32::from(*max) >= op)
                .map_or(NEWEST_KNOWN + 1, |(release, _)| *release),
            what: format!("{verb} opcode {op}{named}"),
        });
    }
    if needs.compact_atoms && otp < COMPACT_ATOMS_SINCE {
        return Some(Problem::TooNew {
            needs: COMPACT_ATOMS_SINCE,
            what: "compact atom table".into(),
        });
    }
    // Only code:load_binary/3, which pushes -on_load modules, checks features.
    for feature in needs.features.iter().filter(|_| beam.on_load) {
        let since = FEATURES.iter().find(|(f, _)| f == feature).map(|(_, s)| *s);
        let enabled = match since {
            Some(since) => otp >= since,
            None => !known,
        };
        if !enabled {
            return Some(Problem::Feature {
                feature: feature.clone(),
                since,
            });
        }
    }
    for bif in &needs.bifs {
        if let Some((_, since)) = NEW_BIFS.iter().find(|(b, since)| b == bif && otp < *since) {
            return Some(Problem::TooNew {
                needs: *since,
                what: format!("calls {bif} as a BIF instruction"),
            });
        }
    }
    if let Some((op, _)) = REMOVED
        .iter()
        .find(|(op, since)| otp >= *since && needs.opcodes.contains(*op))
    {
        let name = code::name(*op).unwrap_or("?");
        return Some(Problem::TooOld {
            what: format!("uses opcode {op}, {name}, which OTP {otp} no longer loads"),
        });
    }
    if otp >= OLD_CODE_REFUSED_SINCE && needs.declared_max < OLDEST_DECLARED {
        return Some(Problem::TooOld {
            what: format!(
                "declares opcode {}: built for OTP 22 or older",
                needs.declared_max
            ),
        });
    }
    None
}

/// The one-line refusal for `beam` (and `others` more refused modules).
fn refusal(beam: &Beam, problem: &Problem, others: usize, built: &Built, otp: u32) -> Refusal {
    let module = display_module(&beam.name);
    let more = match others {
        0 => String::new(),
        1 => " (and 1 more module)".into(),
        n => format!(" (and {n} more modules)"),
    };
    let local = built.otp_of(beam);
    Refusal(match problem {
        Problem::TooNew { needs, what } => {
            let (by, upgrade) = if *needs > NEWEST_KNOWN {
                (
                    format!("an OTP newer than {NEWEST_KNOWN}"),
                    "upgrade the remote's OTP".to_owned(),
                )
            } else {
                let by = match local {
                    Some(local) if local >= *needs => format!("OTP {local}"),
                    _ => format!("OTP {needs} or newer"),
                };
                (by, format!("upgrade the remote to OTP {needs} or newer"))
            };
            format!(
                "{module}{more} was compiled by {by} ({what}), the remote runs OTP {otp}: \
                 rebuild with OTP {otp} or {upgrade}"
            )
        }
        Problem::Feature { feature, since } => {
            let by = local.map_or(String::new(), |local| format!(" by OTP {local}"));
            let upgrade = since.map_or(String::new(), |since| {
                format!(" or upgrade the remote to OTP {since} or newer")
            });
            format!(
                "{module}{more} was compiled{by} with the {feature} feature enabled, which the \
                 remote's OTP {otp} does not enable: rebuild with OTP {otp}{upgrade}"
            )
        }
        Problem::TooOld { what } => {
            let by = match local {
                Some(local) if local < otp => format!("OTP {local}"),
                _ => "an older OTP".into(),
            };
            format!(
                "{module}{more} was compiled by {by} ({what}), the remote runs OTP {otp}: \
                 rebuild with OTP {otp}"
            )
        }
    })
}

/// A warning when the local build's Elixir differs from the remote's.
fn elixir_warning(local: &str, remote: &str) -> Option<String> {
    let (Some(l), Some(r)) = (version(local), version(remote)) else {
        return (local != remote).then(|| {
            format!(
                "built with Elixir {local}, the remote runs Elixir {remote}: versions not compared"
            )
        });
    };
    if l == r {
        return None;
    }
    let advice = if (l.0, l.1) == (r.0, r.1) {
        "a different patch release usually works".to_owned()
    } else if (l.0, l.1) < (r.0, r.1) {
        "code from an older Elixir usually runs on a newer one".to_owned()
    } else {
        format!(
            "calls to functions added after Elixir {}.{} fail at run time; rebuild with Elixir \
             {}.{} to be sure",
            r.0, r.1, r.0, r.1
        )
    };
    Some(format!(
        "built with Elixir {local}, the remote runs Elixir {remote}: {advice}"
    ))
}

/// `major.minor.patch` of a version string (`1.18.3`, `1.19.0-rc.1`).
fn version(text: &str) -> Option<(u32, u32, u32)> {
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().unwrap_or(Some(0))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::beam::code::{Needs, Opcodes};

    const APP: &str = "/p/_build/dev/lib/demo";

    /// A module of the app at [`APP`] needing `needs`.
    fn beam(name: &str, needs: Needs) -> Beam {
        Beam {
            name: name.into(),
            atoms: vec![name.into()],
            path: PathBuf::from(format!("{APP}/ebin/{name}.beam")),
            needs,
            ..Beam::default()
        }
    }

    /// Needs of a module that declares `declared` and uses `ops` (plus `int_code_end`).
    fn needs(declared: u32, ops: &[u8]) -> Needs {
        let mut opcodes = Opcodes::default();
        for &op in ops.iter().chain(&[3]) {
            opcodes.insert(op);
        }
        Needs {
            declared_max: declared,
            opcodes,
            ..Needs::default()
        }
    }

    fn built(elixir: &str, otp: &str) -> Built {
        Built {
            apps: vec![(PathBuf::from(APP), elixir.into(), otp.into())],
        }
    }

    fn remote(otp: &str, elixir: &str) -> RemoteVersions {
        RemoteVersions {
            otp_release: otp.into(),
            erts: String::new(),
            elixir: elixir.into(),
        }
    }

    fn check(beams: &[Beam], built: &Built, otp: &str) -> Result<Vec<String>, Refusal> {
        let closure: Vec<&Beam> = beams.iter().collect();
        preflight(&closure, built, &remote(otp, "1.18.3"))
    }

    #[test]
    fn refuses_opcodes_newer_than_the_remote_in_one_line() {
        let worker = beam("Elixir.Demo.Worker", needs(182, &[64, 182]));
        let otp27 = built("1.18.3", "27");
        assert_eq!(
            check(std::slice::from_ref(&worker), &otp27, "25")
                .unwrap_err()
                .0,
            "Demo.Worker was compiled by OTP 27 (uses opcode 182, bs_match), the remote runs \
             OTP 25: rebuild with OTP 25 or upgrade the remote to OTP 26 or newer"
        );
        assert_eq!(
            check(std::slice::from_ref(&worker), &otp27, "27"),
            Ok(vec![])
        );
        // OTP 29's compiler declares 181 without using it; nothing recorded the build's OTP.
        let declared = beam("demo_erl", needs(181, &[64]));
        assert_eq!(
            check(&[declared], &Built::default(), "25").unwrap_err().0,
            ":demo_erl was compiled by OTP 26 or newer (declares opcode 181, update_record), the \
             remote runs OTP 25: rebuild with OTP 25 or upgrade the remote to OTP 26 or newer"
        );
        let many = [
            beam("Elixir.A", needs(183, &[183])),
            beam("Elixir.B", needs(180, &[64])),
            beam("Elixir.C", needs(182, &[182])),
            beam("Elixir.D", needs(185, &[185])),
        ];
        let message = check(&many, &otp27, "25").unwrap_err().0;
        assert!(
            message.starts_with(
                "A (and 2 more modules) was compiled by OTP 27 (uses opcode 183, executable_line)"
            ),
            "{message}"
        );
        let message = check(&many, &otp27, "27").unwrap_err().0;
        assert!(
            message.starts_with("D was compiled by OTP 29 or newer (uses opcode 185, bif3)"),
            "{message}"
        );
        // OTP 25's own record check, which no OTP 24 loader knows.
        let record = beam("Elixir.Rec", needs(180, &[64, 180]));
        assert_eq!(
            check(&[record], &built("1.14.0", "25"), "24")
                .unwrap_err()
                .0,
            "Rec was compiled by OTP 25 (uses opcode 180, badrecord), the remote runs OTP 24: \
             rebuild with OTP 24 or upgrade the remote to OTP 25 or newer"
        );
    }

    #[test]
    fn refuses_compact_atoms_features_and_new_bifs_on_older_releases() {
        let compact = beam(
            "Elixir.New",
            Needs {
                compact_atoms: true,
                ..needs(181, &[64])
            },
        );
        let otp29 = built("1.20.4", "29");
        assert_eq!(
            check(std::slice::from_ref(&compact), &otp29, "27")
                .unwrap_err()
                .0,
            "New was compiled by OTP 29 (compact atom table), the remote runs OTP 27: rebuild \
             with OTP 27 or upgrade the remote to OTP 28 or newer"
        );
        assert!(check(&[compact], &otp29, "29").is_ok());

        let maybe_expr = Needs {
            features: vec!["maybe_expr".into()],
            ..needs(171, &[149, 171])
        };
        let otp27 = built("1.18.3", "27");
        // Without -on_load it goes through code:atomic_load/1, which does not check features.
        let plain = beam("demo_erl", maybe_expr.clone());
        assert!(check(&[plain], &otp27, "25").is_ok());
        let maybe = Beam {
            on_load: true,
            ..beam("demo_onload", maybe_expr)
        };
        assert_eq!(
            check(std::slice::from_ref(&maybe), &otp27, "25")
                .unwrap_err()
                .0,
            ":demo_onload was compiled by OTP 27 with the maybe_expr feature enabled, which the \
             remote's OTP 25 does not enable: rebuild with OTP 25 or upgrade the remote to OTP 27 \
             or newer"
        );
        assert!(check(&[maybe], &otp27, "27").is_ok());
        let experimental = Beam {
            on_load: true,
            ..beam(
                "x",
                Needs {
                    features: vec!["compr_assign".into()],
                    ..needs(181, &[64])
                },
            )
        };
        assert!(check(std::slice::from_ref(&experimental), &otp29, "29").is_err());
        assert!(check(&[experimental], &otp29, "30").is_ok());

        let guard = beam(
            "Elixir.Range",
            Needs {
                bifs: vec!["erlang:hd/1".into(), "erlang:min/2".into()],
                ..needs(171, &[125])
            },
        );
        assert_eq!(
            check(std::slice::from_ref(&guard), &otp27, "25")
                .unwrap_err()
                .0,
            "Range was compiled by OTP 27 (calls erlang:min/2 as a BIF instruction), the remote \
             runs OTP 25: rebuild with OTP 25 or upgrade the remote to OTP 26 or newer"
        );
        assert!(check(&[guard], &otp27, "26").is_ok());
    }

    #[test]
    fn refuses_instructions_newer_releases_no_longer_load() {
        let otp25 = built("1.14.0", "25");
        let test_unit = beam("Elixir.CmEx", needs(178, &[131, 178]));
        assert_eq!(
            check(std::slice::from_ref(&test_unit), &otp25, "29")
                .unwrap_err()
                .0,
            "CmEx was compiled by OTP 25 (uses opcode 131, bs_test_unit, which OTP 29 no longer \
             loads), the remote runs OTP 29: rebuild with OTP 29"
        );
        assert!(check(&[test_unit], &otp25, "27").is_ok());
        let fun2 = beam("test_server_node", needs(180, &[103]));
        assert!(check(std::slice::from_ref(&fun2), &otp25, "25").is_ok());
        assert!(check(&[fun2], &otp25, "27").is_err());
        let ancient = beam("old", needs(153, &[153]));
        assert!(check(std::slice::from_ref(&ancient), &otp25, "25").is_ok());
        let message = check(&[ancient], &otp25, "27").unwrap_err().0;
        assert!(message.contains("built for OTP 22 or older"), "{message}");
    }

    #[test]
    fn warns_about_differences_that_usually_work() {
        let plain = [beam("Elixir.Demo.Worker", needs(178, &[178]))];
        let closure: Vec<&Beam> = plain.iter().collect();
        let warnings =
            preflight(&closure, &built("1.14.0", "25"), &remote("27", "1.18.3")).unwrap();
        assert_eq!(
            warnings,
            [
                "built with OTP 25, the remote runs OTP 27: older beams on a newer OTP usually \
                 work; rebuild with OTP 27 to be sure",
                "built with Elixir 1.14.0, the remote runs Elixir 1.18.3: code from an older \
                 Elixir usually runs on a newer one",
            ]
        );
        let warnings =
            preflight(&closure, &built("1.14.0", "25"), &remote("29", "1.14.2")).unwrap();
        assert!(warnings[0].contains("OTP 29 no longer supports code compiled by OTP 25"));
        assert!(warnings[1].ends_with("a different patch release usually works"));
        let warnings =
            preflight(&closure, &built("1.18.3", "27"), &remote("25", "1.14.0")).unwrap();
        assert!(warnings[0].contains("calls to OTP functions newer than OTP 25 fail"));
        assert!(warnings[1].contains("functions added after Elixir 1.14 fail at run time"));
        assert_eq!(
            preflight(&closure, &built("1.14.0", "25"), &remote("25", "1.14.0")),
            Ok(vec![])
        );
        assert_eq!(
            preflight(&closure, &Built::default(), &remote("25", "1.14.0")),
            Ok(vec![])
        );
        assert_eq!(
            preflight(&closure, &Built::default(), &remote("23", "1.14.0")),
            Err(Refusal(
                "the remote runs OTP 23: mix-remote needs OTP 24 or newer on the server".into()
            ))
        );
        let odd = preflight(&closure, &Built::default(), &remote("R16B", "1.14.0")).unwrap();
        assert!(odd[0].contains("`R16B`"), "{odd:?}");
        let newer = preflight(&closure, &Built::default(), &remote("31", "1.22.0")).unwrap();
        assert!(
            newer[0].contains("newer than this tool's tables"),
            "{newer:?}"
        );
    }

    #[test]
    fn reads_the_versions_mix_records_for_each_app() {
        // compile.elixir_scm as Elixir 1.18.3 on OTP 27 and Elixir 1.20.4 on OTP 29 wrote it.
        let v118 = b"\x83h\x03a\x01h\x02m\x00\x00\x00\x061.18.3k\x00\x0227w\x13Elixir.Mix.SCM.Path";
        let v120 = b"\x83h\x04a\x02h\x02m\x00\x00\x00\x061.20.4k\x00\x0229w\x13Elixir.Mix.SCM.Pathw\x03nil";
        assert_eq!(scm_versions(v118), Some(("1.18.3".into(), "27".into())));
        assert_eq!(scm_versions(v120), Some(("1.20.4".into(), "29".into())));
        assert_eq!(scm_versions(b"\x83a\x01"), None);

        // This machine's mix records this machine's Elixir and OTP.
        let project = testkit::compiled_fixture("demo");
        let ebin = project.join("_build/dev/lib/demo/ebin");
        let worker = crate::build::beam::read(&ebin.join("Elixir.Demo.Worker.beam")).unwrap();
        let built = Built::read(&[&worker]);
        let out = std::process::Command::new("elixir")
            .args([
                "-e",
                "IO.write(System.version() <> \" \" <> System.otp_release())",
            ])
            .output()
            .unwrap();
        let here = String::from_utf8(out.stdout).unwrap();
        let (elixir, otp) = here.split_once(' ').unwrap();
        assert_eq!(built.newest(), (Some(elixir), otp.parse().ok()));
        assert_eq!(built.otp_of(&worker), otp.parse().ok());
    }

    #[test]
    fn reads_versions_as_elixir_writes_them() {
        assert_eq!(version("1.18.3"), Some((1, 18, 3)));
        assert_eq!(version("1.19.0-rc.1"), Some((1, 19, 0)));
        assert_eq!(version("1.20"), Some((1, 20, 0)));
        assert_eq!(version("x.1"), None);
    }
}
