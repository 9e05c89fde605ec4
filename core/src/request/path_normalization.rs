//! The path as Envoy's HTTP connection manager hands it to the filters: what
//! `normalize_path`, `merge_slashes` and `path_with_escaped_slashes_action` do to `:path`
//! before any HTTP filter runs (`ConnectionManagerUtility::maybeNormalizePath`). The filter
//! reads the already-normalized path from Envoy; `meshguard check` applies this first, so it
//! decides on the path the filter would see.
//!
//! Mirrors, in Envoy's order:
//!
//! 1. a fragment (`#...`) is refused with 400 (Envoy 1.40's default, runtime guard
//!    `http_reject_path_with_fragment`; older Envoys dropped it, CVE-2021-39156), as the test
//!    Envoy answers;
//! 2. escaped slashes (`%2F`, `%5C`, either case) are kept, rejected (400) or unescaped;
//! 3. `normalize_path`: `PathUtil::canonicalPath`, Chromium's URL path canonicalizer on the
//!    part before `?`: `\` becomes `/`, `%XX` of an unreserved character (`A-Z a-z 0-9 - . _ ~`)
//!    is decoded, other escapes are kept as written, characters a URL may not carry are
//!    percent-encoded, and `.`/`..` segments (also as `%2e`) are removed per RFC 3986; `%00`
//!    fails (400);
//! 4. `merge_slashes`: runs of `/` before `?` become one.
//!
//! Istio's `meshConfig.pathNormalization` picks the options ([`PathNormalization::istio`]);
//! its default `BASE` is `normalize_path` alone.

/// Envoy's `path_with_escaped_slashes_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapedSlashes {
    KeepUnchanged,
    RejectRequest,
    UnescapeAndForward,
}

/// The HCM's path options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathNormalization {
    pub normalize_path: bool,
    pub merge_slashes: bool,
    pub escaped_slashes: EscapedSlashes,
}

/// Envoy refuses the request with 400 (`path_normalization_failed`, or escaped slashes with
/// `REJECT_REQUEST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRejected;

impl PathNormalization {
    /// Istio's `BASE` (the default, also `DEFAULT`).
    pub const ISTIO_DEFAULT: PathNormalization = PathNormalization {
        normalize_path: true,
        merge_slashes: false,
        escaped_slashes: EscapedSlashes::KeepUnchanged,
    };

    /// The HCM options Istio sets for `meshConfig.pathNormalization.normalization`.
    pub fn istio(option: &str) -> Option<PathNormalization> {
        let (normalize_path, merge_slashes, escaped_slashes) = match option {
            "NONE" => (false, false, EscapedSlashes::KeepUnchanged),
            "BASE" | "DEFAULT" => (true, false, EscapedSlashes::KeepUnchanged),
            "MERGE_SLASHES" => (true, true, EscapedSlashes::KeepUnchanged),
            "DECODE_AND_MERGE_SLASHES" => (true, true, EscapedSlashes::UnescapeAndForward),
            _ => return None,
        };
        Some(PathNormalization {
            normalize_path,
            merge_slashes,
            escaped_slashes,
        })
    }

    /// `:path` as the filters see it.
    pub fn apply(&self, path: &str) -> Result<String, PathRejected> {
        if path.contains('#') {
            return Err(PathRejected);
        }
        let (mut part, query) = match path.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q)),
            None => (path.to_string(), None),
        };
        match self.escaped_slashes {
            EscapedSlashes::KeepUnchanged => {}
            EscapedSlashes::RejectRequest if has_escaped_slash(&part) => return Err(PathRejected),
            EscapedSlashes::RejectRequest => {}
            EscapedSlashes::UnescapeAndForward => part = unescape_slashes(&part),
        }
        if self.normalize_path {
            part = canonical_path(&part)?;
        }
        if self.merge_slashes {
            part = merge_slashes(&part);
        }
        Ok(match query {
            Some(q) => format!("{part}?{q}"),
            None => part,
        })
    }
}

fn escaped_slash(bytes: &[u8]) -> bool {
    matches!(
        bytes,
        [b'%', b'2', b'f' | b'F', ..] | [b'%', b'5', b'c' | b'C', ..]
    )
}

fn has_escaped_slash(path: &str) -> bool {
    let b = path.as_bytes();
    (0..b.len()).any(|i| b.get(i..).is_some_and(escaped_slash))
}

