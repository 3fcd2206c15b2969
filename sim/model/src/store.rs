//! Row storage with an undo log. A dual-write is one transaction across two products: the
//! runtime takes a savepoint on both stores, and a failure on either side rolls both back to
//! it. Outside a transaction nothing is logged.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

pub use crate::row::{Column, Row};

/// A JSON object literal as a row.
pub fn obj(v: Value) -> Row {
    match v {
        Value::Object(m) => Row::from(m),
        _ => Row::new(),
    }
}

#[derive(Debug, Clone)]
enum Undo {
    /// Restore `previous` (or remove the row when it did not exist).
    Row {
        table: String,
        id: String,
        previous: Option<Row>,
    },
}

/// How an index folds a column's value into its key: letter case and number spelling fold
/// away (a string that reads as a number folds as that number), and a missing value is
/// null. Two values the model deems equal (Dataverse's case-insensitive `same_value`,
/// F&O's case-insensitive text of a value) always fold alike; the fold may be coarser than
/// those comparisons, never finer, because callers still test every candidate with their
/// own comparison.
enum Folded<'v> {
    Empty,
    Number(f64),
    /// ASCII text, to be lowercased.
    Ascii(&'v str),
    /// Text already lowercased.
    Text(String),
}

fn folded(v: Option<&Value>) -> Folded<'_> {
    match v {
        // F&O has no nulls: empty text reads as a missing value, so both fold alike.
        None | Some(Value::Null) => Folded::Empty,
        Some(Value::String(s)) if s.is_empty() => Folded::Empty,
        Some(Value::String(s)) => match may_be_number(s).then(|| s.trim().parse::<f64>()) {
            Some(Ok(f)) => Folded::Number(f),
            _ if s.is_ascii() => Folded::Ascii(s),
            _ => Folded::Text(s.to_lowercase()),
        },
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) => Folded::Number(f),
            None => Folded::Text(n.to_string()),
        },
        Some(other) => Folded::Text(other.to_string().to_lowercase()),
    }
}

/// Whether text could read as a number (`f64`'s own parse: digits, a sign, a point, or
/// `inf`/`nan` in any case), so that most text skips the parse.
fn may_be_number(s: &str) -> bool {
    s.trim_start().bytes().next().is_some_and(|b| {
        b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'i' | b'I' | b'n' | b'N')
    })
}

/// The hash an index files a row under: of its folded values, one after the other. Two rows
/// whose values fold alike hash alike; two that do not may still collide, which only makes
/// the index coarser (callers test every candidate). The seed is fixed, so an index holds
/// the same entries in every run.
fn key_hash<'v>(values: impl Iterator<Item = Option<&'v Value>>) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x6477_7369_6d00_0001).build_hasher();
    for v in values {
        h.write_u8(0x1f);
        match folded(v) {
            Folded::Empty => h.write_u8(0),
            Folded::Number(f) => {
                h.write_u8(1);
                // Each number has one text (the shortest that reads back), so its bits
                // stand for that text; zero's two signs fold to one.
                h.write_u64(if f == 0.0 { 0 } else { f.to_bits() });
            }
            Folded::Ascii(s) => {
                h.write_u8(2);
                write_text(&mut h, s.bytes().map(|b| b.to_ascii_lowercase()));
            }
            Folded::Text(s) => {
                h.write_u8(2);
                write_text(&mut h, s.bytes());
            }
        }
    }
    h.finish()
}

/// Feeds text to a hasher in fixed 32-byte pieces, so that the same text always makes the
/// same writes (a hasher may hash one write differently from two).
fn write_text(h: &mut impl std::hash::Hasher, mut bytes: impl Iterator<Item = u8>) {
    let mut piece = [0u8; 32];
    loop {
        let mut n = 0;
        for slot in piece.iter_mut() {
            match bytes.next() {
                Some(b) => {
                    *slot = b;
                    n += 1;
                }
                None => break,
            }
        }
        h.write(&piece[..n]);
        if n < piece.len() {
            return;
        }
    }
}

