//! The BEAM reader against real compiler output and against hostile input.
//!
//! `tests/vectors/otp<NN>/` holds `.beam` files compiled by OTP 25, 27 and 29 (`cargo xtask
//! beam-vectors`), each with a `.facts` file written by that OTP's own `beam_lib`: the reader must
//! agree with it on every file and every field it decodes. The hostile inputs are those vectors damaged in one place each:
//! the reader must name the file and the fault, never panic, and never allocate in proportion to
//! a number read from the file.

use mix_remote::build::beam::{self, BeamErrorKind};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The system allocator, recording the largest single allocation made by the current thread.
struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Parses `bytes` and returns the result with the largest allocation made meanwhile.
fn parse_measured(bytes: Vec<u8>) -> (Result<beam::Beam, BeamErrorKind>, usize) {
    LARGEST.with(|l| l.set(0));
    let result = beam::parse(Path::new("measured.beam"), bytes);
    (result, LARGEST.with(Cell::get))
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Every committed vector, sorted.
fn vectors() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(vectors_dir())
        .into_iter()
        .map(|e| e.expect("tests/vectors is readable").into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "beam"))
        .collect();
    out.sort();
    out
}

fn vector(rel: &str) -> Vec<u8> {
    let path = vectors_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The facts `beam_lib` recorded for one vector: each line's key with its tab-separated fields.
struct Facts(BTreeMap<String, Vec<Vec<String>>>);

impl Facts {
    fn read(beam: &Path) -> Facts {
        let path = beam.with_extension("facts");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run cargo xtask beam-vectors)", path.display()));
        let mut map: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        for line in text.lines() {
            let mut fields = line.split('\t').map(str::to_owned);
            let key = fields.next().expect("split yields at least one field");
            map.entry(key).or_default().push(fields.collect());
        }
        Facts(map)
    }

    /// The single field of every line with this key.
    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .get(key)
            .map(|lines| lines.iter().map(|f| f.join("\t")).collect())
            .unwrap_or_default()
    }

    /// The single field of the one line with this key.
    fn one(&self, key: &str) -> String {
        match self.all(key).as_slice() {
            [value] => value.clone(),
            other => panic!("expected one {key} fact, found {other:?}"),
        }
    }
}

#[test]
fn reader_agrees_with_beam_lib_on_every_vector() {
    let mut releases = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for path in vectors() {
        let facts = Facts::read(&path);
        let shown = path.display();
        let beam = beam::read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(beam.name, facts.one("module"), "{shown}");
        assert_eq!(beam.atoms, facts.all("atom"), "{shown}");
        let mut exports: Vec<String> = beam
            .exports
            .iter()
            .map(|(f, a)| format!("{f}\t{a}"))
            .collect();
        let mut expected = facts.all("export");
        exports.sort();
        expected.sort();
        assert_eq!(exports, expected, "{shown}");
        let mut imports: Vec<String> = facts
            .all("import")
            .iter()
            .map(|mfa| mfa.split('\t').next().unwrap_or_default().to_owned())
            .collect();
        imports.sort();
        imports.dedup();
        assert_eq!(beam.imports, imports, "{shown}");
        assert_eq!(beam.literal_atoms, facts.all("literal_atom"), "{shown}");
        assert_eq!(beam.behaviours, facts.all("behaviour"), "{shown}");
        assert_eq!(beam.is_protocol, facts.one("protocol") == "yes", "{shown}");
        let implements = beam
            .implements
            .as_ref()
            .map(|i| format!("{}\t{}", i.protocol, i.for_type));
        assert_eq!(implements, facts.all("impl").pop(), "{shown}");
        assert_eq!(
            beam.compiler_version,
            facts.all("compiler_version").pop(),
            "{shown}"
        );
        assert_eq!(beam.bytes, std::fs::read(&path).unwrap(), "{shown}");

        releases.insert(facts.one("otp_release"));
        seen.insert(format!("atom_layout {}", facts.one("atom_layout")));
        seen.insert(format!("gzip {}", facts.one("gzip")));
        seen.insert(format!("literal_table {}", facts.one("literal_table")));
        if facts.one("atom_layout") == "compact" && beam.atoms.iter().any(|a| a.len() >= 16) {
            seen.insert("compact two-byte atom length".to_owned());
        }
        if facts
            .all("chunk")
            .iter()
            .all(|c| c != "Attr" && c != "CInf")
        {
            seen.insert("stripped".to_owned());
        }
    }
    assert_eq!(
        releases,
        BTreeSet::from(["25", "27", "29"].map(String::from))
    );
    let wanted = [
        "atom_layout classic",
        "atom_layout compact",
        "compact two-byte atom length",
        "gzip no",
        "gzip yes",
        "literal_table absent",
        "literal_table plain",
        "literal_table zlib",
        "stripped",
    ];
    assert_eq!(seen, BTreeSet::from(wanted.map(String::from)));
}

