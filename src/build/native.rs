//! Native code in the shipped `priv/` directories (NIFs, port programs), checked against the
//! server before anything is sent: an ELF object is read with goblin (machine, class, and libc
//! flavour from its `NEEDED` entries and interpreter) and compared with what the server's ERTS
//! says of itself (`erlang:system_info(system_architecture)`, its word size). The ERTS that will
//! `dlopen` the library is the right judge: a 32-bit ERTS on a 64-bit kernel cannot load 64-bit
//! code, whatever `uname -m` says. On a mismatch the server's own loader would only say
//! `cannot open shared object file` (glibc's words for a foreign machine), so the run is refused
//! here with a line naming the file and both machines.

use std::io::Read;
use std::path::Path;

use goblin::elf::Elf;
use goblin::elf::header;

use crate::build::apps::{PrivFile, PrivKind};

/// Which C library an object or the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Libc {
    /// The GNU C library.
    Glibc,
    /// musl (Alpine and others).
    Musl,
}

impl Libc {
    fn name(self) -> &'static str {
        match self {
            Libc::Glibc => "glibc",
            Libc::Musl => "musl",
        }
    }
}

/// What a native object file was built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An ELF object (Linux, BSDs).
    Elf {
        /// The machine, as `uname -m` names it (`x86_64`, `aarch64`, `i686`...).
        machine: String,
        /// 32 or 64.
        bits: u8,
        /// The C library it links against, when it names one.
        libc: Option<Libc>,
    },
    /// A Mach-O object (macOS).
    MachO,
    /// A PE object (Windows).
    Pe,
}

/// A native object among the shipped files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The file as shown to the user (relative to the project when it is in it).
    pub shown: String,
    /// What it was built for.
    pub target: Target,
}

/// The kinds of object file, told by their first four bytes.
enum Magic {
    Elf,
    MachO,
    /// A fat Mach-O, or a Java class file (see [`fat_mach_o`]).
    FatMachO,
    /// A PE object, or a DOS program or data (see [`pe`]).
    Mz,
}

/// The object file `head`, a file's first four bytes, begins, if any.
fn magic(head: &[u8]) -> Option<Magic> {
    Some(match head {
        [0x7f, b'E', b'L', b'F'] => Magic::Elf,
        [0xfe, 0xed, 0xfa, 0xce | 0xcf] | [0xce | 0xcf, 0xfa, 0xed, 0xfe] => Magic::MachO,
        [0xca, 0xfe, 0xba, 0xbe | 0xbf] => Magic::FatMachO,
        [b'M', b'Z', _, _] => Magic::Mz,
        _ => return None,
    })
}

/// What a file of `priv/` was built for: `None` unless it is an object file; an ELF header
/// goblin cannot read is no object either (the server would not load it as one).
pub fn target(bytes: &[u8]) -> Option<Target> {
    match magic(bytes.get(..4)?)? {
        Magic::Elf => elf_target(bytes),
        Magic::MachO => Some(Target::MachO),
        Magic::FatMachO => fat_mach_o(bytes).then_some(Target::MachO),
        Magic::Mz => pe(bytes).then_some(Target::Pe),
    }
}

/// What the file at `path` was built for, as [`target`] tells, reading the whole file only
/// when its first bytes are an object file's: a `priv/` file not needed otherwise (`check`).
pub fn target_at(path: &Path) -> std::io::Result<Option<Target>> {
    target_in(std::fs::File::open(path)?)
}

/// [`target_at`] of what `file` reads.
fn target_in(mut file: impl Read) -> std::io::Result<Option<Target>> {
    let mut bytes = Vec::new();
    (&mut file).take(4).read_to_end(&mut bytes)?;
    if bytes.len() < 4 || magic(&bytes).is_none() {
        return Ok(None);
    }
    file.read_to_end(&mut bytes)?;
    Ok(target(&bytes))
}

/// More architectures than this in a fat Mach-O means a Java class file, which starts with the
/// same `CA FE BA BE` and has its version (45 or more) where the fat header has its count; file(1)
/// tells them apart by that number too.
const MAX_FAT_ARCHS: u32 = 20;

/// Whether `bytes`, starting with `CA FE BA BE` (or `BF`), is a fat Mach-O: a count of
/// architectures from 1 to [`MAX_FAT_ARCHS`], their 20-byte entries (32 for `BF`) in the file.
fn fat_mach_o(bytes: &[u8]) -> bool {
    let Some(count) = bytes
        .get(4..8)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return false;
    };
    let entry = if bytes[3] == 0xbf { 32 } else { 20 };
    (1..=MAX_FAT_ARCHS).contains(&count) && bytes.len() >= 8 + entry * count as usize
}

