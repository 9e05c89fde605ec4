//! The attribute vocabulary shared by every authorization kind (AuthorizationPolicy, legacy
//! ServiceRole/ServiceRoleBinding, SuperGloo SecurityRule): how a port, a request principal and
//! a JWT claim path are read from a policy value, so the same text means the same matcher
//! whichever resource carries it (istiod translates both v1beta1 and v1alpha1 through one
//! model).

use crate::error::{config_err as err, ConfigResult as Result};
use crate::matchers::predicate::Predicate;
use crate::matchers::string_match::{Star, StringMatch};

/// istiod `requestPrincipalGenerator`: split at the last `/` into `iss` and `sub` matchers.
pub fn request_principal(value: &str) -> Predicate {
    let (iss, sub, found) = match value.rfind('/') {
        Some(i) => (
            value.get(..i).unwrap_or(""),
            value.get(i + 1..).unwrap_or(""),
            true,
        ),
        None => (value, "", false),
    };
    let exact = |v: &str| StringMatch::Exact(v.as_bytes().into());
    let (iss, sub) = if value == "*" {
        (StringMatch::NonEmpty, StringMatch::NonEmpty)
    } else if value.starts_with('*') {
        if found {
            let iss = if iss == "*" {
                StringMatch::NonEmpty
            } else {
                StringMatch::Suffix(iss.trim_start_matches('*').as_bytes().into())
            };
            (iss, exact(sub))
        } else {
            (
                StringMatch::NonEmpty,
                StringMatch::Suffix(value.get(1..).unwrap_or("").as_bytes().into()),
            )
        }
    } else if value.ends_with('*') {
        if found {
            let sub = if sub == "*" {
                StringMatch::NonEmpty
            } else {
                StringMatch::Prefix(sub.trim_end_matches('*').as_bytes().into())
            };
            (exact(iss), sub)
        } else {
            (
                StringMatch::Prefix(value.get(..value.len() - 1).unwrap_or("").as_bytes().into()),
                StringMatch::NonEmpty,
            )
        }
    } else {
        (exact(iss), exact(sub))
    };
    Predicate::RequestPrincipal { iss, sub }
}

/// A claim matcher: `*` is `.+`, otherwise the usual string forms.
pub fn claim(path: &[&str], value: &str) -> Predicate {
    Predicate::Claim(
        path.iter().map(|p| (*p).into()).collect(),
        StringMatch::parse(value, Star::NonEmpty),
    )
}

/// istiod `extractNameInNestedBrackets`: `[a][b]` is `[a, b]`; anything that is not a run of
/// bracketed names falls back to one bracketed name (`[[good]` is `["[good"]`).
pub fn claim_path(s: &str) -> Option<Vec<String>> {
    let bytes = s.as_bytes();
    let mut names = Vec::new();
    let mut begin = 0;
    while begin < bytes.len() {
        let end = if bytes.get(begin) == Some(&b'[') {
            bytes
                .iter()
                .enumerate()
                .skip(begin + 1)
                .find(|(_, c)| **c == b'[' || **c == b']')
                .and_then(|(i, c)| (*c == b']').then_some(i))
        } else {
            None
        };
        let Some(end) = end else {
            let single = s.strip_prefix('[')?.strip_suffix(']')?;
            return (!single.is_empty()).then(|| vec![single.to_string()]);
        };
        names.push(s.get(begin + 1..end)?.to_string());
        begin = end + 1;
    }
    (!names.is_empty() && names.iter().all(|n| !n.is_empty())).then_some(names)
}

/// A port value, as istiod's `convertToPort` (`strconv.ParseUint`): decimal digits only, at most
/// 65535 (no sign, no spaces). Errors are relative to the value.
pub fn port(value: &str) -> Result<u16> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(p) = value.parse::<u16>() {
            return Ok(p);
        }
    }
    err(
        "",
        format!("bad port ({value}): must be an integer in 0..65535"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_decimal_digits_up_to_65535() {
        assert_eq!(port("8080"), Ok(8080));
        assert_eq!(port("0"), Ok(0));
        for bad in ["", "+80", "-1", " 80", "65536", "80a", "0x50"] {
            assert!(port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn claim_paths_nest_with_repeated_brackets() {
        let path = |s: &str| claim_path(s);
        assert_eq!(path("[a]"), Some(vec!["a".to_string()]));
        assert_eq!(path("[a][b]"), Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(
            path("[foo.com/name]"),
            Some(vec!["foo.com/name".to_string()])
        );
        assert_eq!(path("[[good]"), Some(vec!["[good".to_string()]));
        assert_eq!(path("[]"), None);
        assert_eq!(path("a"), None);
    }
}