/// A row's primary id: its text in one allocation shared by its table and every index
/// entry of the row, and its first 16 bytes inline. A descent of a table's tree compares
/// the inline heads and reads the text only when two heads tie, instead of following a
/// pointer to somewhere else in memory at every comparison (at 500,000 rows, most of what
/// a lookup cost).
#[derive(Debug, Clone)]
struct Id {
    head: u128,
    text: Arc<str>,
}

impl Id {
    fn new(text: &str) -> Id {
        Id {
            head: head_of(text),
            text: Arc::from(text),
        }
    }
}

/// The first 16 bytes of an id, zero-padded, as a number that orders as the bytes do (a
/// shorter text pads with zeros, so it still orders before every longer one it starts).
fn head_of(text: &str) -> u128 {
    let mut head = [0u8; 16];
    let n = text.len().min(16);
    head[..n].copy_from_slice(&text.as_bytes()[..n]);
    u128::from_be_bytes(head)
}

/// What a tree of ids is searched with: an id, or borrowed text with its head worked out
/// once ([`Probe`]). Both order by head, then by text, which is the order of the text.
trait IdKey {
    fn parts(&self) -> (u128, &str);
}

impl IdKey for Id {
    fn parts(&self) -> (u128, &str) {
        (self.head, &self.text)
    }
}

/// Borrowed text to look an id up by, without making an [`Id`].
struct Probe<'a>(u128, &'a str);

impl<'a> Probe<'a> {
    fn of(text: &'a str) -> Probe<'a> {
        Probe(head_of(text), text)
    }
}

impl IdKey for Probe<'_> {
    fn parts(&self) -> (u128, &str) {
        (self.0, self.1)
    }
}

impl<'a> std::borrow::Borrow<dyn IdKey + 'a> for Id {
    fn borrow(&self) -> &(dyn IdKey + 'a) {
        self
    }
}

impl PartialEq for dyn IdKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn IdKey + '_ {}

impl PartialOrd for dyn IdKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn IdKey + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for Id {}

impl PartialOrd for Id {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Id {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// Index keys are already hashes.
#[derive(Default, Clone, Copy)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A secondary index: the ids of a table's rows by the hash of their folded values in some
/// columns (see [`key_hash`]). It answers candidates in id order, so a first match is the
/// one a scan would find. A key held by a single row (the usual case: alternate and
/// integration keys) keeps its id inline, and ids are shared with the table, so an index
/// costs about one hash-table slot per row and no allocation of its own.
#[derive(Debug, Clone)]
struct Index {
    columns: Vec<String>,
    entries: Shards,
}

/// An index's keys, split over [`Shards::COUNT`] hash tables by bits of the key that the
/// tables themselves do not use for buckets or tags. A hash table grows by rehashing all it
/// holds at once, under the world's lock: one table of 230,000 keys stalled every request
/// for tens of milliseconds (creates' p99.9 of 30–60 ms). A shard rehashes a 64th of that.
#[derive(Debug, Clone)]
struct Shards(Box<[HashMap<u64, Ids, BuildHasherDefault<PassThrough>>]>);

impl Default for Shards {
    fn default() -> Shards {
        Shards((0..Shards::COUNT).map(|_| HashMap::default()).collect())
    }
}

impl Shards {
    const COUNT: usize = 64;

    /// The table of a key: bits 32–37, clear of the low bits that pick a bucket and the
    /// top seven a table keeps as tags.
    fn of(&self, key: u64) -> usize {
        (key >> 32) as usize % Self::COUNT
    }

    fn get(&self, key: &u64) -> Option<&Ids> {
        self.0[self.of(*key)].get(key)
    }

    fn get_mut(&mut self, key: &u64) -> Option<&mut Ids> {
        let shard = self.of(*key);
        self.0[shard].get_mut(key)
    }

    fn insert(&mut self, key: u64, ids: Ids) {
        let shard = self.of(key);
        self.0[shard].insert(key, ids);
    }

