//! What a module's loader will check, read from its chunks: the instructions of the Code chunk
//! (walked one by one, so `-on_load`, which is an instruction and not an attribute, is found, and
//! so is every opcode the module uses and every BIF its BIF instructions call), the header's
//! declared highest opcode, the atom table's layout and the language features the module was
//! compiled with (Meta chunk). `crate::build::compat` turns these into a verdict for a remote release.
//!
//! Instructions are an opcode byte followed by as many operands as the opcode's arity, each in
//! the compact term encoding (a 3-bit tag and a value of 4, 11 or 2+ bytes), where the extended
//! tag adds lists, floating-point registers, allocation lists, literals and typed registers.
//! Every count and length is checked against the bytes present: hostile input is an error.

use super::{BeamErrorKind, Cursor, atoms_of, keyword, term};

/// The `int_code_end` instruction, which ends the Code chunk.
const INT_CODE_END: u8 = 3;
/// The `on_load` instruction the compiler emits for `-on_load` (Erlang) and `@on_load` (Elixir).
const ON_LOAD: u8 = 149;
/// The highest opcode this table knows (OTP 29's).
pub const KNOWN_MAX: u8 = OPS.len() as u8;

/// What a runtime's loader must support to load a module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// The highest opcode the Code chunk's header declares; a loader refuses a module that
    /// declares more than it knows, and compilers declare more than they use to keep old
    /// runtimes out (OTP 29's compiler declares at least 181).
    pub declared_max: u32,
    /// Every opcode the instructions use; an opcode beyond [`KNOWN_MAX`] ends the walk there.
    pub opcodes: Opcodes,
    /// The BIFs that BIF instructions call (`erlang:min/2`), sorted: the loader refuses a BIF
    /// instruction for a function that is not a BIF in its release.
    pub bifs: Vec<String>,
    /// The atom table has OTP 28's compact layout, which OTP 27 and older reject.
    pub compact_atoms: bool,
    /// Language features enabled when the module was compiled (Meta chunk); `code:load_binary/3`
    /// (not `code:atomic_load/1`) requires the runtime to have each enabled too.
    pub features: Vec<String>,
}

/// A set of opcodes (0..=255).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Opcodes([u64; 4]);

impl Opcodes {
    /// Adds `op`.
    pub(crate) fn insert(&mut self, op: u8) {
        self.0[usize::from(op / 64)] |= 1 << (op % 64);
    }

    /// Whether the module uses `op`.
    pub fn contains(&self, op: u8) -> bool {
        self.0[usize::from(op / 64)] & (1 << (op % 64)) != 0
    }

    /// The used opcodes, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=255u8).filter(|&op| self.contains(op))
    }

    /// The highest opcode used (0 for an empty set).
    pub fn highest(&self) -> u8 {
        self.iter().last().unwrap_or(0)
    }
}

impl std::fmt::Debug for Opcodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The name of opcode `op` as OTP's `beam_opcodes:opname/1` gives it, for messages.
pub fn name(op: u8) -> Option<&'static str> {
    OPS.get(usize::from(op).wrapping_sub(1))
        .map(|(name, _)| *name)
}

/// Reads the chunks the loader checks (Code, AtU8, ImpT, Meta, through `find`; `atoms` is the
/// decoded atom table): whether the module has `-on_load`, and its needs.
pub(super) fn read<'a>(
    find: impl Fn(&[u8; 4]) -> Option<&'a [u8]>,
    atoms: &[String],
) -> Result<(bool, Needs), BeamErrorKind> {
    let mut cur = Cursor {
        data: find(b"Code").ok_or(BeamErrorKind::MissingChunk("Code"))?,
        what: "Code chunk",
    };
    let header_size = cur.u32()? as usize;
    let mut header = Cursor {
        data: cur.take(header_size)?,
        what: "Code chunk header",
    };
    if header.u32()? != 0 {
        return Err(BeamErrorKind::Malformed(
            "Code chunk (unknown instruction set)",
        ));
    }
    let declared_max = header.u32()?;
    let (on_load, opcodes, bif_imports) = walk(cur.data)?;
    let bifs = match (bif_imports.is_empty(), find(b"ImpT")) {
        (true, _) => Vec::new(),
        (false, Some(imports)) => bif_names(imports, atoms, &bif_imports)?,
        (false, None) => return Err(BeamErrorKind::MissingChunk("ImpT")),
    };
    let compact_atoms = find(b"AtU8")
        .and_then(|a| a.get(..4))
        .is_some_and(|count| count[0] & 0x80 != 0);
    let features = match find(b"Meta") {
        Some(data) => enabled_features(data)?,
        None => Vec::new(),
    };
    Ok((
        on_load,
        Needs {
            declared_max,
            opcodes,
            bifs,
            compact_atoms,
            features,
        },
    ))
}

