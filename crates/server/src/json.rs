//! JSON read in one pass, refusing what two readers of one text could read differently: a
//! member name repeated within one object (serde_json keeps the last, another reader the
//! first), and U+0000 in a string or a member name (no field holds one, and PostgreSQL text
//! cannot store one). Request bodies and fetched documents are read through it.

pub(crate) enum JsonError {
    /// Not JSON: bad syntax, trailing bytes, invalid UTF-8, nesting deeper than 128.
    Malformed(serde_json::Error),
    /// The JSON pointer of the first member name repeated within its object.
    Repeated(String),
    /// The JSON pointer of the first string or member name holding U+0000 (`\u0000`).
    Nul(String),
}

/// What a body that holds U+0000 is told.
pub(crate) const NUL_IN_JSON: &str =
    "a NUL character (\\u0000) is not allowed in a string or member name";

/// What [`parse_value`] refused in a well-formed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Repeated,
    Nul,
}

/// JSON → `Value`, in one pass, refusing a member name repeated within one object at any
/// depth: serde_json alone keeps the last, and two readers of one body could then disagree
/// about it (the same reasoning as for repeated form parameters). A string or member name
/// holding U+0000 is refused too: no field of this API holds one, and PostgreSQL text cannot
/// store one.
pub(crate) fn parse_value(bytes: &[u8]) -> Result<serde_json::Value, JsonError> {
    use serde::de::DeserializeSeed;
    let mut refused = None;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = UniqueValue {
        refused: &mut refused,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    match (parsed, refused) {
        (_, Some((Refusal::Repeated, pointer))) => Err(JsonError::Repeated(pointer)),
        (_, Some((Refusal::Nul, pointer))) => Err(JsonError::Nul(pointer)),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(JsonError::Malformed(e)),
    }
}

/// Builds a `Value`; at the first repeated member name, or string or name holding U+0000, it
/// stops with an error and leaves what it found and where (a JSON pointer) in `refused`, which
/// each enclosing level prefixes with its own segment as the error passes through it.
struct UniqueValue<'a> {
    refused: &'a mut Option<(Refusal, String)>,
}

impl UniqueValue<'_> {
    fn prefix(&mut self, segment: &str) {
        if let Some((_, pointer)) = self.refused.as_mut() {
            pointer.insert_str(0, &format!("/{segment}"));
        }
    }

    fn string<E: serde::de::Error>(self, v: String) -> Result<serde_json::Value, E> {
        if v.contains('\0') {
            *self.refused = Some((Refusal::Nul, String::new()));
            return Err(E::custom("NUL in a string"));
        }
        Ok(serde_json::Value::String(v))
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for UniqueValue<'_> {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueValue<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        mut self,
        mut map: A,
    ) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if name.contains('\0') {
                *self.refused = Some((Refusal::Nul, format!("/{}", escape_pointer(&name))));
                return Err(serde::de::Error::custom("NUL in a member name"));
            }
            if object.contains_key(&name) {
                *self.refused = Some((Refusal::Repeated, format!("/{}", escape_pointer(&name))));
                return Err(serde::de::Error::custom("repeated member name"));
            }
            let member = UniqueValue {
                refused: &mut *self.refused,
            };
            match map.next_value_seed(member) {
                Ok(value) => {
                    object.insert(name, value);
                }
                Err(e) => {
                    self.prefix(&escape_pointer(&name));
                    return Err(e);
                }
            }
        }
        Ok(serde_json::Value::Object(object))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        mut self,
        mut seq: A,
    ) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let element = UniqueValue {
                refused: &mut *self.refused,
            };
            match seq.next_element_seed(element) {
                Ok(Some(value)) => items.push(value),
                Ok(None) => return Ok(serde_json::Value::Array(items)),
                Err(e) => {
                    self.prefix(&items.len().to_string());
                    return Err(e);
                }
            }
        }
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Number(v.into()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // JSON has no NaN or infinity, so every parsed float is a number.
        Ok(serde_json::Number::from_f64(v)
            .map_or(serde_json::Value::Null, serde_json::Value::Number))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.string(v.to_owned())
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.string(v)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
}

/// `key` as a JSON pointer segment (RFC 6901: `~` as `~0`, `/` as `~1`).
pub(crate) fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