    fn remove(&mut self, key: &u64) {
        let shard = self.of(*key);
        self.0[shard].remove(key);
    }
}

/// The ids under one index key, in id order. A single id is kept as its text alone (the
/// usual case, and the smaller); a set keeps ids with their inline heads, as a company's
/// key holds every row of the company and its set is searched on every insert.
#[derive(Debug, Clone)]
enum Ids {
    One(Arc<str>),
    Many(BTreeSet<Id>),
}

impl Ids {
    fn insert(&mut self, id: &Id) {
        match self {
            Ids::One(only) if **only == *id.text => {}
            Ids::One(only) => {
                let first = Id {
                    head: head_of(only),
                    text: only.clone(),
                };
                *self = Ids::Many([first, id.clone()].into_iter().collect());
            }
            Ids::Many(set) => {
                set.insert(id.clone());
            }
        }
    }

    /// Removes `id`; answers whether no id is left.
    fn remove(&mut self, id: &str) -> bool {
        match self {
            Ids::One(only) => &**only == id,
            Ids::Many(set) => {
                set.remove(&Probe::of(id) as &dyn IdKey);
                if set.len() == 1 {
                    if let Some(last) = set.pop_first() {
                        *self = Ids::One(last.text);
                    }
                }
                false // a set holds two ids or more, so one is left
            }
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Ids::One(only) => Box::new(std::iter::once(&**only)),
            Ids::Many(set) => Box::new(set.iter().map(|id| &*id.text)),
        }
    }
}

impl Index {
    fn key(&self, row: &Row) -> u64 {
        key_hash(self.columns.iter().map(|c| row.get(c)))
    }

    fn add(&mut self, id: &Id, row: &Row) {
        let key = self.key(row);
        self.add_key(id, key);
    }

    fn add_key(&mut self, id: &Id, key: u64) {
        match self.entries.get_mut(&key) {
            Some(ids) => ids.insert(id),
            None => {
                self.entries.insert(key, Ids::One(id.text.clone()));
            }
        }
    }

    fn drop_row(&mut self, id: &str, row: &Row) {
        let key = self.key(row);
        if let Some(ids) = self.entries.get_mut(&key) {
            if ids.remove(id) {
                self.entries.remove(&key);
            }
        }
    }

    /// Moves `id` from `old`'s key to `new`'s, or leaves it when the key is the same.
    fn update(&mut self, id: &Id, old: &Row, new: &Row) {
        if self.columns.iter().all(|c| old.get(c) == new.get(c)) {
            return;
        }
        self.drop_row(&id.text, old);
        self.add(id, new);
    }
}

/// One table: rows by primary id, and the indexes its owner declared.
#[derive(Debug, Clone, Default)]
struct Table {
    rows: BTreeMap<Id, Row>,
    indexes: Vec<Index>,
    /// Whether a row was ever written: declaring an index alone does not make a table
    /// part of the state.
    written: bool,
}

impl Table {
    fn put(&mut self, id: &str, mut row: Row) -> Option<Row> {
        use std::collections::btree_map::Entry;
        self.written = true;
        row.compact();
        // One descent whether the row is new or replaced (a replaced row's new id is
        // dropped again, which costs less than a second descent).
        match self.rows.entry(Id::new(id)) {
            Entry::Occupied(mut entry) => {
                let key = entry.key().clone();
                for index in &mut self.indexes {
                    index.update(&key, entry.get(), &row);
                }
                Some(entry.insert(row))
            }
            Entry::Vacant(entry) => {
                for index in &mut self.indexes {
                    index.add(entry.key(), &row);
                }
                entry.insert(row);
                None
            }
        }
    }

