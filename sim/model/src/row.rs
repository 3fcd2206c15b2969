//! The compact row: a sorted vector of (column, value) entries with interned column names.
//!
//! A row used to be a `serde_json::Map<String, Value>`: a B-tree with one heap string per
//! key per row, which cost several kilobytes for a 33-column Dataverse row. [`Row`] keeps
//! that map's API and its order (entries sorted by column *name*, so iteration, `Debug` and
//! every serialised byte are unchanged), but holds its entries in one vector found by
//! binary search, and its column names as [`Column`]s: one pointer to a shared name.
//!
//! # Interning and its bound
//!
//! Names are interned in one process-wide table, but only *stored* names enter it: building
//! a row (from JSON, a request body, `insert`) only *looks a name up*, sharing the interned
//! name when there is one and otherwise holding a name of its own (freed with the row).
//! [`Row::compact`], which the [`Store`](crate::store::Store) calls on every row it stores,
//! is what adds names — and a stored row's columns have passed its product's validation
//! (the catalogue's tables and entities, the model's own system columns), so the table
//! grows with the schema, not with what clients send. As a backstop against a schema
//! that lets anything through, the table takes at most [`MAX_INTERNED`] names of at most
//! [`MAX_INTERNED_LEN`] bytes; past that a name simply stays the row's own. Interning only
//! ever changes memory, never behaviour: a column compares, orders and prints by its text.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, Index, IndexMut};
use std::sync::{Arc, LazyLock, RwLock};

/// The most names the process-wide column table holds.
pub const MAX_INTERNED: usize = 16_384;
/// The longest name (in bytes) the process-wide column table takes.
pub const MAX_INTERNED_LEN: usize = 128;

struct Name {
    text: Box<str>,
    interned: bool,
}

/// A column name: a pointer to a name shared by every row that holds it (see the module
/// notes). Compares, orders, hashes and prints as its text.
#[derive(Clone)]
pub struct Column(Arc<Name>);

/// The interned names, found by their text.
#[derive(Clone)]
struct Interned(Arc<Name>);

impl Borrow<str> for Interned {
    fn borrow(&self) -> &str {
        &self.0.text
    }
}
impl PartialEq for Interned {
    fn eq(&self, other: &Self) -> bool {
        self.0.text == other.0.text
    }
}
impl Eq for Interned {}
impl Hash for Interned {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (*self.0.text).hash(state);
    }
}

static TABLE: LazyLock<RwLock<HashSet<Interned>>> = LazyLock::new(Default::default);

impl Column {
    /// The column of this name: the interned one when there is one, else a name of its own
    /// (this never adds to the interned names).
    pub fn new(name: &str) -> Column {
        if let Some(found) = Column::lookup(name) {
            return found;
        }
        Column(Arc::new(Name {
            text: name.into(),
            interned: false,
        }))
    }

    fn lookup(name: &str) -> Option<Column> {
        if name.len() > MAX_INTERNED_LEN {
            return None;
        }
        let table = TABLE.read().unwrap_or_else(|e| e.into_inner());
        table.get(name).map(|i| Column(i.0.clone()))
    }

