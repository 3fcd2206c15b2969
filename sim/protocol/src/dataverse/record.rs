//! A record as the Web API writes it: attributes and annotations in name order, the values
//! borrowed from the stored row, serialized straight to the body.
//!
//! Building a `serde_json::Map` per record cloned every value, sorted the names and built a
//! tree only to write it out and drop it: for a whole 4 KB account, about a third of a GET's
//! time in the server. The names come out in the order a `Map` would give (byte order), so
//! the bytes are the same.

use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// One record's fields in name order, each name once.
#[derive(Debug, Default)]
pub(crate) struct Record<'a> {
    fields: Vec<(Cow<'a, str>, Field<'a>)>,
}

/// A field's value: one borrowed from the row or made for the answer, or the records of a
/// collection (a page's `value`).
#[derive(Debug)]
pub(crate) enum Field<'a> {
    Value(Cow<'a, Value>),
    Records(Vec<Record<'a>>),
}

impl<'a> Record<'a> {
    /// Fields already in strict name order (checked in debug builds, which every test runs).
    pub(crate) fn from_sorted(fields: Vec<(Cow<'a, str>, Field<'a>)>) -> Record<'a> {
        debug_assert!(fields.windows(2).all(|w| w[0].0 < w[1].0));
        Record { fields }
    }

    /// Fields in any order; of two with one name the later wins, as a later map insert would.
    pub(crate) fn from_fields(mut fields: Vec<(Cow<'a, str>, Field<'a>)>) -> Record<'a> {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        // `dedup_by` keeps the earlier of two equal neighbours: hand it the later's value.
        fields.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(&mut later.1, &mut earlier.1);
            }
            same
        });
        Record { fields }
    }

    /// Sets a field, replacing one of the same name.
    pub(crate) fn insert(&mut self, name: impl Into<Cow<'a, str>>, field: Field<'a>) {
        let name = name.into();
        match self.fields.binary_search_by(|(n, _)| n.as_ref().cmp(&name)) {
            Ok(i) => self.fields[i].1 = field,
            Err(i) => self.fields.insert(i, (name, field)),
        }
    }

    /// Sets a field to a value made for the answer.
    pub(crate) fn insert_value(&mut self, name: impl Into<Cow<'a, str>>, value: Value) {
        self.insert(name, Field::Value(Cow::Owned(value)));
    }

    /// The record as a JSON object, for an answer that nests it in a value.
    pub(crate) fn into_map(self) -> Map<String, Value> {
        self.fields
            .into_iter()
            .map(|(name, field)| (name.into_owned(), field.into_value()))
            .collect()
    }
}

impl Record<'_> {
    /// The record as JSON: the bytes `serde_json` writes for it, with the names (nearly
    /// always plain ASCII) copied rather than escaped byte by byte.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * self.fields.len() + 2);
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (name, field)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if name.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
                out.push(b'"');
                out.extend_from_slice(name.as_bytes());
                out.push(b'"');
            } else {
                write_value(out, name.as_ref());
            }
            out.push(b':');
            match field {
                Field::Value(v) => write_value(out, v.as_ref()),
                Field::Records(records) => {
                    out.push(b'[');
                    for (i, r) in records.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        r.write_json(out);
                    }
                    out.push(b']');
                }
            }
        }
        out.push(b'}');
    }
}

/// Writing JSON values to a vector cannot fail: serde_json fails only for map keys that are
/// not strings, and `Value` has none.
fn write_value(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    serde_json::to_writer(out, value).expect("JSON values write to a vector");
}

impl Field<'_> {
    fn into_value(self) -> Value {
        match self {
            Field::Value(v) => v.into_owned(),
            Field::Records(records) => Value::Array(
                records
                    .into_iter()
                    .map(|r| Value::Object(r.into_map()))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(v: Value) -> Field<'static> {
        Field::Value(Cow::Owned(v))
    }

    #[test]
    fn writes_the_bytes_a_map_of_the_same_fields_would() {
        let fields = [
            ("name", json!("Contoso")),
            ("@odata.etag", json!("W/\"1\"")),
            ("_ownerid_value", json!("u1")),
            ("name@OData.Community.Display.V1.FormattedValue", json!("x")),
            ("name", json!("Fabrikam")),
            ("accountid", json!("a1")),
            ("name_suffix", Value::Null),
            ("quote\"and\\back\u{1}", json!({"nested": [1, "two\n"]})),
            ("note", json!("\u{7f}é\"")),
        ];
        let record = Record::from_fields(
            fields
                .iter()
                .map(|(n, v)| (Cow::Borrowed(*n), value(v.clone())))
                .collect(),
        );
        let map: Map<String, Value> = fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        let written = serde_json::to_string(&map).unwrap();
        assert_eq!(String::from_utf8(record.to_json()).unwrap(), written);
        assert_eq!(record.into_map(), map);
    }

    #[test]
    fn insert_keeps_name_order_and_replaces() {
        let mut record = Record::from_sorted(vec![
            (Cow::Borrowed("a"), value(json!(1))),
            (Cow::Borrowed("c"), value(json!(3))),
        ]);
        record.insert_value("b", json!(2));
        record.insert_value("c", json!(4));
        record.insert(
            "value",
            Field::Records(vec![Record::default(), Record::default()]),
        );
        let written = r#"{"a":1,"b":2,"c":4,"value":[{},{}]}"#;
        assert_eq!(String::from_utf8(record.to_json()).unwrap(), written);
    }
}
