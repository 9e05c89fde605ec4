//! The outline of a configuration text read through a [`Cursor`]: where each top-level member's
//! value is, and where each element of `resources` is, found in one pass that also checks the
//! whole text is JSON (and UTF-8), so that the loader then parses one member or one resource
//! at a time from its own bytes, as it parsed them from the whole text before.
//!
//! The check follows the grammar `serde_json` reads (RFC 8259: whitespace is space, tab, line
//! feed and carriage return; numbers `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`; strings
//! without control characters, with the escapes `\" \\ \/ \b \f \n \r \t \uXXXX`; `true`,
//! `false`, `null`) and never accepts what serde_json refuses. It is stricter where that is
//! simpler: a text it does not follow (not JSON, not UTF-8, not an object, a top-level key
//! with an escape, `resources` not an array, nesting deeper than [`MAX_DEPTH`]) has no outline,
//! and the loader reads that text whole and parses it as before, so its error (serde_json's
//! message, line and column, the field named from the position) does not change.

use super::source::{Cursor, ReadError};

/// Nesting the outline follows (serde_json refuses 128 levels); deeper texts are read whole.
pub const MAX_DEPTH: usize = 64;

/// Bytes `start..end` of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// Where the parts of a configuration text are.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outline {
    /// The top-level members in document order: the key and its value's text (without the
    /// whitespace around it, as serde_json's `RawValue` has it).
    pub members: Vec<(String, Span)>,
    /// The elements of the first `resources` member, in order.
    pub resources: Vec<Span>,
}

/// Outlines the text from the cursor's position (its start) to its end; `Ok(None)` for a
/// text the outline does not follow (see the module documentation). A text of JSON
/// whitespace only has an empty outline (the loader reads it as `{}`).
pub fn outline(cursor: &mut Cursor<'_>) -> Result<Option<Outline>, ReadError> {
    let mut scan = Scan { cursor };
    let mut out = Outline::default();
    match scan.ws()? {
        None => return Ok(Some(out)),
        Some(b'{') => scan.cursor.bump(),
        Some(_) => return Ok(None),
    }
    let mut resources_seen = false;
    if scan.ws()? == Some(b'}') {
        scan.cursor.bump();
    } else {
        loop {
            if scan.ws()? != Some(b'"') {
                return Ok(None);
            }
            scan.cursor.bump();
            let Some(key) = scan.key()? else {
                return Ok(None);
            };
            if scan.ws()? != Some(b':') {
                return Ok(None);
            }
            scan.cursor.bump();
            let first = scan.ws()?;
            let start = scan.cursor.position();
            let followed = if key == "resources" && !resources_seen {
                resources_seen = true;
                first == Some(b'[') && scan.elements(&mut out.resources)?
            } else {
                scan.value(1)?
            };
            if !followed {
                return Ok(None);
            }
            let end = scan.cursor.position();
            out.members.push((key, Span { start, end }));
            match scan.ws()? {
                Some(b',') => scan.cursor.bump(),
                Some(b'}') => {
                    scan.cursor.bump();
                    break;
                }
                _ => return Ok(None),
            }
        }
    }
    if scan.ws()?.is_some() || !scan.cursor.utf8_so_far() {
        return Ok(None);
    }
    Ok(Some(out))
}

struct Scan<'c, 's> {
    cursor: &'c mut Cursor<'s>,
}

impl Scan<'_, '_> {
    /// Skips JSON whitespace; the next byte, not consumed.
    fn ws(&mut self) -> Result<Option<u8>, ReadError> {
        loop {
            match self.cursor.peek()? {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.cursor.bump(),
                other => return Ok(other),
            }
        }
    }

    /// Skips whitespace, then `close` if it is next: whether it was.
    fn closes(&mut self, close: u8) -> Result<bool, ReadError> {
        let closed = self.ws()? == Some(close);
        if closed {
            self.cursor.bump();
        }
        Ok(closed)
    }