    /// This column with its name interned (within the table's bounds).
    fn interned(self) -> Column {
        if self.0.interned || self.0.text.len() > MAX_INTERNED_LEN {
            return self;
        }
        let mut table = TABLE.write().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = table.get(&*self.0.text) {
            return Column(found.0.clone());
        }
        if table.len() >= MAX_INTERNED {
            return self;
        }
        let name = Arc::new(Name {
            text: self.0.text.clone(),
            interned: true,
        });
        table.insert(Interned(name.clone()));
        Column(name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }
}

impl Deref for Column {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0.text
    }
}
impl AsRef<str> for Column {
    fn as_ref(&self) -> &str {
        &self.0.text
    }
}
impl Borrow<str> for Column {
    fn borrow(&self) -> &str {
        &self.0.text
    }
}
impl PartialEq for Column {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.text == other.0.text
    }
}
impl Eq for Column {}
impl PartialEq<str> for Column {
    fn eq(&self, other: &str) -> bool {
        *self.0.text == *other
    }
}
impl PartialEq<&str> for Column {
    fn eq(&self, other: &&str) -> bool {
        *self.0.text == **other
    }
}
impl PartialEq<String> for Column {
    fn eq(&self, other: &String) -> bool {
        *self.0.text == **other
    }
}
impl PartialEq<Column> for str {
    fn eq(&self, other: &Column) -> bool {
        *self == *other.0.text
    }
}
impl PartialEq<Column> for &str {
    fn eq(&self, other: &Column) -> bool {
        **self == *other.0.text
    }
}
impl PartialEq<Column> for String {
    fn eq(&self, other: &Column) -> bool {
        **self == *other.0.text
    }
}
impl PartialOrd for Column {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Column {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.text.cmp(&other.0.text)
    }
}
impl Hash for Column {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (*self.0.text).hash(state);
    }
}
impl fmt::Debug for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0.text, f)
    }
}
impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0.text, f)
    }
}
impl From<&str> for Column {
    fn from(name: &str) -> Column {
        Column::new(name)
    }
}
impl From<&String> for Column {
    fn from(name: &String) -> Column {
        Column::new(name)
    }
}
impl From<String> for Column {
    fn from(name: String) -> Column {
        Column::lookup(&name).unwrap_or_else(|| {
            Column(Arc::new(Name {
                text: name.into_boxed_str(),
                interned: false,
            }))
        })
    }
}
impl From<&Column> for Column {
    fn from(c: &Column) -> Column {
        c.clone()
    }
}
impl From<Column> for String {
    fn from(c: Column) -> String {
        c.as_str().to_string()
    }
}
impl Serialize for Column {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.text)
    }
}

/// A row: column name to JSON value, in name order (see the module notes).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Row {
    entries: Vec<(Column, Value)>,
}

