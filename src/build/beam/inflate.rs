//! Inflating the zlib data inside a module (a literal table, a compressed term) whose size the
//! module declares before it.

use std::cell::RefCell;

use flate2::{Decompress, FlushDecompress, Status};

thread_local! {
    /// One decompressor per scanning thread, reset for each use: a reader made per literal table
    /// allocated a state and a buffer thousands of times a scan (with zlib-rs, 15 MB more peak
    /// RSS for the bench's 2000 modules).
    static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(true));
}

/// The zlib stream at the start of `zlib` inflated, if it comes to exactly `size` bytes; `None`
/// if it is corrupt, truncated, or longer or shorter than that. What follows the stream is
/// ignored, as the loader does. Allocates `size` + 1 bytes at most: the caller bounds `size`.
pub(crate) fn exact(zlib: &[u8], size: usize) -> Option<Vec<u8>> {
    INFLATER.with_borrow_mut(|inflater| {
        inflater.reset(true);
        // One byte of room past `size`: a stream that fills it is longer than declared.
        let mut out = Vec::with_capacity(size + 1);
        match inflater.decompress_vec(zlib, &mut out, FlushDecompress::Finish) {
            Ok(Status::StreamEnd) if out.len() == size => Some(out),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::exact;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    #[test]
    fn inflates_a_stream_of_the_declared_size_only() {
        let data = b"literal literal literal table".repeat(40);
        let z = zlib(&data);
        assert_eq!(exact(&z, data.len()).as_deref(), Some(&data[..]));
        assert_eq!(exact(&z, data.len() - 1), None, "longer than declared");
        assert_eq!(exact(&z, data.len() + 1), None, "shorter than declared");
        assert_eq!(exact(&z[..z.len() - 5], data.len()), None, "truncated");
        assert_eq!(exact(b"not zlib at all", 10), None, "corrupt");
        let mut trailing = z.clone();
        trailing.extend_from_slice(b"after");
        assert_eq!(exact(&trailing, data.len()).as_deref(), Some(&data[..]));
        // The decompressor is reset after a failure: the next stream inflates.
        assert_eq!(exact(&z, data.len()).as_deref(), Some(&data[..]));
        assert_eq!(exact(&zlib(b""), 0).as_deref(), Some(&b""[..]));
    }
}