/// Where the data of the first chunk `id` starts in a plain container.
fn chunk_data(bytes: &[u8], id: &[u8; 4]) -> usize {
    let mut at = 12;
    loop {
        let size = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if &bytes[at..at + 4] == id {
            return at + 8;
        }
        at += 8 + size.next_multiple_of(4);
    }
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// Writes `bytes` to a file named `name` and reads it back: the error must start with the path.
fn read_error(dir: &Path, name: &str, bytes: &[u8]) -> (BeamErrorKind, String) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    match beam::read(&path) {
        Ok(b) => panic!("{name}: read as module {}", b.name),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.starts_with(&format!("{}: ", path.display())),
                "{message}"
            );
            (e.kind, message)
        }
    }
}

#[test]
fn wrong_magic_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = vector("otp25/vec_on_load.beam");
    let mut cases = vec![
        ("empty.beam", Vec::new()),
        ("text.beam", b"defmodule A do end\n".to_vec()),
    ];
    let mut form = good.clone();
    form[0..4].copy_from_slice(b"FORM");
    cases.push(("form.beam", form));
    let mut kind = good.clone();
    kind[8..12].copy_from_slice(b"BEAN");
    cases.push(("bean.beam", kind));
    for (name, bytes) in cases {
        let (kind, message) = read_error(dir.path(), name, &bytes);
        assert!(matches!(kind, BeamErrorKind::BadMagic), "{message}");
        assert!(
            message.ends_with("not a BEAM file (bad magic)"),
            "{message}"
        );
    }
}

#[test]
fn sizes_past_the_end_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = vector("otp29/vec_on_load.beam");

    let mut container = good.clone();
    put_u32(&mut container, 4, good.len() as u32);
    let (kind, message) = read_error(dir.path(), "container.beam", &container);
    assert!(
        matches!(kind, BeamErrorKind::Truncated("container")),
        "{message}"
    );

    for id in [b"AtU8", b"ExpT", b"Code"] {
        let mut chunk = good.clone();
        put_u32(&mut chunk, chunk_data(&good, id) - 4, u32::MAX);
        let (kind, message) = read_error(dir.path(), "chunk.beam", &chunk);
        assert!(
            matches!(kind, BeamErrorKind::Truncated("chunk")),
            "{message}"
        );
    }
}

#[test]
fn huge_counts_are_refused_without_allocating_for_them() {
    for (rel, id, count) in [
        ("otp25/vec_on_load.beam", b"AtU8", 0x7fff_ffff),
        ("otp29/vec_on_load.beam", b"AtU8", 0x8000_0000),
        ("otp29/vec_on_load.beam", b"AtU8", 0x8000_0001),
        ("otp27/vec_literals.beam", b"ExpT", u32::MAX),
    ] {
        let mut bytes = vector(rel);
        let at = chunk_data(&bytes, id);
        put_u32(&mut bytes, at, count);
        let (result, largest) = parse_measured(bytes);
        assert!(
            matches!(result, Err(BeamErrorKind::Truncated(_))),
            "{rel} {count:#x}: {result:?}"
        );
        assert!(
            largest < 64 << 10,
            "{rel} {count:#x}: allocated {largest} bytes"
        );
    }
}

#[test]
fn invalid_utf8_atom_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // In both layouts "vec_on_load" (11 bytes) has a one-byte length after the 4-byte count.
    for rel in ["otp25/vec_on_load.beam", "otp29/vec_on_load.beam"] {
        let mut bytes = vector(rel);
        let first_atom = chunk_data(&bytes, b"AtU8") + 5;
        bytes[first_atom + 3] = 0xff;
        let (kind, message) = read_error(dir.path(), "utf8.beam", &bytes);
        assert!(
            matches!(kind, BeamErrorKind::BadAtom(1)),
            "{rel}: {message}"
        );
    }
}