/// Whether `bytes`, starting with `MZ`, is a PE object: the DOS header's `e_lfanew` (at 0x3C)
/// points at a `PE\0\0` signature in the file. Without one it is a DOS program or any data that
/// happens to start with `MZ`.
fn pe(bytes: &[u8]) -> bool {
    let Some(offset) = bytes
        .get(0x3c..0x40)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return false;
    };
    usize::try_from(offset)
        .ok()
        .and_then(|at| bytes.get(at..at.checked_add(4)?))
        == Some(b"PE\0\0".as_slice())
}

fn elf_target(bytes: &[u8]) -> Option<Target> {
    let elf = Elf::parse(bytes).ok()?;
    let bits = if elf.is_64 { 64 } else { 32 };
    let needs = |name: &str| elf.libraries.contains(&name);
    let musl = elf.libraries.iter().any(|l| l.starts_with("libc.musl-"))
        || needs("libc.so")
        || elf.interpreter.is_some_and(|i| i.contains("ld-musl"));
    let glibc = needs("libc.so.6") || elf.interpreter.is_some_and(|i| i.contains("ld-linux"));
    let libc = match (glibc, musl) {
        (true, false) => Some(Libc::Glibc),
        (false, true) => Some(Libc::Musl),
        _ => None,
    };
    Some(Target::Elf {
        machine: machine_name(elf.header.e_machine, bits, elf.little_endian),
        bits,
        libc,
    })
}

/// `e_machine` as `uname -m` would name such a machine.
fn machine_name(machine: u16, bits: u8, little_endian: bool) -> String {
    let name = match machine {
        header::EM_X86_64 => "x86_64",
        header::EM_386 => "i686",
        header::EM_AARCH64 => "aarch64",
        header::EM_ARM => "arm",
        header::EM_RISCV if bits == 64 => "riscv64",
        header::EM_RISCV => "riscv32",
        header::EM_PPC64 if little_endian => "ppc64le",
        header::EM_PPC64 => "ppc64",
        header::EM_PPC => "ppc",
        header::EM_S390 => "s390x",
        header::EM_MIPS if bits == 64 && little_endian => "mips64el",
        header::EM_MIPS if bits == 64 => "mips64",
        header::EM_MIPS if little_endian => "mipsel",
        header::EM_MIPS => "mips",
        header::EM_LOONGARCH => "loongarch64",
        header::EM_SPARCV9 => "sparc64",
        other => return header::machine_to_str(other).to_ascii_lowercase(),
    };
    name.to_owned()
}

/// The native objects among `files`, each shown relative to `project` when it is in it.
pub fn objects(project: &Path, files: &[PrivFile]) -> Vec<Object> {
    let found = files
        .iter()
        .filter_map(|file| Some((&*file.source, target(file.bytes()?)?)));
    shown(project, found)
}

/// The native objects among `files`, which hold what [`target_at`] found (as
/// `apps::priv_entries` gives them), shown as [`objects`] shows them.
pub fn objects_found(project: &Path, files: &[PrivFile<Option<Target>>]) -> Vec<Object> {
    let found = files.iter().filter_map(|file| match &file.kind {
        PrivKind::File(Some(target)) => Some((&*file.source, target.clone())),
        _ => None,
    });
    shown(project, found)
}

/// The objects `found` at their paths, each shown relative to `project` when it is in it.
fn shown<'a>(project: &Path, found: impl Iterator<Item = (&'a Path, Target)>) -> Vec<Object> {
    let project = project
        .canonicalize()
        .unwrap_or_else(|_| project.to_owned());
    found
        .map(|(source, target)| Object {
            shown: source
                .strip_prefix(&project)
                .unwrap_or(source)
                .display()
                .to_string(),
            target,
        })
        .collect()
}

/// The server's ERTS, as it reports itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// `erlang:system_info(system_architecture)`, e.g. `x86_64-pc-linux-gnu`.
    pub triple: String,
    /// `erlang:system_info({wordsize, external})`: 8 for a 64-bit ERTS.
    pub wordsize: u8,
}

impl Server {
    /// The machine, as `uname -m` names it.
    fn machine(&self) -> String {
        let arch = self.triple.split('-').next().unwrap_or_default();
        match arch {
            "amd64" => "x86_64".to_owned(),
            "arm64" => "aarch64".to_owned(),
            "i386" | "i486" | "i586" | "i686" | "x86" => "i686".to_owned(),
            "powerpc64le" => "ppc64le".to_owned(),
            "powerpc64" => "ppc64".to_owned(),
            "powerpc" => "ppc".to_owned(),
            arm if arm.starts_with("arm") => "arm".to_owned(),
            other => other.to_owned(),
        }
    }

