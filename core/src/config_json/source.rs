//! Reading the plugin configuration a slice at a time, so that a Wasm VM never holds the whole
//! text: Envoy keeps the configuration string, and the loader asks for it in chunks through
//! [`ConfigSource`] (the glue implements it with proxy-wasm's `proxy_get_buffer_bytes(
//! PluginConfiguration, start, max_size)`, which copies any slice of the buffer into the VM;
//! proxy-wasm-cpp-host's `get_buffer_bytes` returns fewer bytes than asked at the end of the
//! buffer and none past it). A Wasm VM's linear memory keeps its load peak for good, so the text
//! it no longer copies in is taken off every configured VM.
//!
//! [`Cursor`] walks the text in order, one chunk held at a time, checks it as UTF-8 on the way
//! (a character may be split between two reads), and hands out the bytes of a span (a
//! configuration member, a resource) from its chunk, or copied when the span crosses chunks.

use std::fmt;

/// Bytes asked of the source per read: small against the load's peak (about 9 MB at 10,000
/// rules in Wasm), large enough that a 4.6 MB configuration is about 140 host calls a pass.
pub const CHUNK: usize = 32 * 1024;

/// Where the configuration text is: the host's buffer, or a slice in memory.
pub trait ConfigSource {
    /// The size of the text in bytes.
    fn size(&self) -> usize;

    /// Up to `max` bytes of the text from byte `start`. Fewer than asked is not an error; none
    /// while `start` is before [`ConfigSource::size`] is (the text was cut short).
    fn read(&mut self, start: usize, max: usize) -> Result<Vec<u8>, ReadError>;
}

/// The configuration text could not be read (a host error, or fewer bytes than announced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// The byte of the text that was being read.
    pub at: usize,
    pub reason: String,
}

impl ReadError {
    pub fn new(at: usize, reason: impl Into<String>) -> ReadError {
        ReadError {
            at,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.at, self.reason)
    }
}

impl std::error::Error for ReadError {}

/// A configuration text in memory, read at most `max_read` bytes at a time (the whole text by
/// default; tests read it a few bytes at a time to put chunk boundaries everywhere).
pub struct SliceSource<'a> {
    text: &'a [u8],
    max_read: usize,
}