/// A row's entries by reference, in name order.
pub type Iter<'a> = std::iter::Map<
    std::slice::Iter<'a, (Column, Value)>,
    fn(&'a (Column, Value)) -> (&'a Column, &'a Value),
>;

/// A row's entries with their values mutable, in name order.
pub type IterMut<'a> = std::iter::Map<
    std::slice::IterMut<'a, (Column, Value)>,
    fn(&'a mut (Column, Value)) -> (&'a Column, &'a mut Value),
>;

/// A row's entries by value, in name order.
pub type IntoIter = std::vec::IntoIter<(Column, Value)>;

impl Row {
    /// An empty row.
    pub fn new() -> Row {
        Row::default()
    }

    /// An empty row with room for `n` columns.
    pub fn with_capacity(n: usize) -> Row {
        Row {
            entries: Vec::with_capacity(n),
        }
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(c, _)| (**c).cmp(key))
    }

    /// The value of a column.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    /// The value of a column, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    /// The column and value of a column.
    pub fn get_key_value(&self, key: &str) -> Option<(&Column, &Value)> {
        self.find(key).ok().map(|i| {
            let (c, v) = &self.entries[i];
            (c, v)
        })
    }

    /// Whether the row has this column.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets a column, answering its previous value.
    /// (`"name".into()` makes a column from a name.)
    pub fn insert(&mut self, key: Column, value: Value) -> Option<Value> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes a column, answering its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    /// Removes a column, answering it and its value.
    pub fn remove_entry(&mut self, key: &str) -> Option<(Column, Value)> {
        self.find(key).ok().map(|i| self.entries.remove(i))
    }

    /// Keeps the entries `keep` answers true for.
    pub fn retain(&mut self, mut keep: impl FnMut(&Column, &mut Value) -> bool) {
        self.entries.retain_mut(|(c, v)| keep(c, v));
    }

    /// Removes every column.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// How many columns the row has.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the row has no column.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in name order.
    pub fn iter(&self) -> Iter<'_> {
        self.entries.iter().map(|(c, v)| (c, v))
    }

    /// The entries in name order, values mutable.
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        self.entries.iter_mut().map(|(c, v)| (&*c, v))
    }

    /// The column names in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Column> + ExactSizeIterator + '_ {
        self.entries.iter().map(|(c, _)| c)
    }

    /// The values in column order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator + '_ {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The values in column order, mutable.
    pub fn values_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut Value> + ExactSizeIterator + '_ {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Moves every entry of `other` into this row (replacing equal columns), leaving it empty.
    pub fn append(&mut self, other: &mut Row) {
        let taken = std::mem::take(&mut other.entries);
        self.extend(taken);
    }

    /// Interns the column names and drops spare capacity (of the entries and of text
    /// values): what the store does to every row it keeps (see the module notes for the
    /// bound).
    pub fn compact(&mut self) {
        for (c, v) in &mut self.entries {
            if !c.0.interned {
                *c = c.clone().interned();
            }
            if let Value::String(s) = v {
                s.shrink_to_fit();
            }
        }
        self.entries.shrink_to_fit();
    }

    /// The row as a JSON object map.
    pub fn into_map(self) -> Map<String, Value> {
        self.entries
            .into_iter()
            .map(|(c, v)| (c.as_str().to_string(), v))
            .collect()
    }

    /// The row as a JSON object.
    pub fn into_value(self) -> Value {
        Value::Object(self.into_map())
    }

    /// A copy of the row as a JSON object map.
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter()
            .map(|(c, v)| (c.as_str().to_string(), v.clone()))
            .collect()
    }

    /// A copy of the row as a JSON object.
    pub fn to_value(&self) -> Value {
        Value::Object(self.to_map())
    }

    /// Entries in any order, later equal columns winning (as a map's inserts would).
    fn from_unsorted(mut entries: Vec<(Column, Value)>) -> Row {
        if entries.windows(2).all(|w| w[0].0 < w[1].0) {
            return Row { entries };
        }
        // A stable sort keeps equal columns in arrival order; the last of each run wins.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Column, Value)> = Vec::with_capacity(entries.len());
        for e in entries {
            match out.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => out.push(e),
            }
        }
        Row { entries: out }
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(c, v)| (c.as_str(), v)))
            .finish()
    }
}

impl Index<&str> for Row {
    type Output = Value;
    /// The value of a column; panics when the row has none (as a map's index does).
    fn index(&self, key: &str) -> &Value {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no column {key:?} in the row"),
        }
    }
}

impl IndexMut<&str> for Row {
    fn index_mut(&mut self, key: &str) -> &mut Value {
        match self.find(key) {
            Ok(i) => &mut self.entries[i].1,
            Err(_) => panic!("no column {key:?} in the row"),
        }
    }
}

