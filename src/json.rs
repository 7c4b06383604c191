//! The one strict JSON front end for every credential and key document proofgate parses: passport
//! and JWT headers and claims (DESIGN.md sections 3 and 13), JWKS documents (section 12), DPoP
//! proofs (section 14). Issue 7 item 6: a duplicated member name is refused at every depth, not
//! only for the fields a struct happens to name, because two parsers that disagree on which copy
//! wins are a classic token-confusion bug.
//!
//! Lexing and number parsing are `serde_json`'s; this module only builds the `Value` itself so it
//! can refuse duplicates, bound nesting depth and input size, and report why. Numbers keep
//! `serde_json`'s meaning: integers that fit `i64`/`u64` stay integers, larger ones become `f64`
//! (so `as_i64()` is `None` and claim checks refuse them), and a number too large even for `f64`
//! (`1e400`) is a syntax error.

use core::cell::Cell;
use core::fmt;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// More bytes than the caller's bound: not even lexed.
    TooLarge,
    /// Arrays and objects nested deeper than the bound (a JSON bomb).
    TooDeep,
    /// The same member name twice in one object.
    DuplicateMember,
    /// Valid JSON, but the caller asked for an object.
    NotAnObject,
    /// Not JSON: bad syntax, invalid UTF-8, lone surrogates, trailing data, or a number out of
    /// range for `f64`.
    Syntax,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonError::TooLarge => "document too large",
            JsonError::TooDeep => "nested too deeply",
            JsonError::DuplicateMember => "duplicate member name",
            JsonError::NotAnObject => "not a JSON object",
            JsonError::Syntax => "not valid JSON",
        })
    }
}

/// Size and depth bounds for one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    /// The outermost object or array is depth 1.
    pub max_depth: usize,
}

/// JWS/JWT headers and payloads: a token is at most 16 KiB on the wire, and nothing in a
/// passport, JWT or DPoP proof legitimately nests deeper than a `ctx` policy object.
pub const TOKEN: Limits = Limits {
    max_bytes: 16 * 1024,
    max_depth: 16,
};

/// A JWKS document; the byte bound is the largest `jwks.max_bytes` a configuration may set.
pub const JWKS: Limits = Limits {
    max_bytes: 4 * 1024 * 1024,
    max_depth: 8,
};

/// Parses one JSON value under `limits`.
pub fn parse(bytes: &[u8], limits: Limits) -> Result<Value, JsonError> {
    if bytes.len() > limits.max_bytes {
        return Err(JsonError::TooLarge);
    }
    let why = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Strict {
        depth: 0,
        max_depth: limits.max_depth,
        why: &why,
    };
    let value = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    value.map_err(|_| why.get().unwrap_or(JsonError::Syntax))
}

/// Parses one JSON object under `limits`.
pub fn parse_object(bytes: &[u8], limits: Limits) -> Result<Map<String, Value>, JsonError> {
    match parse(bytes, limits)? {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotAnObject),
    }
}

/// Builds a `Value` one level at a time; `why` records a refusal of ours, so it is told apart
/// from `serde_json`'s own syntax errors without matching on message text.
#[derive(Clone, Copy)]
struct Strict<'a> {
    depth: usize,
    max_depth: usize,
    why: &'a Cell<Option<JsonError>>,
}