impl<'a> SliceSource<'a> {
    pub fn new(text: &'a [u8]) -> SliceSource<'a> {
        SliceSource {
            text,
            max_read: usize::MAX,
        }
    }

    /// At most `max_read` bytes per read (at least one).
    pub fn with_max_read(text: &'a [u8], max_read: usize) -> SliceSource<'a> {
        SliceSource {
            text,
            max_read: max_read.max(1),
        }
    }
}

impl ConfigSource for SliceSource<'_> {
    fn size(&self) -> usize {
        self.text.len()
    }

    fn read(&mut self, start: usize, max: usize) -> Result<Vec<u8>, ReadError> {
        let rest = self.text.get(start..).unwrap_or_default();
        let n = rest.len().min(max).min(self.max_read);
        Ok(rest.get(..n).unwrap_or_default().to_vec())
    }
}

/// The whole text, read from `source` in one allocation (for texts the outline does not
/// follow, which are read as before: see `plugin_config`).
pub fn read_all(source: &mut dyn ConfigSource) -> Result<Vec<u8>, ReadError> {
    let size = source.size();
    let mut text = Vec::new();
    while text.len() < size {
        let at = text.len();
        let bytes = checked_read(source, at, size - at)?;
        if text.is_empty() && bytes.len() == size {
            return Ok(bytes);
        }
        if text.is_empty() {
            text.reserve_exact(size);
        }
        text.extend_from_slice(&bytes);
    }
    Ok(text)
}

/// A read of `max` bytes at `start` (before the end) that returned at least one byte and no
/// more than asked.
fn checked_read(
    source: &mut dyn ConfigSource,
    start: usize,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    let bytes = source.read(start, max)?;
    if bytes.is_empty() {
        return Err(ReadError::new(
            start,
            format!("the text ends before the {} bytes announced", source.size()),
        ));
    }
    if bytes.len() > max {
        return Err(ReadError::new(
            start,
            format!("{} bytes returned, {max} asked", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// A position in the text, one chunk of it held.
pub struct Cursor<'s> {
    source: &'s mut dyn ConfigSource,
    size: usize,
    chunk: Vec<u8>,
    /// The offset of `chunk`'s first byte in the text.
    base: usize,
    /// The index in `chunk` of the next byte.
    at: usize,
    /// UTF-8 check of the text read so far, while it is read in order from its start.
    utf8: Option<Utf8>,
    /// A span that crosses chunks, copied.
    scratch: Vec<u8>,
}

impl<'s> Cursor<'s> {
    /// A cursor at the start of the text, checking it as UTF-8 while it is read in order.
    pub fn new(source: &'s mut dyn ConfigSource) -> Cursor<'s> {
        let size = source.size();
        Cursor {
            source,
            size,
            chunk: Vec::new(),
            base: 0,
            at: 0,
            utf8: Some(Utf8::default()),
            scratch: Vec::new(),
        }
    }

    /// The offset of the next byte.
    pub fn position(&self) -> usize {
        self.base + self.at
    }

    /// The next byte, not consumed; `None` at the end of the text.
    #[inline]
    pub fn peek(&mut self) -> Result<Option<u8>, ReadError> {
        match self.chunk.get(self.at) {
            Some(b) => Ok(Some(*b)),
            None => self.refill().map(|rest| rest.first().copied()),
        }
    }

    /// Consumes one byte (after a [`Cursor::peek`] that returned one).
    #[inline]
    pub fn bump(&mut self) {
        self.at += 1;
    }

    /// The unread bytes of the current chunk, the next chunk read when it is used up; empty
    /// at the end of the text.
    pub fn rest(&mut self) -> Result<&[u8], ReadError> {
        if self.at >= self.chunk.len() {
            self.refill()?;
        }
        Ok(self.chunk.get(self.at..).unwrap_or_default())
    }

    /// Consumes `n` bytes of [`Cursor::rest`].
    pub fn advance(&mut self, n: usize) {
        self.at += n;
    }

    /// Whether every byte read in order from the start was UTF-8, the last character complete.
    /// `false` once the cursor has been moved back.
    pub fn utf8_so_far(&self) -> bool {
        self.utf8.as_ref().is_some_and(Utf8::complete)
    }

    /// Bytes `start..end` of the text: a slice of the current chunk when they lie in it, else
    /// read (and copied when they cross chunks).
    pub fn bytes(&mut self, start: usize, end: usize) -> Result<&[u8], ReadError> {
        self.seek(start);
        let len = end.saturating_sub(start);
        if self.at + len > self.chunk.len() && self.at >= self.chunk.len() {
            self.refill()?;
        }
        if self.at + len <= self.chunk.len() {
            let from = self.at;
            self.at += len;
            return Ok(self.chunk.get(from..from + len).unwrap_or_default());
        }
        self.scratch.clear();
        while self.scratch.len() < len {
            if self.at >= self.chunk.len() && self.refill()?.is_empty() {
                return Err(ReadError::new(
                    self.position(),
                    format!("the text ends before byte {end}"),
                ));
            }
            let want = len - self.scratch.len();
            let rest = self.chunk.get(self.at..).unwrap_or_default();
            let take = rest.get(..want.min(rest.len())).unwrap_or_default();
            self.scratch.extend_from_slice(take);
            self.at += take.len();
        }
        Ok(&self.scratch)
    }

    /// Moves to `offset`; moving back ends the UTF-8 check (the text is no longer read in
    /// order).
    fn seek(&mut self, offset: usize) {
        if offset < self.position() {
            self.utf8 = None;
        }
        if offset >= self.base && offset <= self.base + self.chunk.len() {
            self.at = offset - self.base;
        } else {
            self.chunk = Vec::new();
            self.base = offset;
            self.at = 0;
        }
    }

    /// Reads the chunk at the current position; the new chunk's bytes (empty at the end).
    fn refill(&mut self) -> Result<&[u8], ReadError> {
        let start = self.position();
        if start >= self.size {
            return Ok(&[]);
        }
        // Free the used chunk before the host allocates the next one.
        self.chunk = Vec::new();
        let chunk = checked_read(self.source, start, CHUNK.min(self.size - start))?;
        if let Some(utf8) = &mut self.utf8 {
            utf8.feed(&chunk);
        }
        self.chunk = chunk;
        self.base = start;
        self.at = 0;
        Ok(&self.chunk)
    }
}

/// An incremental UTF-8 check: the bytes of a character split between two reads are kept
/// until it is complete.
#[derive(Default)]
struct Utf8 {
    pending: [u8; 4],
    pending_len: usize,
    invalid: bool,
}

impl Utf8 {
    fn feed(&mut self, mut bytes: &[u8]) {
        while self.pending_len > 0 && !self.invalid {
            let Some((first, rest)) = bytes.split_first() else {
                return;
            };
            bytes = rest;
            if let Some(slot) = self.pending.get_mut(self.pending_len) {
                *slot = *first;
            }
            self.pending_len += 1;
            let held = self.pending.get(..self.pending_len).unwrap_or_default();
            match std::str::from_utf8(held) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_none() && self.pending_len < 4 => {}
                Err(_) => self.invalid = true,
            }
        }
        if self.invalid {
            return;
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => {
                let tail = bytes.get(e.valid_up_to()..).unwrap_or_default();
                for (slot, b) in self.pending.iter_mut().zip(tail) {
                    *slot = *b;
                }
                self.pending_len = tail.len();
            }
            Err(_) => self.invalid = true,
        }
    }

    fn complete(&self) -> bool {
        !self.invalid && self.pending_len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf8_in_reads(text: &[u8], max_read: usize) -> bool {
        let mut source = SliceSource::with_max_read(text, max_read);
        let mut cursor = Cursor::new(&mut source);
        while !cursor.rest().unwrap().is_empty() {
            let n = cursor.rest().unwrap().len();
            cursor.advance(n);
        }
        cursor.utf8_so_far()
    }

    #[test]
    fn a_character_split_between_reads_is_utf8_and_a_bad_or_cut_one_is_not() {
        let text = "aé€😀z".as_bytes();
        for max_read in 1..=text.len() {
            assert!(utf8_in_reads(text, max_read), "{max_read}");
            // The last character cut short, a continuation byte alone, an overlong form.
            assert!(!utf8_in_reads(&text[..text.len() - 2], max_read));
            assert!(!utf8_in_reads(b"a\x80b", max_read));
            assert!(!utf8_in_reads(b"\xc0\xafb", max_read));
            assert!(!utf8_in_reads(b"\xf0\x9f\x98z", max_read));
        }
    }

    #[test]
    fn spans_are_read_within_a_chunk_or_across_chunks_and_back() {
        let text = b"0123456789abcdef";
        for max_read in 1..=text.len() {
            let mut source = SliceSource::with_max_read(text, max_read);
            let mut cursor = Cursor::new(&mut source);
            assert_eq!(cursor.bytes(2, 9).unwrap(), b"2345678");
            assert_eq!(cursor.bytes(9, 16).unwrap(), b"9abcdef");
            assert_eq!(cursor.bytes(0, 3).unwrap(), b"012");
            assert_eq!(cursor.bytes(16, 16).unwrap(), b"");
        }
    }

    /// A source that returns no bytes from `cut` on, or more than asked.
    struct Broken {
        size: usize,
        cut: usize,
        extra: bool,
    }

    impl ConfigSource for Broken {
        fn size(&self) -> usize {
            self.size
        }

        fn read(&mut self, start: usize, max: usize) -> Result<Vec<u8>, ReadError> {
            let n = max.min(self.cut.saturating_sub(start)).min(3);
            Ok(vec![b' '; n + usize::from(self.extra)])
        }
    }

    #[test]
    fn a_text_shorter_than_announced_or_a_read_longer_than_asked_is_an_error() {
        let mut source = Broken {
            size: 10,
            cut: 7,
            extra: false,
        };
        let err = read_all(&mut source).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at byte 7: the text ends before the 10 bytes announced"
        );
        let mut cursor = Cursor::new(&mut source);
        assert!(cursor.bytes(0, 10).is_err());
        let mut source = Broken {
            size: 2,
            cut: 2,
            extra: true,
        };
        let err = read_all(&mut source).unwrap_err();
        assert_eq!(err.to_string(), "at byte 0: 3 bytes returned, 2 asked");
    }
}