    fn put_new(&mut self, id: &str, mut row: Row, keys: Option<IndexKeys>) -> bool {
        use std::collections::btree_map::Entry;
        let Entry::Vacant(entry) = self.rows.entry(Id::new(id)) else {
            return false;
        };
        self.written = true;
        row.compact();
        match keys.filter(|k| k.0.len() == self.indexes.len()) {
            Some(keys) => {
                for (index, key) in self.indexes.iter_mut().zip(keys.0) {
                    index.add_key(entry.key(), key);
                }
            }
            None => {
                for index in &mut self.indexes {
                    index.add(entry.key(), &row);
                }
            }
        }
        entry.insert(row);
        true
    }

    /// A row and its id, by the id's text.
    fn find(&self, id: &str) -> Option<(&Id, &Row)> {
        self.rows.get_key_value(&Probe::of(id) as &dyn IdKey)
    }

    fn remove(&mut self, id: &str) -> Option<Row> {
        let previous = self.rows.remove(&Probe::of(id) as &dyn IdKey)?;
        for index in &mut self.indexes {
            index.drop_row(id, &previous);
        }
        Some(previous)
    }
}

/// Tables of rows keyed by a primary id, with secondary indexes and savepoints.
#[derive(Debug, Clone, Default)]
pub struct Store {
    /// By name; hashed, as every read and write finds its table first (name order is
    /// restored where it shows: [`Store::table_names`] and serialisation).
    tables: HashMap<String, Table, foldhash::fast::FixedState>,
    undo: Vec<Undo>,
    open: usize,
}

/// A row's keys in each index of its table, in declaration order ([`Store::index_keys`]).
#[derive(Debug, Clone)]
pub struct IndexKeys(Vec<u64>);

/// A position in the undo log to roll back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Savepoint(usize);

impl Store {
    /// A row by table and id.
    pub fn get(&self, table: &str, id: &str) -> Option<&Row> {
        self.tables
            .get(table)
            .and_then(|t| t.find(id))
            .map(|(_, row)| row)
    }

    /// Rows of a table in primary-id order.
    pub fn rows(&self, table: &str) -> impl Iterator<Item = (&str, &Row)> {
        self.tables
            .get(table)
            .into_iter()
            .flat_map(|t| t.rows.iter().map(|(id, row)| (&*id.text, row)))
    }

    /// The rows that may hold these column values, in primary-id order: through the index
    /// that pins most of the columns, or every row when no index applies or the index's
    /// answer is a good part of the table. Callers still test each row with their own
    /// comparison; the index only narrows the search.
    pub fn candidates<'a>(
        &'a self,
        table: &str,
        pins: &[(&str, Option<&Value>)],
    ) -> Box<dyn Iterator<Item = (&'a str, &'a Row)> + 'a> {
        let Some(t) = self.tables.get(table) else {
            return Box::new(std::iter::empty());
        };
        let best = t
            .indexes
            .iter()
            .filter(|i| i.columns.iter().all(|c| pins.iter().any(|(p, _)| p == c)))
            .max_by_key(|i| i.columns.len());
        let Some(index) = best else {
            return Box::new(t.rows.iter().map(|(id, row)| (&*id.text, row)));
        };
        let key = key_hash(
            index
                .columns
                .iter()
                .map(|c| pins.iter().find(|(p, _)| p == c).and_then(|(_, v)| *v)),
        );
        match index.entries.get(&key) {
            // When the key holds much of the table (a company's rows), walking the table
            // in order is cheaper than a descent per id, and callers test every row anyway.
            Some(Ids::Many(set)) if set.len() > t.rows.len() / 4 => {
                Box::new(t.rows.iter().map(|(id, row)| (&*id.text, row)))
            }
            Some(ids) => Box::new(
                ids.iter()
                    .filter_map(|id| t.find(id))
                    .map(|(id, row)| (&*id.text, row)),
            ),
            None => Box::new(std::iter::empty()),
        }
    }

    /// Declares an index on `columns` of `table` (idempotent) and builds it from the rows
    /// already there; every later write keeps it current, rollbacks included.
    pub fn index(&mut self, table: &str, columns: &[String]) {
        let t = self.tables.entry(table.to_string()).or_default();
        if t.indexes.iter().any(|i| i.columns == columns) {
            return;
        }
        let mut index = Index {
            columns: columns.to_vec(),
            entries: Shards::default(),
        };
        for (id, row) in &t.rows {
            index.add(id, row);
        }
        t.indexes.push(index);
    }