impl<K: Into<Column>> FromIterator<(K, Value)> for Row {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Row {
        Row::from_unsorted(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

impl<K: Into<Column>> Extend<(K, Value)> for Row {
    fn extend<I: IntoIterator<Item = (K, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            let c: Column = k.into();
            match self.find(&c) {
                Ok(i) => self.entries[i].1 = v,
                Err(i) => self.entries.insert(i, (c, v)),
            }
        }
    }
}

impl IntoIterator for Row {
    type Item = (Column, Value);
    type IntoIter = IntoIter;
    fn into_iter(self) -> IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a Row {
    type Item = (&'a Column, &'a Value);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Row {
    type Item = (&'a Column, &'a mut Value);
    type IntoIter = IterMut<'a>;
    fn into_iter(self) -> IterMut<'a> {
        self.iter_mut()
    }
}

impl From<Map<String, Value>> for Row {
    /// A map's entries are already in name order.
    fn from(map: Map<String, Value>) -> Row {
        Row {
            entries: map.into_iter().map(|(k, v)| (Column::new(&k), v)).collect(),
        }
    }
}

impl From<&Map<String, Value>> for Row {
    fn from(map: &Map<String, Value>) -> Row {
        Row {
            entries: map
                .iter()
                .map(|(k, v)| (Column::new(k), v.clone()))
                .collect(),
        }
    }
}

impl From<Row> for Map<String, Value> {
    fn from(row: Row) -> Map<String, Value> {
        row.into_map()
    }
}

impl From<Row> for Value {
    fn from(row: Row) -> Value {
        row.into_value()
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.entries.len()))?;
        for (c, v) in &self.entries {
            map.serialize_entry(c.as_str(), v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = Row;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Row, A::Error> {
                let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0).min(256));
                while let Some(key) = access.next_key::<std::borrow::Cow<'de, str>>()? {
                    let value: Value = access.next_value()?;
                    entries.push((Column::new(&key), value));
                }
                Ok(Row::from_unsorted(entries))
            }
        }
        d.deserialize_map(RowVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn both(v: Value) -> (Row, Map<String, Value>) {
        let map = v.as_object().cloned().unwrap_or_default();
        let row: Row = serde_json::from_value(v).unwrap_or_default();
        (row, map)
    }

    #[test]
    fn serialises_and_prints_as_the_map_did() {
        let v = json!({"b": 1, "a": {"z": [1, "x"], "y": null}, "_c_value": "é\"q", "B": true});
        let (row, map) = both(v);
        assert_eq!(
            serde_json::to_string(&row).ok(),
            serde_json::to_string(&map).ok()
        );
        assert_eq!(format!("{row:?}"), format!("{map:?}"));
        assert_eq!(format!("{row:#?}"), format!("{map:#?}"));
        assert_eq!(Row::from(map.clone()), row);
        assert_eq!(row.clone().into_map(), map);
        let keys: Vec<&str> = row.keys().map(|c| c.as_str()).collect();
        let map_keys: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, map_keys);
    }

    #[test]
    fn later_duplicates_win_as_in_a_map() {
        let row: Row = serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap_or_default();
        let map: Map<String, Value> =
            serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap_or_default();
        assert_eq!(row.to_map(), map);
        let collected: Row = [("x", json!(1)), ("a", json!(2)), ("x", json!(3))]
            .into_iter()
            .collect();
        assert_eq!(collected.get("x"), Some(&json!(3)));
        assert_eq!(collected.len(), 2);
    }

    #[test]
    fn map_operations() {
        let mut row = Row::new();
        assert_eq!(row.insert("m".into(), json!(1)), None);
        assert_eq!(row.insert("a".to_string().into(), json!(2)), None);
        assert_eq!(row.insert((&"z".to_string()).into(), json!(3)), None);
        assert_eq!(row.insert("m".into(), json!(4)), Some(json!(1)));
        assert_eq!(row["m"], json!(4));
        assert!(row.contains_key("a") && !row.contains_key("b"));
        if let Some(v) = row.get_mut("z") {
            *v = json!("zz");
        }
        assert_eq!(row.remove("a"), Some(json!(2)));
        assert_eq!(row.remove("a"), None);
        row.extend([("b", json!(true)), ("m", json!(5))]);
        let pairs: Vec<(String, Value)> = row
            .iter()
            .map(|(c, v)| (c.to_string(), v.clone()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("b".to_string(), json!(true)),
                ("m".to_string(), json!(5)),
                ("z".to_string(), json!("zz"))
            ]
        );
    }

    #[test]
    fn only_stored_names_are_interned_and_within_bounds() {
        let name = "row_tests_only_stored_names_are_interned";
        let mut row = Row::new();
        row.insert(name.into(), json!(1));
        assert!(
            Column::lookup(name).is_none(),
            "building a row interns nothing"
        );
        row.compact();
        let shared = Column::lookup(name);
        assert!(shared.is_some());
        let again = Column::new(name);
        assert!(shared.is_some_and(|s| Arc::ptr_eq(&s.0, &again.0)));
        let long = "x".repeat(MAX_INTERNED_LEN + 1);
        let mut row = Row::new();
        row.insert(long.as_str().into(), json!(1));
        row.compact();
        assert!(Column::lookup(&long).is_none());
        assert_eq!(row.get(&long), Some(&json!(1)));
    }
}