fn unescape_slashes(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(rest) = b.get(i..).filter(|r| !r.is_empty()) {
        if escaped_slash(rest) {
            out.push(if rest.get(1) == Some(&b'2') {
                b'/'
            } else {
                b'\\'
            });
            i += 3;
        } else {
            out.extend(rest.first());
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters Chromium's path canonicalizer percent-encodes.
fn must_escape(b: u8) -> bool {
    b <= 0x20 || b >= 0x7f || matches!(b, b'"' | b'<' | b'>' | b'`' | b'{' | b'}')
}

/// `PathUtil::canonicalPath` on the part before `?`.
fn canonical_path(path: &str) -> Result<String, PathRejected> {
    // Canonicalize each segment's characters, then resolve dot segments on the result.
    let b = path.as_bytes();
    let mut canon: Vec<u8> = Vec::with_capacity(b.len() + 1);
    if b.first() != Some(&b'/') && b.first() != Some(&b'\\') {
        canon.push(b'/');
    }
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => canon.push(b'/'),
            b'%' => {
                let decoded = match (
                    b.get(i + 1).and_then(|h| hex(*h)),
                    b.get(i + 2).and_then(|l| hex(*l)),
                ) {
                    (Some(h), Some(l)) => Some(h * 16 + l),
                    _ => None,
                };
                match decoded {
                    Some(0) => return Err(PathRejected),
                    Some(v) if unreserved(v) => {
                        canon.push(v);
                        i += 2;
                    }
                    Some(_) => {
                        canon.extend(b.get(i..i + 3).unwrap_or_default());
                        i += 2;
                    }
                    // An invalid escape: the percent sign is kept as written.
                    None => canon.push(b'%'),
                }
            }
            c if must_escape(c) => canon.extend(format!("%{c:02X}").bytes()),
            c => canon.push(c),
        }
        i += 1;
    }
    // RFC 3986 remove_dot_segments over `/`-separated segments (the first is empty).
    let text = String::from_utf8_lossy(&canon).into_owned();
    let segments: Vec<&str> = text.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let last = segments.len().saturating_sub(1);
    for (n, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if n == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if n == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    Ok(format!("/{}", out.join("/")))
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Istio's normalization integration test matrix (tests/integration/security/
    /// normalization_test.go), input -> path seen by the policy (its `/app#foo` row is Envoy's
    /// old fragment stripping; Envoy 1.40 refuses it, below).
    #[test]
    fn istio_normalization_matrix() {
        let cases: &[(&str, [&str; 4])] = &[
            (
                "/app/../admin",
                ["/app/../admin", "/admin", "/admin", "/admin"],
            ),
            ("/app//", ["/app//", "/app//", "/app/", "/app/"]),
            ("/app/%2f", ["/app/%2f", "/app/%2f", "/app/%2f", "/app/"]),
            (
                "/xyz%30..//abc",
                [
                    "/xyz%30..//abc",
                    "/xyz0..//abc",
                    "/xyz0../abc",
                    "/xyz0../abc",
                ],
            ),
            (
                "/app/%2E./admin",
                ["/app/%2E./admin", "/admin", "/admin", "/admin"],
            ),
            (
                "/app\\admin",
                ["/app\\admin", "/app/admin", "/app/admin", "/app/admin"],
            ),
            (
                "/app/\\/\\/\\admin",
                [
                    "/app/\\/\\/\\admin",
                    "/app//////admin",
                    "/app/admin",
                    "/app/admin",
                ],
            ),
            (
                "/%2Fapp%5cadmin%5Cabc",
                [
                    "/%2Fapp%5cadmin%5Cabc",
                    "/%2Fapp%5cadmin%5Cabc",
                    "/%2Fapp%5cadmin%5Cabc",
                    "/app/admin/abc",
                ],
            ),
            (
                "/app//../admin",
                ["/app//../admin", "/app/admin", "/app/admin", "/app/admin"],
            ),
            (
                "/app//../../admin",
                ["/app//../../admin", "/admin", "/admin", "/admin"],
            ),
            (
                "/%c0%2e%c0%2e/admin",
                [
                    "/%c0%2e%c0%2e/admin",
                    "/%c0.%c0./admin",
                    "/%c0.%c0./admin",
                    "/%c0.%c0./admin",
                ],
            ),
        ];
        let options = ["NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"];
        for (input, expected) in cases {
            for (option, want) in options.iter().zip(expected) {
                let n = PathNormalization::istio(option).unwrap();
                assert_eq!(n.apply(input).as_deref(), Ok(*want), "{option} {input}");
            }
        }
    }

    #[test]
    fn query_is_kept_and_not_normalized() {
        let n = PathNormalization::ISTIO_DEFAULT;
        assert_eq!(n.apply("/a/../b?x=/../y").unwrap(), "/b?x=/../y");
        assert_eq!(n.apply("/details/../admin").unwrap(), "/admin");
        assert_eq!(n.apply("/a/./b/.").unwrap(), "/a/b/");
        assert_eq!(n.apply("/..").unwrap(), "/");
    }

    #[test]
    fn nul_and_rejected_escaped_slashes_are_400() {
        assert_eq!(
            PathNormalization::ISTIO_DEFAULT.apply("/admin%00"),
            Err(PathRejected)
        );
        let reject = PathNormalization {
            escaped_slashes: EscapedSlashes::RejectRequest,
            ..PathNormalization::ISTIO_DEFAULT
        };
        assert_eq!(reject.apply("/a%2fb"), Err(PathRejected));
        assert!(reject.apply("/a/b").is_ok());
    }
}