/// Walks the instructions up to `int_code_end`, or to an opcode this table does not know;
/// returns whether `on_load` occurs, the opcodes used and the import indices of the BIFs called
/// by BIF instructions.
fn walk(code: &[u8]) -> Result<(bool, Opcodes, Vec<usize>), BeamErrorKind> {
    let mut walker = Walker { code, pos: 0 };
    let mut opcodes = Opcodes::default();
    let mut on_load = false;
    let mut bifs = Vec::new();
    loop {
        let op = walker.byte()?;
        opcodes.insert(op);
        if op == INT_CODE_END {
            return Ok((on_load, opcodes, bifs));
        }
        on_load |= op == ON_LOAD;
        let arity = match OPS.get(usize::from(op).wrapping_sub(1)) {
            Some((_, arity)) => *arity,
            None if op == 0 => return Err(malformed("Code chunk (opcode 0)").into()),
            // A newer OTP's instruction: its operands cannot be skipped, and it alone decides.
            None => return Ok((on_load, opcodes, bifs)),
        };
        let bif_operand = bif_operand(op);
        for index in 0..arity {
            let value = walker.operand(0)?;
            if Some(index) == bif_operand {
                bifs.push(value.ok_or(malformed("Code chunk (BIF operand)"))?);
            }
        }
    }
}

/// Which operand of a BIF instruction names the BIF (an index into the import table): the
/// first of `bif0` (9), the second of `bif1` (10), `bif2` (11) and `bif3` (185), the third of
/// `gc_bif1` (124), `gc_bif2` (125) and `gc_bif3` (152).
fn bif_operand(op: u8) -> Option<u8> {
    match op {
        9 => Some(0),
        10 | 11 | 185 => Some(1),
        124 | 125 | 152 => Some(2),
        _ => None,
    }
}

/// The BIFs at `indices` of the import table (ImpT: a count, then module, function and arity
/// per entry, atoms numbered from 1), as `module:function/arity`, sorted and deduplicated.
fn bif_names(
    imports: &[u8],
    atoms: &[String],
    indices: &[usize],
) -> Result<Vec<String>, BeamErrorKind> {
    let mut cur = Cursor {
        data: imports,
        what: "import table",
    };
    let count = cur.u32()? as usize;
    let entries = cur.take(
        count
            .checked_mul(12)
            .ok_or(BeamErrorKind::Truncated("import table"))?,
    )?;
    let atom = |index: u32| {
        atoms
            .get((index as usize).wrapping_sub(1))
            .ok_or(BeamErrorKind::BadAtomIndex("import table", index))
    };
    let mut indices = indices.to_vec();
    indices.sort_unstable();
    indices.dedup();
    let mut out = Vec::with_capacity(indices.len());
    for i in indices {
        let entry = i
            .checked_mul(12)
            .and_then(|start| entries.get(start..start.checked_add(12)?))
            .ok_or(BeamErrorKind::Malformed(
                "Code chunk (BIF beyond the import table)",
            ))?;
        let word =
            |k: usize| u32::from_be_bytes([entry[k], entry[k + 1], entry[k + 2], entry[k + 3]]);
        out.push(format!("{}:{}/{}", atom(word(0))?, atom(word(4))?, word(8)));
    }
    out.sort();
    Ok(out)
}

/// Operand tags of the compact term encoding.
const TAG_U: u8 = 0;
const TAG_X: u8 = 3;
const TAG_Y: u8 = 4;
const TAG_Z: u8 = 7;

/// Lists hold plain operands; anything nested deeper than this is not a compiler's output.
const MAX_DEPTH: usize = 2;

