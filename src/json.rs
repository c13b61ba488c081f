//! Strict JSON: objects with a repeated member name are refused at every depth.
//!
//! RFC 7515 §5.2 and RFC 7519 §4 let a parser either reject duplicate member names or keep the
//! last one; "keep the last one" is how `{"sub":"alice","sub":"admin"}` means different things to
//! different parsers. Every JSON document from a token, a JWKS, a discovery document or an
//! introspection answer goes through [`parse_object`], or, for a token's claims, through
//! `Str` and `Skip`, which check the same without building a [`Value`] per member. A
//! principal's claims are read back through [`parse_object`] too.

#[cfg(any(feature = "jwt", feature = "introspection"))]
use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// Parses `bytes` as one JSON object, refusing duplicate member names anywhere inside it and
/// anything after it.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    match serde_json::from_slice::<Strict>(bytes)?.0 {
        Value::Object(map) => Ok(map),
        _ => Err(de::Error::custom("expected a JSON object")),
    }
}

/// A JSON value whose objects have unique member names.
pub(crate) struct Strict(pub(crate) Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Strict, D::Error> {
        Strict::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Strict(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Strict, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            match map.entry(key) {
                Entry::Occupied(taken) => {
                    return Err(de::Error::custom(format_args!(
                        "duplicate member name {:?}",
                        taken.key().chars().take(64).collect::<String>()
                    )));
                }
                Entry::Vacant(slot) => {
                    let Strict(value) = access.next_value()?;
                    slot.insert(value);
                }
            }
        }
        Ok(Strict(Value::Object(map)))
    }
}

/// A JSON string, borrowed from the input unless it had escapes.
#[cfg(any(feature = "jwt", feature = "introspection"))]
pub(crate) struct Str<'a>(pub(crate) Cow<'a, str>);

#[cfg(any(feature = "jwt", feature = "introspection"))]
impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;

        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(StrVisitor)
    }
}

/// Any JSON value, checked for repeated member names like [`Strict`] and then dropped: no
/// allocation beyond a list of one object's member names at a time.
#[cfg(any(feature = "jwt", feature = "introspection"))]
pub(crate) struct Skip;

#[cfg(any(feature = "jwt", feature = "introspection"))]
impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

#[cfg(any(feature = "jwt", feature = "introspection"))]
struct SkipVisitor;

#[cfg(any(feature = "jwt", feature = "introspection"))]
impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_none<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Skip, D::Error> {
        Skip::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Skip, A::Error> {
        let mut names = UniqueNames::default();
        while let Some(Str(name)) = access.next_key()? {
            names.push(name);
            access.next_value::<Skip>()?;
        }
        names.check()?;
        Ok(Skip)
    }
}

/// The member names of one object, checked for repeats once all are read: sorting keeps the
/// check O(n log n) however many members an attacker packs into a token.
#[cfg(any(feature = "jwt", feature = "introspection"))]
#[derive(Default)]
pub(crate) struct UniqueNames<'a> {
    names: Vec<Cow<'a, str>>,
}

#[cfg(any(feature = "jwt", feature = "introspection"))]
impl<'a> UniqueNames<'a> {
    pub(crate) fn push(&mut self, name: Cow<'a, str>) {
        self.names.push(name);
    }

    pub(crate) fn check<E: de::Error>(mut self) -> Result<(), E> {
        self.names.sort_unstable();
        match self.names.windows(2).find(|pair| pair[0] == pair[1]) {
            None => Ok(()),
            Some(pair) => Err(E::custom(format_args!(
                "duplicate member name {:?}",
                pair[0].chars().take(64).collect::<String>()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_at_every_depth() {
        assert!(parse_object(br#"{"a":1,"a":1}"#).is_err());
        assert!(parse_object(br#"{"a":{"b":1,"b":2}}"#).is_err());
        assert!(parse_object(br#"{"a":[{"b":1,"b":2}]}"#).is_err());
        // An escape spelling the same name is the same name.
        assert!(parse_object(br#"{"sub":"x","s\u0075b":"y"}"#).is_err());
        let map = parse_object(br#"{"a":{"b":[1,2.5,"c",null,true]}}"#).unwrap();
        assert_eq!(map["a"]["b"][1], 2.5);
    }

    #[test]
    fn only_one_object_is_accepted() {
        assert!(parse_object(b"[1]").is_err());
        assert!(parse_object(b"\"x\"").is_err());
        assert!(parse_object(br#"{"a":1} {"a":2}"#).is_err());
        assert!(parse_object(b"").is_err());
    }

    #[test]
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    fn skip_refuses_what_parse_object_refuses() {
        let skip = |json: &str| serde_json::from_str::<Skip>(json).is_ok();
        for json in [
            r#"{"a":1,"a":1}"#,
            r#"{"a":{"b":1,"b":2}}"#,
            r#"{"a":[{"b":1,"b":2}]}"#,
            r#"{"sub":"x","s\u0075b":"y"}"#,
            r#"{"a":1} {"a":2}"#,
            r#"{"a":"#,
        ] {
            assert!(!skip(json), "{json}");
            assert!(parse_object(json.as_bytes()).is_err(), "{json}");
        }
        assert!(skip(r#"{"a":{"b":[1,2.5,"c",null,true,{"b":1}]},"b":{}}"#));
    }

    #[test]
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    fn strings_are_borrowed_unless_escaped() {
        let Str(plain) = serde_json::from_str::<Str<'_>>(r#""alice""#).unwrap();
        assert!(matches!(plain, Cow::Borrowed("alice")));
        let Str(escaped) = serde_json::from_str::<Str<'_>>(r#""al\u0069ce""#).unwrap();
        assert_eq!(escaped, "alice");
        assert!(serde_json::from_str::<Str<'_>>("1").is_err());
    }
}