    /// How many rows a table has.
    pub fn count(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, |t| t.rows.len())
    }

    /// The tables that have (or had) rows, in name order.
    pub fn table_names(&self) -> impl Iterator<Item = &String> {
        let mut names: Vec<&String> = self
            .tables
            .iter()
            .filter(|(_, t)| t.written)
            .map(|(name, _)| name)
            .collect();
        names.sort();
        names.into_iter()
    }

    /// Inserts or replaces a row (logged when a transaction is open).
    pub fn put(&mut self, table: &str, id: &str, row: Row) {
        let previous = match self.tables.get_mut(table) {
            Some(t) => t.put(id, row),
            None => self
                .tables
                .entry(table.to_string())
                .or_default()
                .put(id, row),
        };
        self.log(table, id, previous);
    }

    /// Inserts a row under an id no row has yet, answering false (and storing nothing)
    /// when one has: a create's check and write in one descent.
    pub fn put_new(&mut self, table: &str, id: &str, row: Row) -> bool {
        self.put_new_keyed(table, id, row, None)
    }

    /// [`Store::put_new`] with the row's index keys worked out beforehand
    /// ([`Store::index_keys`], for the row as stored, ids aside), maybe on another thread.
    pub fn put_new_keyed(
        &mut self,
        table: &str,
        id: &str,
        row: Row,
        keys: Option<IndexKeys>,
    ) -> bool {
        let t = match self.tables.get_mut(table) {
            Some(t) => t,
            None => self.tables.entry(table.to_string()).or_default(),
        };
        if !t.put_new(id, row, keys) {
            return false;
        }
        self.log(table, id, None);
        true
    }

    /// The keys a row files under in each index of `table`, or none when an index reads
    /// one of the `unset` columns (whose values the row does not hold yet).
    pub fn index_keys(&self, table: &str, row: &Row, unset: &[&str]) -> Option<IndexKeys> {
        let indexes = self.tables.get(table).map_or(&[][..], |t| &t.indexes[..]);
        if indexes
            .iter()
            .any(|i| i.columns.iter().any(|c| unset.contains(&c.as_str())))
        {
            return None;
        }
        Some(IndexKeys(indexes.iter().map(|i| i.key(row)).collect()))
    }

    /// Removes a row, answering it (logged when a transaction is open).
    pub fn remove(&mut self, table: &str, id: &str) -> Option<Row> {
        let previous = self.tables.get_mut(table).and_then(|t| t.remove(id));
        if previous.is_some() {
            self.log(table, id, previous.clone());
        }
        previous
    }

    fn log(&mut self, table: &str, id: &str, previous: Option<Row>) {
        if self.open > 0 {
            self.undo.push(Undo::Row {
                table: table.to_string(),
                id: id.to_string(),
                previous,
            });
        }
    }

    /// Opens a (possibly nested) transaction.
    pub fn begin(&mut self) -> Savepoint {
        self.open += 1;
        Savepoint(self.undo.len())
    }

    /// Keeps the changes since `sp`; the log is dropped once the outermost transaction ends.
    pub fn commit(&mut self, _sp: Savepoint) {
        self.open = self.open.saturating_sub(1);
        if self.open == 0 {
            self.undo.clear();
        }
    }

    /// Undoes every change since `sp`, newest first, and closes the transaction.
    pub fn rollback(&mut self, sp: Savepoint) {
        while self.undo.len() > sp.0 {
            let Some(Undo::Row {
                table,
                id,
                previous,
            }) = self.undo.pop()
            else {
                break;
            };
            let t = self.tables.entry(table).or_default();
            match previous {
                Some(row) => {
                    t.put(&id, row);
                }
                None => {
                    t.remove(&id);
                }
            }
        }
        self.open = self.open.saturating_sub(1);
        if self.open == 0 {
            self.undo.clear();
        }
    }
}