    /// After an element or member: skips whitespace and the `,` before the next one (`None`),
    /// or the `close` that ends the container (`Some(true)`); `Some(false)` on anything else,
    /// not consumed.
    fn separator(&mut self, close: u8) -> Result<Option<bool>, ReadError> {
        if self.ws()? == Some(b',') {
            self.cursor.bump();
            return Ok(None);
        }
        self.closes(close).map(Some)
    }

    /// The array whose `[` is next, each element's span pushed to `out`.
    fn elements(&mut self, out: &mut Vec<Span>) -> Result<bool, ReadError> {
        self.cursor.bump();
        if self.closes(b']')? {
            return Ok(true);
        }
        loop {
            self.ws()?;
            let start = self.cursor.position();
            if !self.value(2)? {
                return Ok(false);
            }
            out.push(Span {
                start,
                end: self.cursor.position(),
            });
            if let Some(end) = self.separator(b']')? {
                return Ok(end);
            }
        }
    }

    /// Skips one value (after whitespace) nested `depth` levels deep; `false` if it is not
    /// JSON.
    fn value(&mut self, depth: usize) -> Result<bool, ReadError> {
        let Some(first) = self.ws()? else {
            return Ok(false);
        };
        match first {
            b'"' => {
                self.cursor.bump();
                self.string()
            }
            b'{' | b'[' if depth >= MAX_DEPTH => Ok(false),
            b'{' => {
                self.cursor.bump();
                self.object(depth + 1)
            }
            b'[' => {
                self.cursor.bump();
                self.array(depth + 1)
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Ok(false),
        }
    }

    /// The rest of an object whose `{` is consumed.
    fn object(&mut self, depth: usize) -> Result<bool, ReadError> {
        if self.closes(b'}')? {
            return Ok(true);
        }
        loop {
            if self.ws()? != Some(b'"') {
                return Ok(false);
            }
            self.cursor.bump();
            if !self.string()? || self.ws()? != Some(b':') {
                return Ok(false);
            }
            self.cursor.bump();
            if !self.value(depth)? {
                return Ok(false);
            }
            if let Some(end) = self.separator(b'}')? {
                return Ok(end);
            }
        }
    }

    /// The rest of an array whose `[` is consumed.
    fn array(&mut self, depth: usize) -> Result<bool, ReadError> {
        if self.closes(b']')? {
            return Ok(true);
        }
        loop {
            if !self.value(depth)? {
                return Ok(false);
            }
            if let Some(end) = self.separator(b']')? {
                return Ok(end);
            }
        }
    }

    /// The rest of a string whose opening quote is consumed.
    fn string(&mut self) -> Result<bool, ReadError> {
        loop {
            let rest = self.cursor.rest()?;
            let stop = rest
                .iter()
                .position(|b| matches!(b, b'"' | b'\\') || *b < 0x20);
            let Some(i) = stop else {
                if rest.is_empty() {
                    return Ok(false);
                }
                let n = rest.len();
                self.cursor.advance(n);
                continue;
            };
            let b = rest.get(i).copied();
            self.cursor.advance(i + 1);
            match b {
                Some(b'"') => return Ok(true),
                Some(b'\\') if self.escape()? => {}
                _ => return Ok(false),
            }
        }
    }

    /// A top-level key (its opening quote consumed), `None` when it has an escape or is not
    /// a string.
    fn key(&mut self) -> Result<Option<String>, ReadError> {
        let mut bytes = Vec::new();
        loop {
            match self.cursor.peek()? {
                Some(b'"') => {
                    self.cursor.bump();
                    return Ok(String::from_utf8(bytes).ok());
                }
                Some(b) if b >= 0x20 && b != b'\\' => {
                    bytes.push(b);
                    self.cursor.bump();
                }
                _ => return Ok(None),
            }
        }
    }

    /// An escape whose backslash is consumed.
    fn escape(&mut self) -> Result<bool, ReadError> {
        match self.cursor.peek()? {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.cursor.bump();
                Ok(true)
            }
            Some(b'u') => {
                self.cursor.bump();
                for _ in 0..4 {
                    if !self.cursor.peek()?.is_some_and(|b| b.is_ascii_hexdigit()) {
                        return Ok(false);
                    }
                    self.cursor.bump();
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<bool, ReadError> {
        for expected in word {
            if self.cursor.peek()? != Some(*expected) {
                return Ok(false);
            }
            self.cursor.bump();
        }
        Ok(true)
    }

    /// A number; what follows it is checked by the caller (a value ends at whitespace, `,`,
    /// `]`, `}` or the end of the text).
    fn number(&mut self) -> Result<bool, ReadError> {
        if self.cursor.peek()? == Some(b'-') {
            self.cursor.bump();
        }
        match self.cursor.peek()? {
            Some(b'0') => self.cursor.bump(),
            Some(b'1'..=b'9') => {
                self.digits()?;
            }
            _ => return Ok(false),
        }
        if self.cursor.peek()? == Some(b'.') {
            self.cursor.bump();
            if self.digits()? == 0 {
                return Ok(false);
            }
        }
        if matches!(self.cursor.peek()?, Some(b'e' | b'E')) {
            self.cursor.bump();
            if matches!(self.cursor.peek()?, Some(b'+' | b'-')) {
                self.cursor.bump();
            }
            if self.digits()? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Skips ASCII digits; how many.
    fn digits(&mut self) -> Result<usize, ReadError> {
        let mut n = 0;
        while self.cursor.peek()?.is_some_and(|b| b.is_ascii_digit()) {
            self.cursor.bump();
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use serde::de::IgnoredAny;
    use serde_json::value::RawValue;

    use super::*;
    use crate::config_json::raw::raw_members;
    use crate::config_json::source::SliceSource;

    fn outline_of(text: &str, max_read: usize) -> Option<Outline> {
        let mut source = SliceSource::with_max_read(text.as_bytes(), max_read);
        let mut cursor = Cursor::new(&mut source);
        outline(&mut cursor).unwrap()
    }

    /// Member keys and texts, and resource texts.
    type Texts = (Vec<(String, String)>, Vec<String>);

    /// serde_json's reading of the whole text as the loader read it before: an object of raw
    /// members, and `resources` a list of raw values. `None` when it refuses the text.
    fn serde_outline(text: &str) -> Option<Texts> {
        let top = raw_members(text, "RawConfig").ok()?;
        let members = top
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let resources = match top.get("resources") {
            Some(list) => serde_json::from_str::<Vec<&RawValue>>(list)
                .ok()?
                .iter()
                .map(|v| v.get().to_string())
                .collect(),
            None => Vec::new(),
        };
        Some((members, resources))
    }

    /// The outline's spans as text.
    fn texts(text: &str, outline: &Outline) -> Texts {
        let at = |span: &Span| text[span.start..span.end].to_string();
        (
            outline
                .members
                .iter()
                .map(|(k, span)| (k.clone(), at(span)))
                .collect(),
            outline.resources.iter().map(at).collect(),
        )
    }

    /// Whatever the chunk size, an outlined text is one serde_json reads whole, with the same
    /// members and resources.
    fn check(text: &str) -> bool {
        let whole = outline_of(text, usize::MAX);
        for max_read in [1, 2, 3, 5, 7, 16, 64] {
            assert_eq!(
                outline_of(text, max_read),
                whole,
                "{text:?} read {max_read} at a time"
            );
        }
        let Some(outline) = whole else {
            return false;
        };
        assert_eq!(
            serde_outline(text).as_ref(),
            Some(&texts(text, &outline)),
            "{text:?}"
        );
        true
    }

    const CONFIG: &str = " {\"workload\" : {\"namespace\": \"ns1\", \"labels\": {\"app\": \"é\"}},
        \"trustDomainAliases\": [\"a\\\"b\\\\c\\u00e9\\/\\b\\f\\n\\r\\t\", \"€😀\"],
        \"jwtCacheSize\": 0, \"x\": [-0, 1.5e+3, -2E-2, 10, true, false, null, {}, [], [[]]],
        \"resources\": [ {\"kind\": \"A\", \"spec\": {\"rules\": [{}]}} ,\"s\", 7, null, [1] ],
        \"direction\": \"inbound\"}\n";

    #[test]
    fn a_configuration_is_outlined_as_serde_json_reads_it_whatever_the_chunk_size() {
        assert!(check(CONFIG));
        assert!(check("{}"));
        assert!(check("{\"resources\": []}"));
        assert!(check("{\"resources\": [], \"resources\": {}}"));
        assert!(check("{\"a\": 1, \"a\": 2}"));
    }

    #[test]
    fn whitespace_alone_has_an_empty_outline() {
        for text in ["", " ", "\n\t\r "] {
            assert_eq!(outline_of(text, 1), Some(Outline::default()));
        }
    }

    #[test]
    fn texts_the_outline_does_not_follow_are_left_to_the_whole_text_reader() {
        for text in [
            "[]",
            "\"resources\"",
            "{\"resources\": {}}",
            "{\"resources\": null}",
            "{\"resourc\\u0065s\": []}",
            "{} {}",
            "{\"a\": 1,}",
            "{\"a\": [1,]}",
            "{\"a\": 01}",
            "{\"a\": 1.}",
            "{\"a\": -}",
            "{\"a\": 1e}",
            "{\"a\": .5}",
            "{\"a\": +1}",
            "{\"a\": tru}",
            "{\"a\": \"\\x\"}",
            "{\"a\": \"\\u12g4\"}",
            "{\"a\": \"tab\there\"}",
            "{\"a\": \"open",
            "{\"a\" 1}",
            "{a: 1}",
            "\u{c}",
            "{\"a\": \"\u{c}\"}",
        ] {
            assert!(!check(text), "{text:?}");
        }
        let deep = format!(
            "{{\"a\": {}{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert!(!check(&deep));
        let deep = format!(
            "{{\"a\": {}{}}}",
            "[".repeat(MAX_DEPTH - 2),
            "]".repeat(MAX_DEPTH - 2)
        );
        assert!(check(&deep));
    }

    #[test]
    fn invalid_utf8_anywhere_has_no_outline() {
        for bytes in [
            &b"{\"a\": \"\xff\"}"[..],
            b"{\"a\xc3\": 1}",
            b"{\"a\": \"\xe2\x82\"}",
            b"{}\xc3",
        ] {
            for max_read in [1, 2, 3, 64] {
                let mut source = SliceSource::with_max_read(bytes, max_read);
                let mut cursor = Cursor::new(&mut source);
                assert_eq!(outline(&mut cursor).unwrap(), None);
            }
        }
    }

    /// Every text one edit away from a configuration: the outline never accepts a text that
    /// serde_json refuses, and outlines what it accepts as serde_json reads it.
    #[test]
    fn no_text_one_edit_from_a_configuration_is_outlined_unlike_serde_json() {
        let bytes = CONFIG.as_bytes();
        let mut outlined = 0;
        let mut edits = 0;
        for at in 0..=bytes.len() {
            let mut variants = vec![[&bytes[..at], &bytes[(at + 1).min(bytes.len())..]].concat()];
            for insert in [
                b'"', b'\\', b',', b':', b'{', b'}', b'[', b']', b'1', b'-', b'e', b' ',
            ] {
                variants.push([&bytes[..at], &[insert], &bytes[at..]].concat());
            }
            variants.push(bytes[..at].to_vec());
            for variant in variants {
                let Ok(text) = std::str::from_utf8(&variant) else {
                    continue;
                };
                edits += 1;
                // The loader reads a text of whitespace alone as `{}`.
                let blank = text.bytes().all(|b| b.is_ascii_whitespace());
                let serde_reads = blank
                    || serde_json::from_str::<IgnoredAny>(text).is_ok()
                        && serde_outline(text).is_some();
                let whole = outline_of(text, usize::MAX);
                assert_eq!(outline_of(text, 3), whole, "{text:?}");
                if let Some(outline) = whole {
                    assert!(serde_reads, "outlined, refused by serde_json: {text:?}");
                    let read = if blank { "{}" } else { text };
                    assert_eq!(serde_outline(read), Some(texts(text, &outline)), "{text:?}");
                    outlined += 1;
                }
            }
        }
        assert!(outlined > 100 && edits > 1000, "{outlined} of {edits}");
    }
}