impl Strict<'_> {
    fn fail<E: de::Error>(&self, why: JsonError) -> E {
        self.why.set(Some(why));
        E::custom(why)
    }

    fn nested<E: de::Error>(&self) -> Result<Self, E> {
        let depth = self.depth + 1;
        if depth > self.max_depth {
            return Err(self.fail(JsonError::TooDeep));
        }
        Ok(Strict { depth, ..*self })
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // serde_json never produces a non-finite number; refuse rather than turn it into null.
        match serde_json::Number::from_f64(v) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(self.fail(JsonError::Syntax)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(self.fail(JsonError::DuplicateMember));
            }
            let value = map.next_value_seed(inner)?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const L: Limits = TOKEN;

    #[test]
    fn parses_ordinary_documents() {
        let v = parse(br#" {"a":[1,-2,3.5,"x",null,true,{"b":{}}]} "#, L).unwrap();
        assert_eq!(v, json!({"a":[1,-2,3.5,"x",null,true,{"b":{}}]}));
        assert_eq!(parse_object(b"{}", L).unwrap().len(), 0);
    }

    #[test]
    fn duplicates_are_refused_at_every_depth() {
        for doc in [
            r#"{"a":1,"a":1}"#,
            r#"{"unknown":1,"x":2,"unknown":3}"#,
            r#"{"cnf":{"public_key_b64url":"A","public_key_b64url":"B"}}"#,
            r#"{"ctx":{"k":{"deep":1,"deep":2}}}"#,
            r#"{"list":[{"a":1},{"b":1,"b":1}]}"#,
            // The same name spelt with an escape is the same name.
            r#"{"a":1,"\u0061":2}"#,
        ] {
            assert_eq!(
                parse(doc.as_bytes(), L),
                Err(JsonError::DuplicateMember),
                "{doc}"
            );
        }
        // Equal names in different objects are fine.
        assert!(parse(br#"{"a":{"a":1},"b":{"a":2}}"#, L).is_ok());
    }

    #[test]
    fn depth_is_bounded() {
        let ok = "[".repeat(16) + &"]".repeat(16);
        assert!(parse(ok.as_bytes(), L).is_ok());
        let deep = "[".repeat(17) + &"]".repeat(17);
        assert_eq!(parse(deep.as_bytes(), L), Err(JsonError::TooDeep));
        let obj = r#"{"a":"#.repeat(17) + "1" + &"}".repeat(17);
        assert_eq!(parse(obj.as_bytes(), L), Err(JsonError::TooDeep));
        // A bomb far past serde_json's own recursion limit is refused, not a stack overflow.
        let bomb = "[".repeat(100_000);
        let big = Limits {
            max_bytes: 1 << 20,
            max_depth: 16,
        };
        assert_eq!(parse(bomb.as_bytes(), big), Err(JsonError::TooDeep));
    }

    #[test]
    fn size_is_bounded_before_parsing() {
        let doc = format!(r#"{{"a":"{}"}}"#, "x".repeat(L.max_bytes));
        assert_eq!(parse(doc.as_bytes(), L), Err(JsonError::TooLarge));
    }

    #[test]
    fn numbers_keep_their_range() {
        let v = parse(
            br#"{"i":-9223372036854775808,"u":18446744073709551615,"big":18446744073709551616,"f":1e300}"#,
            L,
        )
        .unwrap();
        assert_eq!(v["i"].as_i64(), Some(i64::MIN));
        assert_eq!(v["u"].as_i64(), None, "u64 beyond i64 is not an i64");
        assert_eq!(v["u"].as_u64(), Some(u64::MAX));
        assert_eq!(v["big"].as_i64(), None, "beyond u64 becomes a float");
        assert!(v["big"].is_f64());
        assert_eq!(v["f"].as_i64(), None);
        assert_eq!(parse(br#"{"e":1e400}"#, L), Err(JsonError::Syntax));
        assert_eq!(parse(br#"{"e":-1e400}"#, L), Err(JsonError::Syntax));
    }

    #[test]
    fn non_json_is_a_syntax_error() {
        for doc in [
            &b""[..],
            b"{",
            b"{} {}",
            b"{\"a\":1,}",
            b"{'a':1}",
            b"{\"a\":NaN}",
            b"{\"a\":\"\\ud800\"}",
            b"\xef\xbb\xbf{}",
            b"{\"a\":\"\xff\"}",
        ] {
            assert_eq!(parse(doc, L), Err(JsonError::Syntax), "{doc:?}");
        }
    }

    #[test]
    fn parse_object_refuses_other_values() {
        for doc in [&b"[]"[..], b"1", b"\"s\"", b"null"] {
            assert_eq!(parse_object(doc, L), Err(JsonError::NotAnObject));
        }
    }
}