/// Only the rows are state: indexes are declared again by their owner after an import,
/// and an open transaction never outlives one World operation.
impl Serialize for Store {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut tables: Vec<(&String, &Table)> =
            self.tables.iter().filter(|(_, t)| t.written).collect();
        tables.sort_by_key(|(name, _)| *name);
        let mut map = s.serialize_map(Some(tables.len()))?;
        for (name, t) in tables {
            map.serialize_entry(name, &Rows(&t.rows))?;
        }
        map.end()
    }
}

/// A table's rows by id, serialised as a JSON object.
struct Rows<'a>(&'a BTreeMap<Id, Row>);

impl Serialize for Rows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(id, row)| (&*id.text, row)))
    }
}

impl<'de> Deserialize<'de> for Store {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let tables = BTreeMap::<String, CompactRows>::deserialize(d)?;
        Ok(Store {
            tables: tables
                .into_iter()
                .map(|(name, CompactRows(rows))| {
                    (
                        name,
                        Table {
                            rows,
                            indexes: Vec::new(),
                            written: true,
                        },
                    )
                })
                .collect(),
            undo: Vec::new(),
            open: 0,
        })
    }
}

/// A table's rows read from a JSON object, each packed as soon as it is read: an import
/// holds one row at a time in its loose form, not the whole state (about four times the
/// size of the packed rows).
struct CompactRows(BTreeMap<Id, Row>);