/// Why the instruction stream cannot be walked; small, so the hot path returns it cheaply.
#[derive(Debug, Clone, Copy)]
enum WalkError {
    /// The stream ends inside an instruction, or a count exceeds what remains.
    Truncated,
    /// The bytes break the encoding.
    Malformed(&'static str),
}

/// A malformation, named as [`BeamErrorKind::Malformed`] shows it.
fn malformed(what: &'static str) -> WalkError {
    WalkError::Malformed(what)
}

impl From<WalkError> for BeamErrorKind {
    fn from(e: WalkError) -> BeamErrorKind {
        match e {
            WalkError::Truncated => BeamErrorKind::Truncated("Code chunk"),
            WalkError::Malformed(what) => BeamErrorKind::Malformed(what),
        }
    }
}

/// A position in the instruction stream.
struct Walker<'a> {
    code: &'a [u8],
    pos: usize,
}

impl Walker<'_> {
    #[inline]
    fn byte(&mut self) -> Result<u8, WalkError> {
        let b = *self.code.get(self.pos).ok_or(WalkError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn skip(&mut self, n: usize) -> Result<&[u8], WalkError> {
        let end = self.pos.checked_add(n).ok_or(WalkError::Truncated)?;
        let bytes = self.code.get(self.pos..end).ok_or(WalkError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    /// Skips one operand, extended forms included; returns the value of a plain unsigned.
    #[inline(always)]
    fn operand(&mut self, depth: usize) -> Result<Option<usize>, WalkError> {
        let first = self.byte()?;
        let tag = first & 7;
        // Most operands are one byte: a small register, atom, label or unsigned.
        if first & 0x08 == 0 && tag != TAG_Z {
            return Ok((tag == TAG_U).then_some(usize::from(first >> 4)));
        }
        let value = self.term_from(first)?;
        if tag != TAG_Z {
            return Ok(value
                .filter(|_| tag == TAG_U)
                .and_then(|v| usize::try_from(v).ok()));
        }
        self.extended(value, depth).map(|()| None)
    }

    /// Skips what follows an extended tag (`z`) of value `value`.
    fn extended(&mut self, value: Option<u64>, depth: usize) -> Result<(), WalkError> {
        match value {
            // An inline float (before literals existed): 8 bytes.
            Some(0) => self.skip(8).map(drop),
            Some(1) => {
                if depth >= MAX_DEPTH {
                    return Err(malformed("Code chunk (nested lists)"));
                }
                let n = self.count(1)?;
                (0..n).try_for_each(|_| self.operand(depth + 1).map(drop))
            }
            // A floating-point register, a literal: one unsigned.
            Some(2 | 4) => self.unsigned().map(drop),
            // An allocation list: pairs of unsigned (kind, amount).
            Some(3) => {
                let n = self.count(2)?;
                (0..2 * n).try_for_each(|_| self.unsigned().map(drop))
            }
            // A typed register: an x or y register, then an index into the Type chunk.
            Some(5) => {
                let (reg, _) = self.term()?;
                if reg != TAG_X && reg != TAG_Y {
                    return Err(malformed("Code chunk (typed register)"));
                }
                self.unsigned().map(drop)
            }
            _ => Err(malformed("Code chunk (extended tag)")),
        }
    }

    /// Reads one tag and its value; values wider than 64 bits (big integers) come back `None`.
    fn term(&mut self) -> Result<(u8, Option<u64>), WalkError> {
        let first = self.byte()?;
        Ok((first & 7, self.term_from(first)?))
    }

    /// The value of the operand whose first byte is `first`.
    #[inline(always)]
    fn term_from(&mut self, first: u8) -> Result<Option<u64>, WalkError> {
        if first & 0x08 == 0 {
            return Ok(Some(u64::from(first >> 4)));
        }
        if first & 0x10 == 0 {
            let low = self.byte()?;
            return Ok(Some((u64::from(first & 0xE0) << 3) | u64::from(low)));
        }
        self.long_value(first)
    }

    /// A value of 2 to 8 bytes, or longer with its length encoded as an unsigned (big integers).
    #[cold]
    fn long_value(&mut self, first: u8) -> Result<Option<u64>, WalkError> {
        let len = match first >> 5 {
            7 => self.unsigned()?.saturating_add(9),
            n => usize::from(n) + 2,
        };
        let bytes = self.skip(len)?;
        Ok((len <= 8).then(|| bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b))))
    }

    /// Reads an operand that must be an unsigned (tag u) small enough to count with.
    fn unsigned(&mut self) -> Result<usize, WalkError> {
        match self.term()? {
            (TAG_U, Some(v)) => {
                usize::try_from(v).map_err(|_| malformed("Code chunk (count too large)"))
            }
            _ => Err(malformed("Code chunk (expected an unsigned)")),
        }
    }

    /// Reads a count of items taking at least `min_bytes` each, checked against what remains.
    fn count(&mut self, min_bytes: usize) -> Result<usize, WalkError> {
        let n = self.unsigned()?;
        if n.saturating_mul(min_bytes) > self.code.len() - self.pos {
            return Err(WalkError::Truncated);
        }
        Ok(n)
    }
}

/// The features listed under `enabled_features` in the Meta chunk, `[{enabled_features, [...]}]`.
fn enabled_features(data: &[u8]) -> Result<Vec<String>, BeamErrorKind> {
    let meta = term::decode(data).map_err(|e| BeamErrorKind::Term("Meta chunk", e))?;
    Ok(keyword(&meta, "enabled_features")
        .map(atoms_of)
        .unwrap_or_default())
}

/// Name and arity of opcodes 1..=191, as `beam_opcodes:opname/1` of OTP 29 gives them; OTP 25
/// knows 1..=180 and OTP 27 1..=183, with the same names and arities (observed in each).
const OPS: [(&str, u8); 191] = [
    ("label", 1),
    ("func_info", 3),
    ("int_code_end", 0),
    ("call", 2),
    ("call_last", 3),
    ("call_only", 2),
    ("call_ext", 2),
    ("call_ext_last", 3),
    ("bif0", 2),
    ("bif1", 4),
    ("bif2", 5),
    ("allocate", 2),
    ("allocate_heap", 3),
    ("allocate_zero", 2),
    ("allocate_heap_zero", 3),
    ("test_heap", 2),
    ("init", 1),
    ("deallocate", 1),
    ("return", 0),
    ("send", 0),
    ("remove_message", 0),
    ("timeout", 0),
    ("loop_rec", 2),
    ("loop_rec_end", 1),
    ("wait", 1),
    ("wait_timeout", 2),
    ("m_plus", 4),
    ("m_minus", 4),
    ("m_times", 4),
    ("m_div", 4),
    ("int_div", 4),
    ("int_rem", 4),
    ("int_band", 4),
    ("int_bor", 4),
    ("int_bxor", 4),
    ("int_bsl", 4),
    ("int_bsr", 4),
    ("int_bnot", 3),
    ("is_lt", 3),
    ("is_ge", 3),
    ("is_eq", 3),
    ("is_ne", 3),
    ("is_eq_exact", 3),
    ("is_ne_exact", 3),
    ("is_integer", 2),
    ("is_float", 2),
    ("is_number", 2),
    ("is_atom", 2),
    ("is_pid", 2),
    ("is_reference", 2),
    ("is_port", 2),
    ("is_nil", 2),
    ("is_binary", 2),
    ("is_constant", 2),
    ("is_list", 2),
    ("is_nonempty_list", 2),
    ("is_tuple", 2),
    ("test_arity", 3),
    ("select_val", 3),
    ("select_tuple_arity", 3),
    ("jump", 1),
    ("catch", 2),
    ("catch_end", 1),
    ("move", 2),
    ("get_list", 3),
    ("get_tuple_element", 3),
    ("set_tuple_element", 3),
    ("put_string", 3),
    ("put_list", 3),
    ("put_tuple", 2),
    ("put", 1),
    ("badmatch", 1),
    ("if_end", 0),
    ("case_end", 1),
    ("call_fun", 1),
    ("make_fun", 3),
    ("is_function", 2),
    ("call_ext_only", 2),
    ("bs_start_match", 2),
    ("bs_get_integer", 5),
    ("bs_get_float", 5),
    ("bs_get_binary", 5),
    ("bs_skip_bits", 4),
    ("bs_test_tail", 2),
    ("bs_save", 1),
    ("bs_restore", 1),
    ("bs_init", 2),
    ("bs_final", 2),
    ("bs_put_integer", 5),
    ("bs_put_binary", 5),
    ("bs_put_float", 5),
    ("bs_put_string", 2),
    ("bs_need_buf", 1),
    ("fclearerror", 0),
    ("fcheckerror", 1),
    ("fmove", 2),
    ("fconv", 2),
    ("fadd", 4),
    ("fsub", 4),
    ("fmul", 4),
    ("fdiv", 4),
    ("fnegate", 3),
    ("make_fun2", 1),
    ("try", 2),
    ("try_end", 1),
    ("try_case", 1),
    ("try_case_end", 1),
    ("raise", 2),
    ("bs_init2", 6),
    ("bs_bits_to_bytes", 3),
    ("bs_add", 5),
    ("apply", 1),
    ("apply_last", 2),
    ("is_boolean", 2),
    ("is_function2", 3),
    ("bs_start_match2", 5),
    ("bs_get_integer2", 7),
    ("bs_get_float2", 7),
    ("bs_get_binary2", 7),
    ("bs_skip_bits2", 5),
    ("bs_test_tail2", 3),
    ("bs_save2", 2),
    ("bs_restore2", 2),
    ("gc_bif1", 5),
    ("gc_bif2", 6),
    ("bs_final2", 2),
    ("bs_bits_to_bytes2", 2),
    ("put_literal", 2),
    ("is_bitstr", 2),
    ("bs_context_to_binary", 1),
    ("bs_test_unit", 3),
    ("bs_match_string", 4),
    ("bs_init_writable", 0),
    ("bs_append", 8),
    ("bs_private_append", 6),
    ("trim", 2),
    ("bs_init_bits", 6),
    ("bs_get_utf8", 5),
    ("bs_skip_utf8", 4),
    ("bs_get_utf16", 5),
    ("bs_skip_utf16", 4),
    ("bs_get_utf32", 5),
    ("bs_skip_utf32", 4),
    ("bs_utf8_size", 3),
    ("bs_put_utf8", 3),
    ("bs_utf16_size", 3),
    ("bs_put_utf16", 3),
    ("bs_put_utf32", 3),
    ("on_load", 0),
    ("recv_mark", 1),
    ("recv_set", 1),
    ("gc_bif3", 7),
    ("line", 1),
    ("put_map_assoc", 5),
    ("put_map_exact", 5),
    ("is_map", 2),
    ("has_map_fields", 3),
    ("get_map_elements", 3),
    ("is_tagged_tuple", 4),
    ("build_stacktrace", 0),
    ("raw_raise", 0),
    ("get_hd", 2),
    ("get_tl", 2),
    ("put_tuple2", 2),
    ("bs_get_tail", 3),
    ("bs_start_match3", 4),
    ("bs_get_position", 3),
    ("bs_set_position", 2),
    ("swap", 2),
    ("bs_start_match4", 4),
    ("make_fun3", 3),
    ("init_yregs", 1),
    ("recv_marker_bind", 2),
    ("recv_marker_clear", 1),
    ("recv_marker_reserve", 1),
    ("recv_marker_use", 1),
    ("bs_create_bin", 6),
    ("call_fun2", 3),
    ("nif_start", 0),
    ("badrecord", 1),
    ("update_record", 5),
    ("bs_match", 3),
    ("executable_line", 2),
    ("debug_line", 4),
    ("bif3", 6),
    ("is_any_native_record", 2),
    ("is_native_record", 4),
    ("get_record_elements", 3),
    ("put_record", 6),
    ("is_record_accessible", 3),
    ("get_record_field", 5),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// The compact encoding of `value` with `tag`, in the shortest form, as compilers write it.
    fn enc(tag: u8, value: u64) -> Vec<u8> {
        if value < 16 {
            vec![(value as u8) << 4 | tag]
        } else if value < 2048 {
            vec![((value >> 3) as u8 & 0xE0) | 0x08 | tag, value as u8]
        } else {
            let bytes: Vec<u8> = value
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            let mut out = if bytes.len() <= 8 {
                vec![(((bytes.len() - 2) as u8) << 5) | 0x18 | tag]
            } else {
                unreachable!("values here fit in 8 bytes")
            };
            out.extend(bytes);
            out
        }
    }

    /// A Code chunk declaring `max` whose instructions are `body`, ended by `int_code_end`.
    fn code(max: u32, body: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = [16, 0, max, 0, 0]
            .iter()
            .flat_map(|v: &u32| v.to_be_bytes())
            .collect();
        out.extend_from_slice(body);
        out.push(INT_CODE_END);
        out
    }

    fn read_code(
        code: &[u8],
        atoms: Option<&[u8]>,
        meta: Option<&[u8]>,
    ) -> Result<(bool, Needs), BeamErrorKind> {
        let find = |id: &[u8; 4]| match id {
            b"Code" => Some(code),
            b"AtU8" => atoms,
            b"Meta" => meta,
            _ => None,
        };
        read(find, &[])
    }

    fn op(name: &str) -> u8 {
        (1..=KNOWN_MAX)
            .find(|&op| super::name(op) == Some(name))
            .unwrap()
    }

    #[test]
    fn walks_every_operand_form_and_finds_on_load() {
        let mut body = vec![op("label")];
        body.extend(enc(TAG_U, 1));
        // select_val x0, f1, {list, [atom 1, f2, integer 300, f3, big integer, f4]}
        body.push(op("select_val"));
        body.extend(enc(TAG_X, 0));
        body.extend(enc(5, 1));
        body.extend(enc(TAG_Z, 1));
        body.extend(enc(TAG_U, 6));
        body.extend(enc(2, 1));
        body.extend(enc(5, 2));
        body.extend(enc(1, 300));
        body.extend(enc(5, 3));
        // An integer of 12 bytes: length-of-length form, 12 - 9 = 3 as a nested unsigned.
        body.push(0b1111_1001);
        body.extend(enc(TAG_U, 3));
        body.extend([0xAB; 12]);
        body.extend(enc(5, 4));
        // test_heap {alloc, [{words, 3}, {floats, 0}]}, 1
        body.push(op("test_heap"));
        body.extend(enc(TAG_Z, 3));
        body.extend(enc(TAG_U, 2));
        body.extend([enc(TAG_U, 0), enc(TAG_U, 3), enc(TAG_U, 1), enc(TAG_U, 0)].concat());
        body.extend(enc(TAG_U, 1));
        // move {literal, 2000}, {tr, y1, type 7}
        body.push(op("move"));
        body.extend(enc(TAG_Z, 4));
        body.extend(enc(TAG_U, 2000));
        body.extend(enc(TAG_Z, 5));
        body.extend(enc(TAG_Y, 1));
        body.extend(enc(TAG_U, 7));
        // fmove {fr, 0}, x1
        body.push(op("fmove"));
        body.extend(enc(TAG_Z, 2));
        body.extend(enc(TAG_U, 0));
        body.extend(enc(TAG_X, 1));
        body.push(ON_LOAD);
        body.push(op("return"));
        let (on_load, needs) = read_code(&code(160, &body), None, None).unwrap();
        assert!(on_load);
        assert_eq!(needs.declared_max, 160);
        let used: Vec<u8> = needs.opcodes.iter().collect();
        let mut expected = vec![
            op("label"),
            op("select_val"),
            op("test_heap"),
            op("move"),
            op("fmove"),
            ON_LOAD,
            op("return"),
            INT_CODE_END,
        ];
        expected.sort();
        assert_eq!(used, expected);
        assert_eq!(needs.opcodes.highest(), op("select_val").max(ON_LOAD));

        // Every prefix is an error, never a panic.
        let full = code(160, &body);
        for cut in 0..full.len() {
            assert!(
                read_code(&full[..cut], None, None).is_err(),
                "prefix {cut} accepted"
            );
        }
    }

    #[test]
    fn rejects_hostile_code_without_panicking() {
        let bad = |body: &[u8]| read_code(&code(180, body), None, None).unwrap_err();
        // A list claiming more elements than there are bytes.
        let mut list = vec![op("put_tuple2")];
        list.extend(enc(TAG_X, 0));
        list.extend(enc(TAG_Z, 1));
        list.extend(enc(TAG_U, 1_000_000));
        assert!(matches!(bad(&list), BeamErrorKind::Truncated(_)));
        // A list inside a list inside a list.
        let mut nested = vec![op("put_tuple2")];
        nested.extend(enc(TAG_X, 0));
        nested.extend([enc(TAG_Z, 1), enc(TAG_U, 1)].concat().repeat(3));
        nested.extend(enc(TAG_X, 0));
        assert!(matches!(bad(&nested), BeamErrorKind::Malformed(_)));
        // A typed register that is not a register; an unknown extended tag; opcode 0.
        let mut typed = vec![op("move")];
        typed.extend([enc(TAG_Z, 5), enc(1, 3), enc(TAG_U, 0), enc(TAG_X, 0)].concat());
        assert!(matches!(bad(&typed), BeamErrorKind::Malformed(_)));
        let mut ext = vec![op("move")];
        ext.extend([enc(TAG_Z, 9), enc(TAG_X, 0)].concat());
        assert!(matches!(bad(&ext), BeamErrorKind::Malformed(_)));
        assert!(matches!(bad(&[0]), BeamErrorKind::Malformed(_)));
        // A count whose length-of-length claims 2^64 + 9 bytes.
        let mut huge = vec![op("put_tuple2")];
        huge.extend(enc(TAG_X, 0));
        huge.extend(enc(TAG_Z, 1));
        huge.push(0b1111_1000);
        huge.extend(enc(TAG_U, u64::MAX));
        assert!(read_code(&code(180, &huge), None, None).is_err());
        // No int_code_end; a header larger than the chunk; another instruction set.
        assert!(read_code(&code(180, &[])[..20], None, None).is_err());
        assert!(read_code(&[0xff, 0xff, 0xff, 0xff, 0, 0], None, None).is_err());
        let mut other_set = code(180, &[]);
        other_set[7] = 1;
        assert!(matches!(
            read_code(&other_set, None, None),
            Err(BeamErrorKind::Malformed(_))
        ));
    }

    #[test]
    fn an_opcode_from_a_newer_otp_ends_the_walk() {
        let (on_load, needs) =
            read_code(&code(200, &[ON_LOAD, 200, 0xff, 0xff]), None, None).unwrap();
        assert!(on_load);
        assert_eq!((needs.declared_max, needs.opcodes.highest()), (200, 200));
    }

    #[test]
    fn names_the_bifs_that_bif_instructions_call() {
        // gc_bif2 f0, 2, import 1, x0, x1, x0; bif1 f0, import 0, x0, x1
        let mut body = vec![op("gc_bif2")];
        body.extend(
            [
                enc(5, 0),
                enc(TAG_U, 2),
                enc(TAG_U, 1),
                enc(TAG_X, 0),
                enc(TAG_X, 1),
            ]
            .concat(),
        );
        body.extend(enc(TAG_X, 0));
        body.push(op("bif1"));
        body.extend([enc(5, 0), enc(TAG_U, 0), enc(TAG_X, 0), enc(TAG_X, 1)].concat());
        let atoms: Vec<String> = ["m", "erlang", "min", "hd"].map(String::from).to_vec();
        let imports: Vec<u8> = [2u32, 2, 4, 1, 2, 3, 2]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let code = code(180, &body);
        let find = |id: &[u8; 4]| match id {
            b"Code" => Some(code.as_slice()),
            b"ImpT" => Some(imports.as_slice()),
            _ => None,
        };
        let (_, needs) = read(find, &atoms).unwrap();
        assert_eq!(needs.bifs, ["erlang:hd/1", "erlang:min/2"]);
        // An import index beyond the table, a table without its entries, no table.
        let short = &imports[..16];
        let find = |id: &[u8; 4]| match id {
            b"Code" => Some(code.as_slice()),
            b"ImpT" => Some(short),
            _ => None,
        };
        assert!(read(find, &atoms).is_err());
        assert!(matches!(
            read_code(&code, None, None),
            Err(BeamErrorKind::MissingChunk("ImpT"))
        ));
        // An import index near usize::MAX.
        let mut huge = vec![op("bif1")];
        huge.extend(
            [
                enc(5, 0),
                enc(TAG_U, u64::MAX / 2),
                enc(TAG_X, 0),
                enc(TAG_X, 1),
            ]
            .concat(),
        );
        let huge = super::tests::code(180, &huge);
        let find = |id: &[u8; 4]| match id {
            b"Code" => Some(huge.as_slice()),
            b"ImpT" => Some(imports.as_slice()),
            _ => None,
        };
        assert!(matches!(
            read(find, &atoms),
            Err(BeamErrorKind::Malformed(_))
        ));
    }

    #[test]
    fn reads_atom_layout_and_features() {
        let meta =
            b"\x83l\x00\x00\x00\x01h\x02w\x10enabled_featuresl\x00\x00\x00\x01w\x0amaybe_exprjj";
        let compact = (-3i32).to_be_bytes();
        let (_, needs) = read_code(&code(180, &[]), Some(&compact), Some(meta)).unwrap();
        assert!(needs.compact_atoms);
        assert_eq!(needs.features, ["maybe_expr"]);
        let (_, needs) = read_code(&code(180, &[]), Some(&3u32.to_be_bytes()), None).unwrap();
        assert!(!needs.compact_atoms && needs.features.is_empty());
        assert!(matches!(
            read_code(&code(180, &[]), None, Some(b"\x83l\x00\x00")),
            Err(BeamErrorKind::Term("Meta chunk", _))
        ));
    }

    /// The committed vectors of `tests/vectors/otp<NN>` (compiled by OTP 25, 27 and 29, plain,
    /// gzip-compressed and stripped), with the facts each release's `beam_lib` recorded beside.
    #[test]
    fn reads_the_otp_25_27_and_29_vectors() {
        let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        for (otp, loader_max) in [(25, 180), (27, 183), (29, 191)] {
            let dir = vectors.join(format!("otp{otp}"));
            let mut files: Vec<_> = ["", "compressed", "stripped"]
                .iter()
                .filter_map(|sub| std::fs::read_dir(dir.join(sub)).ok())
                .flatten()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "beam"))
                .collect();
            files.sort();
            assert!(files.len() >= 10, "{}: {files:?}", dir.display());
            for file in files {
                let beam = crate::build::beam::read(&file).unwrap();
                let facts = std::fs::read_to_string(file.with_extension("facts")).unwrap();
                let fact = |key: &str| {
                    facts
                        .lines()
                        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('\t'))
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                };
                let shown = file.display();
                assert_eq!(beam.on_load, beam.name == "vec_on_load", "{shown}");
                assert_eq!(
                    beam.needs.compact_atoms,
                    fact("atom_layout") == ["compact"],
                    "{shown}"
                );
                let declared = beam.needs.declared_max;
                assert!(declared <= loader_max, "{shown}: declares {declared}");
                assert!(
                    u32::from(beam.needs.opcodes.highest()) <= declared,
                    "{shown}"
                );
                let meta = fact("chunk").contains(&"Meta".to_owned());
                let expected: &[&str] = if meta && otp >= 27 {
                    &["maybe_expr"]
                } else {
                    &[]
                };
                assert_eq!(beam.needs.features, expected, "{shown}");
            }
        }
    }

    /// Compiles `source` (Erlang `.erl` or Elixir `.ex`) with this machine's erlc or elixirc and
    /// reads every module it produced.
    fn compiled(file: &str, source: &str) -> Vec<crate::build::beam::Beam> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file), source).unwrap();
        let status = if file.ends_with(".erl") {
            Command::new("erlc")
                .arg(file)
                .current_dir(dir.path())
                .status()
        } else {
            Command::new("elixirc")
                .args([file, "-o", "."])
                .current_dir(dir.path())
                .status()
        };
        assert!(status.unwrap().success(), "compiling {file} failed");
        let mut beams: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "beam"))
            .map(|p| crate::build::beam::read(Path::new(&p)).unwrap())
            .collect();
        beams.sort_by(|a, b| a.name.cmp(&b.name));
        beams
    }

    #[test]
    fn finds_on_load_in_modules_this_machines_compilers_produce() {
        let erl = compiled(
            "with_hook.erl",
            "-module(with_hook).\n-export([f/1]).\n-on_load(init/0).\ninit() -> ok.\n\
             f(<<A:8, B/binary>>) -> #{a => A, b => B};\nf(X) -> try X() catch _:E -> E end.\n",
        );
        let ex = compiled(
            "mods.ex",
            "defmodule Hooked do\n  @on_load :init\n  def init, do: :ok\nend\n\
             defmodule Plain do\n  def f(%{a: a} = m), do: %{m | a: a + 1}\nend\n",
        );
        let found: Vec<(&str, bool)> = erl
            .iter()
            .chain(&ex)
            .map(|b| (b.name.as_str(), b.on_load))
            .collect();
        assert_eq!(
            found,
            [
                ("with_hook", true),
                ("Elixir.Hooked", true),
                ("Elixir.Plain", false)
            ]
        );
        for beam in erl.iter().chain(&ex) {
            let highest = beam.needs.opcodes.highest();
            assert!(
                u32::from(highest) <= beam.needs.declared_max,
                "{}: uses {highest}, declares {}",
                beam.name,
                beam.needs.declared_max
            );
            assert!(beam.needs.opcodes.contains(INT_CODE_END));
        }
    }
}
