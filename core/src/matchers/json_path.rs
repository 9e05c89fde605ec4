//! Names the field a `serde_json` syntax error points at. serde_json reports where it stopped
//! (line and column of the last byte read); this module rescans the document up to that byte and
//! returns the path of object keys and array indexes open there (`rules[0].from[0].source`).
//! Errors about a value's type or fields come from the configuration reader
//! (`config_json::reader`), which knows its path; this names the place of text that is not JSON
//! (a bad number, a missing comma, invalid UTF-8).
//!
//! The path follows the shape `serde_path_to_error` prints: keys joined with `.`, indexes as
//! `[i]`.

use crate::error::ConfigPath;

/// The path at byte `offset` (0-based) of `text`; empty at the top level.
pub fn path_at(text: &[u8], offset: usize) -> ConfigPath {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i <= offset && i < text.len() {
        let byte = text.get(i).copied().unwrap_or(b' ');
        match byte {
            b'{' => stack.push(Frame::Object(None)),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object(key)) => *key = None,
                Some(Frame::Array(index)) => *index += 1,
                None => {}
            },
            b'"' => {
                let end = string_end(text, i);
                if let Some(Frame::Object(key @ None)) = stack.last_mut() {
                    let raw = text.get(i + 1..end).unwrap_or_default();
                    *key = Some(String::from_utf8_lossy(raw).into_owned());
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = ConfigPath::root();
    for frame in stack {
        path = match frame {
            Frame::Object(Some(key)) => path.field(key),
            Frame::Object(None) => path,
            Frame::Array(index) => path.index(index),
        };
    }
    path
}

/// The byte offset of a serde_json error position (1-based line, 1-based column of the last
/// byte read), or `None` when the error has no position.
pub fn offset_of(text: &[u8], line: usize, column: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let mut line_start = 0;
    if line > 1 {
        let newline = text
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)?
            .0;
        line_start = newline + 1;
    }
    Some((line_start + column).saturating_sub(1))
}

enum Frame {
    /// The key whose value is being read, once seen.
    Object(Option<String>),
    /// The index of the element being read.
    Array(usize),
}

/// Index of the quote closing the string that opens at `start` (or the end of the text).
fn string_end(text: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&b) = text.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_path(json: &str) -> String {
        let err = serde_json::from_str::<serde_json::Value>(json).expect_err("must fail");
        let offset = offset_of(json.as_bytes(), err.line(), err.column()).expect("position");
        path_at(json.as_bytes(), offset).to_string()
    }

    #[test]
    fn a_bad_value_is_named_by_its_key_and_index() {
        let json = r#"{"rules": [{"paths": ["/a"]}, {"paths": [], "pathz": -x}]}"#;
        assert_eq!(error_path(json), "rules[1].pathz");
        let json = "{\"rules\": [\n  {\"paths\": [\"/a\", 7x]}\n]}";
        assert_eq!(error_path(json), "rules[0].paths[1]");
    }

    #[test]
    fn escaped_quotes_and_brackets_inside_strings_are_skipped() {
        let json = r#"{"rules": [{"paths": ["a\"]}[,", "{"]}, {"nope": -n}]}"#;
        assert_eq!(error_path(json), "rules[1].nope");
    }

    #[test]
    fn top_level_error_has_an_empty_path() {
        assert_eq!(error_path("nope"), "");
        assert_eq!(error_path(r#""rules" 1"#), "");
    }
}