impl<'de> Deserialize<'de> for CompactRows {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = CompactRows;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table's rows by id")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<CompactRows, A::Error> {
                let mut rows = BTreeMap::new();
                // A repeated id keeps its last row, as a map read whole would.
                while let Some((id, mut row)) = map.next_entry::<std::borrow::Cow<str>, Row>()? {
                    row.compact();
                    rows.insert(Id::new(&id), row);
                }
                Ok(CompactRows(rows))
            }
        }
        d.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Row {
        obj(v)
    }

    #[test]
    fn rollback_restores_updates_inserts_and_deletes() {
        let mut s = Store::default();
        s.put("t", "a", row(json!({"v": 1})));
        s.put("t", "b", row(json!({"v": 2})));
        let sp = s.begin();
        s.put("t", "a", row(json!({"v": 10})));
        s.put("t", "c", row(json!({"v": 3})));
        s.remove("t", "b");
        s.rollback(sp);
        assert_eq!(s.get("t", "a"), Some(&row(json!({"v": 1}))));
        assert_eq!(s.get("t", "b"), Some(&row(json!({"v": 2}))));
        assert_eq!(s.get("t", "c"), None);
    }

    #[test]
    fn indexes_follow_writes_and_rollbacks() {
        let mut s = Store::default();
        s.put("t", "a", row(json!({"k": "X", "c": 1})));
        s.index("t", &["k".to_string(), "c".to_string()]);
        let find = |s: &Store, k: &str, c: f64| -> Vec<String> {
            let (k, c) = (json!(k), json!(c));
            s.candidates("t", &[("k", Some(&k)), ("c", Some(&c))])
                .map(|(id, _)| id.to_string())
                .collect()
        };
        assert_eq!(
            find(&s, "x", 1.0),
            ["a"],
            "case and number spelling fold away"
        );
        let sp = s.begin();
        s.put("t", "a", row(json!({"k": "Y", "c": 1})));
        s.put("t", "b", row(json!({"k": "X", "c": 1})));
        assert_eq!(find(&s, "x", 1.0), ["b"]);
        assert_eq!(find(&s, "y", 1.0), ["a"]);
        s.rollback(sp);
        assert_eq!(find(&s, "x", 1.0), ["a"]);
        assert!(find(&s, "y", 1.0).is_empty());
        s.remove("t", "a");
        assert!(find(&s, "x", 1.0).is_empty());
        // Empty text and a missing value fold alike, as F&O reads them alike.
        s.put("t", "e", row(json!({"c": 1})));
        s.put("t", "f", row(json!({"k": "", "c": 1})));
        s.put("t", "g", row(json!({"k": null, "c": "1.0"})));
        assert_eq!(find(&s, "", 1.0), ["e", "f", "g"]);
        // A pin no index covers scans every row.
        let v = json!(1);
        assert_eq!(s.candidates("t", &[("c", Some(&v))]).count(), 3);
    }

    #[test]
    fn ids_order_as_their_text_whatever_their_heads() {
        // Heads tie past 16 bytes, a shorter id is a prefix of longer ones, and text that
        // is not ASCII: the table still walks, finds and removes in the text's order.
        let ids = [
            "usmf|gen-0000123",
            "usmf|gen-0000123|x",
            "usmf|gen-0000123|",
            "usmf|gen-000012",
            "usmf|gen-0000124",
            "",
            "a",
            "é",
            "usmf|gen-0000123\u{0}",
        ];
        let mut s = Store::default();
        s.index("t", &["k".to_string()]);
        for id in ids {
            s.put("t", id, row(json!({"k": 1})));
        }
        // Enough other rows that key 1's set is searched rather than the table walked.
        for i in 0..40 {
            s.put("t", &format!("z{i}"), row(json!({"k": 2})));
        }
        let mut sorted: Vec<&str> = ids.to_vec();
        sorted.sort();
        let walked: Vec<&str> = s
            .rows("t")
            .map(|(id, _)| id)
            .filter(|id| ids.contains(id))
            .collect();
        assert_eq!(walked, sorted);
        let one = json!(1);
        let through_index: Vec<&str> = s
            .candidates("t", &[("k", Some(&one))])
            .map(|(id, _)| id)
            .collect();
        assert_eq!(
            through_index, sorted,
            "the company-wide set walks in the same order"
        );
        for id in ids {
            assert!(s.get("t", id).is_some(), "{id:?} is found");
        }
        assert!(s.get("t", "usmf|gen-00001").is_none());
        assert!(s.remove("t", "usmf|gen-0000123|").is_some());
        assert!(s.get("t", "usmf|gen-0000123|").is_none());
        assert!(s.get("t", "usmf|gen-0000123|x").is_some());
        assert_eq!(s.count("t"), ids.len() + 40 - 1);
    }

    #[test]
    fn a_store_reads_back_what_it_wrote_and_a_repeated_id_keeps_its_last_row() {
        let mut s = Store::default();
        s.put("t", "b", row(json!({"k": "X", "n": 1})));
        s.put("t", "a", row(json!({"k": "Y", "n": null})));
        s.put("u", "a", row(json!({})));
        let written = serde_json::to_string(&s).unwrap_or_default();
        let read: Store = serde_json::from_str(&written).expect("reads back");
        assert_eq!(serde_json::to_string(&read).unwrap_or_default(), written);
        assert_eq!(read.get("t", "b"), Some(&row(json!({"k": "X", "n": 1}))));
        let repeated: Store =
            serde_json::from_str(r#"{"t": {"a": {"n": 1}, "a": {"n": 2}}}"#).expect("reads");
        assert_eq!(repeated.get("t", "a"), Some(&row(json!({"n": 2}))));
        assert!(serde_json::from_str::<Store>(r#"{"t": [1]}"#).is_err());
    }

    #[test]
    fn an_index_alone_is_not_state() {
        let mut s = Store::default();
        s.index("t", &["k".to_string()]);
        assert_eq!(serde_json::to_string(&s).unwrap_or_default(), "{}");
        assert_eq!(s.table_names().count(), 0);
    }

    #[test]
    fn nested_commit_keeps_outer_rollback_possible() {
        let mut s = Store::default();
        let outer = s.begin();
        let inner = s.begin();
        s.put("t", "a", row(json!({"v": 1})));
        s.commit(inner);
        s.rollback(outer);
        assert_eq!(s.count("t"), 0);
    }
}
