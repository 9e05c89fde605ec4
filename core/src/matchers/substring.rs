//! Substring search on bytes: the first occurrence of a needle, by a scan for the needle's first
//! byte and a comparison of the rest at each hit.
//!
//! It answers what `str::find` / `str::contains` answer (for UTF-8 input the byte offset is the
//! same, and a match of a UTF-8 needle always starts on a character boundary), without the
//! standard library's two-way searcher, whose code is kilobytes of the module and whose set-up
//! costs more instructions than the scan for the short needles used here (`/ns/<ns>/` on a
//! principal, `{*}` on a policy path). The worst case is O(haystack x needle); the inputs are
//! identities, paths and configuration strings of bounded size.

/// Byte offset of the first occurrence of `needle` in `haystack` (`Some(0)` for an empty needle).
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((&first, rest)) = needle.split_first() else {
        return Some(0);
    };
    let last_start = haystack.len().checked_sub(needle.len())?;
    let mut from = 0;
    while from <= last_start {
        let start = from
            + haystack
                .get(from..=last_start)?
                .iter()
                .position(|&b| b == first)?;
        if haystack.get(start + 1..start + needle.len()) == Some(rest) {
            return Some(start);
        }
        from = start + 1;
    }
    None
}

/// Whether `needle` occurs in `haystack` (always for an empty needle).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every haystack over a small alphabet up to length 7 against every needle up to length 4:
    /// the same answer as `str::find` (the two-way searcher) gives.
    #[test]
    fn find_agrees_with_str_find_on_all_small_inputs() {
        fn all(alphabet: &[u8], max: usize) -> Vec<Vec<u8>> {
            let mut out = vec![Vec::new()];
            let mut level = vec![Vec::new()];
            for _ in 0..max {
                let mut next = Vec::new();
                for s in &level {
                    for &c in alphabet {
                        let mut t: Vec<u8> = s.clone();
                        t.push(c);
                        next.push(t);
                    }
                }
                out.extend(next.iter().cloned());
                level = next;
            }
            out
        }
        let haystacks = all(b"ab/", 7);
        let needles = all(b"ab/", 4);
        for h in &haystacks {
            let hs = std::str::from_utf8(h).unwrap();
            for n in &needles {
                let ns = std::str::from_utf8(n).unwrap();
                assert_eq!(find(h, n), hs.find(ns), "{hs:?} {ns:?}");
                assert_eq!(contains(h, n), hs.contains(ns));
            }
        }
    }

    #[test]
    fn find_reports_the_first_of_overlapping_occurrences_and_multibyte_offsets() {
        assert_eq!(find(b"aaaa", b"aa"), Some(0));
        assert_eq!(find(b"/ns//ns/x/", b"/ns/x/"), Some(4));
        let h = "spiffe://é.local/ns/ü/sa/x";
        assert_eq!(find(h.as_bytes(), "/ns/ü/".as_bytes()), h.find("/ns/ü/"));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"", b""), Some(0));
        assert_eq!(find(&[0xff, b'/', b'n'], b"/n"), Some(1));
    }
}