#[test]
fn corrupt_literal_table_is_refused_without_allocating_for_it() {
    let zlib = vector("otp25/vec_literals.beam");
    let lit = chunk_data(&zlib, b"LitT");
    let mut flipped = zlib.clone();
    flipped[lit + 12] ^= 0x55;
    let mut huge_size = zlib.clone();
    put_u32(&mut huge_size, lit, u32::MAX);
    let mut small_size = zlib.clone();
    put_u32(&mut small_size, lit, 10);
    let plain = vector("otp29/vec_literals.beam");
    let lit29 = chunk_data(&plain, b"LitT");
    let mut huge_count = plain.clone();
    put_u32(&mut huge_count, lit29 + 4, u32::MAX);
    let mut huge_term = plain.clone();
    put_u32(&mut huge_term, lit29 + 8, u32::MAX);
    for (what, bytes) in [
        ("flipped zlib byte", flipped),
        ("inflated size 4 GiB", huge_size),
        ("inflated size too small", small_size),
        ("literal count 2^32-1", huge_count),
        ("literal size 2^32-1", huge_term),
    ] {
        let (result, largest) = parse_measured(bytes);
        let message = match result {
            Ok(_) => panic!("{what}: parsed"),
            Err(e) => e.to_string(),
        };
        assert!(message.contains("literal table"), "{what}: {message}");
        assert!(largest < 64 << 10, "{what}: allocated {largest} bytes");
    }
}

#[test]
fn corrupt_attribute_term_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = vector("otp27/vec_literals.beam");
    let attr = chunk_data(&bytes, b"Attr");
    bytes[attr] = 130;
    let (kind, message) = read_error(dir.path(), "attr.beam", &bytes);
    assert!(
        matches!(kind, BeamErrorKind::Term("attributes", _)),
        "{message}"
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn corrupt_gzip_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = vector("otp27/compressed/vec_literals.beam");
    let mut cases = vec![("header only", good[..10].to_vec())];
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x55;
    cases.push(("flipped deflate byte", flipped));
    let mut crc = good.clone();
    let at = good.len() - 8;
    crc[at] ^= 0x01;
    cases.push(("wrong checksum", crc));
    for (what, bytes) in cases {
        let (kind, message) = read_error(dir.path(), "gz.beam", &bytes);
        assert!(matches!(kind, BeamErrorKind::Gzip(_)), "{what}: {message}");
        assert!(message.contains("corrupt gzip compression"), "{message}");
    }
    let (kind, message) = read_error(dir.path(), "gz.beam", &gzip(b"not a beam inside"));
    assert!(matches!(kind, BeamErrorKind::BadMagic), "{message}");
}

#[test]
fn gzip_expanding_past_its_trailer_or_the_limit_is_refused_early() {
    let bomb = gzip(&vec![0; 4 << 20]);
    let at = bomb.len() - 4;

    let mut lying = bomb.clone();
    lying[at..].copy_from_slice(&1000u32.to_le_bytes());
    let (result, largest) = parse_measured(lying);
    assert!(matches!(result, Err(BeamErrorKind::Gzip(_))), "{result:?}");
    assert!(
        largest < 1 << 20,
        "inflated {largest} bytes of a 1000-byte claim"
    );

    let mut huge = bomb;
    huge[at..].copy_from_slice(&u32::MAX.to_le_bytes());
    let (result, largest) = parse_measured(huge);
    let message = format!("{:?}", result.unwrap_err());
    assert!(message.contains("over the limit"), "{message}");
    assert!(largest < 1 << 20, "allocated {largest} bytes");
}

#[test]
fn every_truncation_of_every_vector_is_an_error() {
    for path in vectors() {
        let bytes = std::fs::read(&path).unwrap();
        for cut in 0..bytes.len() {
            let result = beam::parse(&path, bytes[..cut].to_vec());
            assert!(result.is_err(), "{} cut at {cut} parsed", path.display());
        }
    }
}

#[test]
fn truncated_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "otp29/vec_on_load.beam",
        "otp25/compressed/vec_literals.beam",
    ] {
        let bytes = vector(rel);
        for cut in 0..bytes.len() {
            read_error(dir.path(), &format!("cut-{cut}.beam"), &bytes[..cut]);
        }
    }
}