    fn os(&self) -> Os {
        let t = &self.triple;
        if t.contains("linux") {
            Os::Linux
        } else if t.contains("darwin") {
            Os::Darwin
        } else if t.contains("windows") || t.contains("mingw") || t.contains("cygwin") {
            Os::Windows
        } else {
            Os::OtherElf
        }
    }

    fn libc(&self) -> Option<Libc> {
        let last = self.triple.rsplit('-').next().unwrap_or_default();
        if last.starts_with("musl") {
            Some(Libc::Musl)
        } else if last.starts_with("gnu") {
            Some(Libc::Glibc)
        } else {
            None
        }
    }
}

/// Families of systems by the object format they load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Os {
    Linux,
    Darwin,
    Windows,
    OtherElf,
}

/// A native object the server cannot load, as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}: build it for the server or run from a machine of the same kind")]
pub struct Mismatch(pub String);

/// Checks every object against the server `host` runs; the first one it cannot load is the error.
pub fn check(objects: &[Object], server: &Server, host: &str) -> Result<(), Mismatch> {
    objects
        .iter()
        .try_for_each(|object| check_one(object, server, host))
}

fn check_one(object: &Object, server: &Server, host: &str) -> Result<(), Mismatch> {
    let file = &object.shown;
    let os = server.os();
    let refuse = |what: String| Err(Mismatch(what));
    let (machine, bits, libc) = match (&object.target, os) {
        (Target::MachO, Os::Darwin) | (Target::Pe, Os::Windows) => return Ok(()),
        (Target::MachO, _) => {
            return refuse(format!(
                "{file} is built for macOS (Mach-O), {host} runs {}",
                server.triple
            ));
        }
        (Target::Pe, _) => {
            return refuse(format!(
                "{file} is built for Windows (PE), {host} runs {}",
                server.triple
            ));
        }
        (Target::Elf { .. }, Os::Darwin | Os::Windows) => {
            return refuse(format!(
                "{file} is an ELF object (Linux), {host} runs {}",
                server.triple
            ));
        }
        (
            Target::Elf {
                machine,
                bits,
                libc,
            },
            _,
        ) => (machine, *bits, *libc),
    };
    let server_machine = server.machine();
    if *machine != server_machine {
        return refuse(format!(
            "{file} is built for {machine}, {host} runs {server_machine}"
        ));
    }
    let server_bits = server.wordsize.saturating_mul(8);
    if bits != server_bits {
        return refuse(format!(
            "{file} is a {bits}-bit object, {host} runs a {server_bits}-bit Erlang ({})",
            server.triple
        ));
    }
    if let (Some(object_libc), Some(server_libc), Os::Linux) = (libc, server.libc(), os)
        && object_libc != server_libc
    {
        return refuse(format!(
            "{file} is built for {machine} with {}, {host} runs {machine} with {} ({})",
            object_libc.name(),
            server_libc.name(),
            server.triple
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn server(triple: &str, wordsize: u8) -> Server {
        Server {
            triple: triple.into(),
            wordsize,
        }
    }

    fn elf(machine: &str, bits: u8, libc: Option<Libc>) -> Object {
        Object {
            shown: "priv/native/foo.so".into(),
            target: Target::Elf {
                machine: machine.into(),
                bits,
                libc,
            },
        }
    }

    #[test]
    fn reads_real_elf_objects() {
        // The test binary itself: built for this machine, linked against its libc.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let Some(Target::Elf {
            machine,
            bits,
            libc,
        }) = target(&me)
        else {
            panic!("not read as ELF");
        };
        assert_eq!(machine, std::env::consts::ARCH);
        assert_eq!(bits as usize, usize::BITS as usize);
        assert_eq!(libc, Some(Libc::Glibc));
        // e_machine patched to aarch64 (offset 18, little-endian).
        let mut other = me.clone();
        other[18..20].copy_from_slice(&header::EM_AARCH64.to_le_bytes());
        assert!(
            matches!(target(&other), Some(Target::Elf { machine, .. }) if machine == "aarch64")
        );
        assert_eq!(target(b"name,qty\napple,3\n"), None);
        assert_eq!(target(b"\x7fELF garbage"), None);
        assert_eq!(
            target(&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1]),
            Some(Target::MachO)
        );
    }

    /// An ELF object of this machine: the test binary's header, without program or section
    /// headers, and `size` bytes in all.
    pub(crate) fn small_elf(size: usize) -> Vec<u8> {
        let mut elf = Vec::new();
        std::fs::File::open(std::env::current_exe().unwrap())
            .unwrap()
            .take(64)
            .read_to_end(&mut elf)
            .unwrap();
        // e_phoff, e_shoff, then e_phnum, e_shnum and e_shstrndx: none (64-bit header).
        elf[0x20..0x30].fill(0);
        elf[0x38..0x40].fill(0);
        elf.resize(size, 0);
        elf
    }

    /// Reads from `bytes`, adding what it gave to `count`.
    struct Counted<'a>(&'a [u8], &'a mut usize);

    impl Read for Counted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            *self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn only_a_file_that_starts_as_an_object_is_read_whole() {
        let read = |bytes: &[u8]| {
            let mut count = 0;
            let found = target_in(Counted(bytes, &mut count)).unwrap();
            (found, count)
        };
        let plain = vec![b'x'; 8 << 20];
        assert_eq!(read(&plain), (None, 4));
        assert_eq!(read(b"ab"), (None, 2));
        let nif = small_elf(1 << 20);
        let whole = target(&nif);
        assert!(matches!(&whole, Some(Target::Elf { .. })), "{whole:?}");
        assert_eq!(read(&nif), (whole, nif.len()));
        let mut mz = vec![b'M', b'Z'];
        mz.resize(1 << 20, b' ');
        assert_eq!(read(&mz), (None, mz.len()));
    }

    #[test]
    fn class_files_and_data_starting_with_mz_are_no_objects() {
        // A Java class file: CAFEBABE, then minor and major version (Java 8: 0, 52; Java 1.1: 3, 45).
        let class = |minor: u16, major: u16| {
            let mut bytes = vec![0xca, 0xfe, 0xba, 0xbe];
            bytes.extend(minor.to_be_bytes());
            bytes.extend(major.to_be_bytes());
            bytes.extend([0; 64]);
            bytes
        };
        assert_eq!(target(&class(0, 52)), None);
        assert_eq!(target(&class(3, 45)), None);
        assert_eq!(target(&class(0, 65)), None);
        // A fat Mach-O of two architectures: nfat_arch, then a 20-byte fat_arch for each.
        let mut fat = vec![0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2];
        fat.extend([0; 40]);
        assert_eq!(target(&fat), Some(Target::MachO));
        assert_eq!(target(&fat[..30]), None, "entries cut off");
        // A PE: a 64-byte DOS header whose e_lfanew (0x3C) points at "PE\0\0".
        let mut pe = vec![0; 0x80];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        assert_eq!(target(&pe), Some(Target::Pe));
        pe[0x3c..0x40].copy_from_slice(&0x7fu32.to_le_bytes());
        assert_eq!(target(&pe), None, "e_lfanew past the end");
        assert_eq!(target(b"MZ"), None);
        assert_eq!(
            target(b"MZ,Mazowieckie,5.5\nPL-12,Malopolskie,3.4\nPL-24,Silesia,4.4\n"),
            None
        );
    }

    #[test]
    fn refuses_another_machine_class_or_libc_in_one_line() {
        let linux = server("x86_64-pc-linux-gnu", 8);
        let host = "deploy@db-1";
        assert_eq!(
            check(&[elf("x86_64", 64, Some(Libc::Glibc))], &linux, host),
            Ok(())
        );
        assert_eq!(check(&[elf("x86_64", 64, None)], &linux, host), Ok(()));
        assert_eq!(
            check(&[elf("aarch64", 64, Some(Libc::Glibc))], &linux, host)
                .unwrap_err()
                .to_string(),
            "priv/native/foo.so is built for aarch64, deploy@db-1 runs x86_64: build it for the \
             server or run from a machine of the same kind"
        );
        let musl = check(&[elf("x86_64", 64, Some(Libc::Musl))], &linux, host).unwrap_err();
        assert!(
            musl.0
                .contains("built for x86_64 with musl, deploy@db-1 runs x86_64 with glibc"),
            "{musl}"
        );
        let small = check(
            &[elf("x86_64", 64, None)],
            &server("x86_64-pc-linux-gnu", 4),
            host,
        );
        assert!(small.unwrap_err().0.contains("a 32-bit Erlang"));
        let alpine = server("aarch64-alpine-linux-musl", 8);
        assert_eq!(
            check(&[elf("aarch64", 64, Some(Libc::Musl))], &alpine, host),
            Ok(())
        );
        assert_eq!(
            check(
                &[elf("x86_64", 64, None)],
                &server("amd64-portbld-freebsd14.0", 8),
                host
            ),
            Ok(())
        );
        let mac = Object {
            shown: "priv/nif.so".into(),
            target: Target::MachO,
        };
        assert!(check(&[mac], &linux, host).unwrap_err().0.starts_with(
            "priv/nif.so is built for macOS (Mach-O), deploy@db-1 runs x86_64-pc-linux-gnu"
        ));
        assert!(
            check(
                &[elf("x86_64", 64, None)],
                &server("aarch64-apple-darwin23.4.0", 8),
                host
            )
            .is_err()
        );
    }
}
