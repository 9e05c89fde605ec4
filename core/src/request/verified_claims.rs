//! The verified end-user token's claims, as authorization rules read them (`request.auth.*`).
//! Produced by authentication (meshguard's own verification or Envoy's `jwt_authn` metadata);
//! part of the request view, so the matchers never depend on how the token was verified.

use std::rc::Rc;

use crate::request::json_value::{JsonObject, JsonValue};

/// The verified token's claims as authorization rules see them: the payload with the
/// space-delimited claims split into lists, as Envoy writes them to `payload_in_metadata`.
/// The payload is shared with the parsed token (not copied); the split claims are kept beside
/// it and read in its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    payload: Rc<JsonObject>,
    /// `(name, list)` of each space-delimited string claim that had a part.
    split: Vec<(String, JsonValue)>,
}

impl Claims {
    pub fn new(payload: Rc<JsonObject>, space_delimited: &[String]) -> Claims {
        let mut split: Vec<(String, JsonValue)> = Vec::new();
        for name in space_delimited {
            if split.iter().any(|(n, _)| n == name) {
                continue;
            }
            if let Some(JsonValue::String(s)) = payload.get(name) {
                let items: Vec<JsonValue> = s
                    .split(' ')
                    .filter(|p| !p.is_empty())
                    .map(|p| JsonValue::String(p.to_string()))
                    .collect();
                if !items.is_empty() {
                    split.push((name.clone(), JsonValue::Array(items)));
                }
            }
        }
        Claims { payload, split }
    }

    /// A top-level claim as the rules see it.
    fn top(&self, name: &str) -> Option<&JsonValue> {
        match self.split.iter().find(|(n, _)| n == name) {
            Some((_, list)) => Some(list),
            None => self.payload.get(name),
        }
    }

    /// The claim at a nested path, if present.
    pub fn get(&self, path: &[Box<str>]) -> Option<&JsonValue> {
        let (first, rest) = path.split_first()?;
        let mut value = self.top(first)?;
        for part in rest {
            value = value.as_object()?.get(part)?;
        }
        Some(value)
    }

    /// A top-level string claim (`iss`, `sub`).
    pub fn string(&self, name: &str) -> Option<&str> {
        self.top(name).and_then(JsonValue::as_str)
    }
}
