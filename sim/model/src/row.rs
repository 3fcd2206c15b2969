//! The compact row: sorted (column, value) entries with interned column names, packed
//! against a shared layout once stored.
//!
//! A row used to be a `serde_json::Map<String, Value>`: a B-tree with one heap string per
//! key per row, which cost several kilobytes for a 33-column Dataverse row. [`Row`] keeps
//! that map's API and its order (entries sorted by column *name*, so iteration, `Debug` and
//! every serialised byte are unchanged). A row being built holds its entries in one vector
//! found by binary search, with its column names as [`Column`]s: one pointer to a shared
//! name. A stored row ([`Row::compact`]) is *packed*: its columns are a layout shared by
//! every stored row with the same columns, and it keeps only the values that differ from
//! the layout's template (the values of the first row stored with it). Most of a synced
//! account (owner, company, currency, stamps, two-option defaults) is the same in every
//! row, so a packed account holds a handful of values. Changing a packed row unpacks it.
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
//! Layouts are bounded the same way ([`MAX_LAYOUTS`], [`MAX_LAYOUT_COLUMNS`]): past them a
//! stored row keeps its own entries.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, Index, IndexMut};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

/// The most names the process-wide column table holds.
pub const MAX_INTERNED: usize = 16_384;
/// The longest name (in bytes) the process-wide column table takes.
pub const MAX_INTERNED_LEN: usize = 128;

struct Name {
    /// The first eight bytes of the text, big-endian and zero-padded: most names differ
    /// within them, so comparing these orders most pairs without reaching the text.
    prefix: u64,
    text: Box<str>,
    interned: bool,
}

impl Name {
    fn new(text: Box<str>, interned: bool) -> Name {
        Name {
            prefix: prefix_of(&text),
            text,
            interned,
        }
    }
}

/// A text's first eight bytes as a big-endian number, zero-padded: ordering two of these
/// orders their texts, unless they are equal (then the texts decide).
fn prefix_of(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut first = [0u8; 8];
    let n = bytes.len().min(8);
    first[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(first)
}

/// A column against a name: by prefix first, then by text.
fn cmp_to(c: &Column, prefix: u64, text: &str) -> Ordering {
    c.0.prefix.cmp(&prefix).then_with(|| (*c.0.text).cmp(text))
}

/// A column name: a pointer to a name shared by every row that holds it (see the module
/// notes). Compares, orders, hashes and prints as its text.
#[derive(Clone)]
pub struct Column(NameRef);

/// How a column holds its name. Interned names live as long as the process (the table
/// never lets one go), so a column of one is a plain reference: cloning and dropping it
/// touch no reference count. That matters when initial sync builds rows on several threads
/// at once: a shared count written by every clone on both cores kept moving its cache line
/// (with the name's text beside it) from one core to the other.
#[derive(Clone)]
enum NameRef {
    Interned(&'static Name),
    Own(Arc<Name>),
}

impl Deref for NameRef {
    type Target = Name;
    fn deref(&self) -> &Name {
        match self {
            NameRef::Interned(name) => name,
            NameRef::Own(name) => name,
        }
    }
}

impl NameRef {
    fn as_ptr(&self) -> *const Name {
        &**self
    }

    fn ptr_eq(&self, other: &NameRef) -> bool {
        std::ptr::eq(self.as_ptr(), other.as_ptr())
    }
}

/// A column of a name the model itself writes, interned once per call site: for hot paths
/// (stamping every write) where looking the name up each time shows.
#[macro_export]
macro_rules! column {
    ($name:literal) => {{
        static COLUMN: std::sync::LazyLock<$crate::row::Column> =
            std::sync::LazyLock::new(|| $crate::row::Column::schema($name));
        COLUMN.clone()
    }};
}

/// The interned names, found by their text.
#[derive(Clone)]
struct Interned(&'static Name);

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

static TABLE: LazyLock<RwLock<HashSet<Interned, foldhash::fast::FixedState>>> =
    LazyLock::new(Default::default);

impl Column {
    /// The column of this name: the interned one when there is one, else a name of its own
    /// (this never adds to the interned names).
    pub fn new(name: &str) -> Column {
        if let Some(found) = Column::lookup(name) {
            return found;
        }
        Column(NameRef::Own(Arc::new(Name::new(name.into(), false))))
    }

    /// A column the schema defines (a catalogue table's or entity's), interned at once
    /// (within the table's bounds): the schema is what the interned names are for.
    pub fn schema(name: &str) -> Column {
        Column::new(name).interned()
    }

    fn lookup(name: &str) -> Option<Column> {
        if name.len() > MAX_INTERNED_LEN {
            return None;
        }
        let table = TABLE.read().unwrap_or_else(|e| e.into_inner());
        table.get(name).map(|i| Column(NameRef::Interned(i.0)))
    }

    /// This column with its name interned (within the table's bounds).
    fn interned(self) -> Column {
        if self.0.interned || self.0.text.len() > MAX_INTERNED_LEN {
            return self;
        }
        let mut table = TABLE.write().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = table.get(&*self.0.text) {
            return Column(NameRef::Interned(found.0));
        }
        if table.len() >= MAX_INTERNED {
            return self;
        }
        // Leaked on purpose: an interned name is never freed (the table is bounded).
        let name: &'static Name = Box::leak(Box::new(Name::new(self.0.text.clone(), true)));
        table.insert(Interned(name));
        Column(NameRef::Interned(name))
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
        self.0.ptr_eq(&other.0) || (self.0.prefix == other.0.prefix && self.0.text == other.0.text)
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
        if self.0.ptr_eq(&other.0) {
            return Ordering::Equal;
        }
        cmp_to(self, other.0.prefix, &other.0.text)
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
            Column(NameRef::Own(Arc::new(Name::new(
                name.into_boxed_str(),
                false,
            ))))
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
#[derive(Clone, Default)]
pub struct Row {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Entries of the row's own, sorted by name: a row being built or changed.
    Loose(Vec<(Column, Value)>),
    /// A stored row (see [`Row::compact`]).
    Packed(Packed),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Loose(Vec::new())
    }
}

/// A stored row: its columns are a shared [`Layout`]'s, and it holds only the values that
/// differ from the layout's template; the others are read from the template.
#[derive(Clone)]
struct Packed {
    layout: &'static Layout,
    /// Bit `i` set: column `i`'s value is the row's own, the next one in `own`.
    own_mask: [u64; 2],
    own: Box<[Value]>,
}

impl Packed {
    /// Where column `i`'s value would be among the row's own values.
    fn own_index(&self, i: usize) -> usize {
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        let before = if word == 0 {
            0
        } else {
            self.own_mask[0].count_ones()
        } + (self.own_mask[word] & (bit - 1)).count_ones();
        before as usize
    }

    fn is_own(&self, i: usize) -> bool {
        self.own_mask[i / 64] & (1 << (i % 64)) != 0
    }

    fn value(&self, i: usize) -> &Value {
        if !self.is_own(i) {
            return &self.layout.template[i];
        }
        &self.own[self.own_index(i)]
    }

    /// Sets column `i`, keeping the row packed: a value equal to the template's is not the
    /// row's own. Answers the previous value.
    fn set(&mut self, i: usize, value: Value) -> Value {
        let k = self.own_index(i);
        let bit = 1u64 << (i % 64);
        let same = value == self.layout.template[i];
        match (self.is_own(i), same) {
            (true, false) => std::mem::replace(&mut self.own[k], value),
            (false, true) => value,
            (own, _) => {
                let mut values = std::mem::take(&mut self.own).into_vec();
                let previous = if own {
                    values.remove(k)
                } else {
                    values.insert(k, value);
                    self.layout.template[i].clone()
                };
                self.own_mask[i / 64] ^= bit;
                self.own = values.into_boxed_slice();
                previous
            }
        }
    }

    fn entries(&self) -> Vec<(Column, Value)> {
        (0..self.layout.columns.len())
            .map(|i| (self.layout.columns[i].clone(), self.value(i).clone()))
            .collect()
    }
}

/// Spare room a merged row gets for the columns written after it (a write's stamps).
const MERGE_SPARE: usize = 12;

/// The most columns a packed row has; wider rows keep their entries.
pub const MAX_LAYOUT_COLUMNS: usize = 128;
/// The most layouts the process-wide layout table holds; past that, rows keep their entries.
pub const MAX_LAYOUTS: usize = 4_096;

/// A set of interned columns, in name order, shared by every stored row that has exactly
/// those columns, with the values of the first row stored with it as a template: a
/// dual-written account's owner, company, currency, creation stamps and two-option
/// defaults are the same in most rows, so most rows hold only their own few values.
struct Layout {
    columns: Box<[Column]>,
    template: Box<[Value]>,
    positions: HashMap<Column, u8, foldhash::fast::FixedState>,
}

/// The layouts, found by their columns' addresses (interned names never move or go).
/// Layouts are never freed (the table is bounded), so a row refers to its layout without a
/// reference count to write on every row stored (see [`NameRef`]).
type Layouts = HashMap<Box<[usize]>, &'static Layout, foldhash::fast::FixedState>;
static LAYOUTS: LazyLock<Mutex<Layouts>> = LazyLock::new(Default::default);

impl Layout {
    /// The layout of these entries' columns, made with their values as its template when
    /// there is none yet; `None` when a column is not interned, the row is too wide or the
    /// table is full.
    fn of(entries: &[(Column, Value)]) -> Option<&'static Layout> {
        if entries.is_empty()
            || entries.len() > MAX_LAYOUT_COLUMNS
            || entries.iter().any(|(c, _)| !c.0.interned)
        {
            return None;
        }
        let mut key = [0usize; MAX_LAYOUT_COLUMNS];
        for (slot, (c, _)) in key.iter_mut().zip(entries) {
            *slot = c.0.as_ptr() as usize;
        }
        let key = &key[..entries.len()];
        let mut layouts = LAYOUTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = layouts.get(key) {
            return Some(*found);
        }
        if layouts.len() >= MAX_LAYOUTS {
            return None;
        }
        let layout: &'static Layout = Box::leak(Box::new(Layout {
            columns: entries.iter().map(|(c, _)| c.clone()).collect(),
            template: entries.iter().map(|(_, v)| v.clone()).collect(),
            positions: entries
                .iter()
                .enumerate()
                .map(|(i, (c, _))| (c.clone(), i as u8))
                .collect(),
        }));
        layouts.insert(key.into(), layout);
        Some(layout)
    }
}

/// A row's entries by reference, in name order.
pub struct Iter<'a> {
    row: &'a Row,
    front: usize,
    back: usize,
}

impl<'a> Iter<'a> {
    fn entry(&self, i: usize) -> (&'a Column, &'a Value) {
        match &self.row.repr {
            Repr::Loose(entries) => {
                let (c, v) = &entries[i];
                (c, v)
            }
            Repr::Packed(p) => (&p.layout.columns[i], p.value(i)),
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Column, &'a Value);
    fn next(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        self.front += 1;
        Some(self.entry(self.front - 1))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        self.back -= 1;
        Some(self.entry(self.back))
    }
}

impl ExactSizeIterator for Iter<'_> {}

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
            repr: Repr::Loose(Vec::with_capacity(n)),
        }
    }

    /// The entries of the row's own, unpacking a stored row: what every change starts with.
    fn loose(&mut self) -> &mut Vec<(Column, Value)> {
        if let Repr::Packed(p) = &self.repr {
            self.repr = Repr::Loose(p.entries());
        }
        match &mut self.repr {
            Repr::Loose(entries) => entries,
            Repr::Packed(_) => unreachable!("unpacked just above"),
        }
    }

    /// Where a column is: its position among the row's columns.
    fn position(&self, key: &str) -> Option<usize> {
        match &self.repr {
            Repr::Loose(entries) => find(entries, key).ok(),
            Repr::Packed(p) => p.layout.positions.get(key).map(|&i| usize::from(i)),
        }
    }

    /// The value of a column.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match &self.repr {
            Repr::Loose(entries) => find(entries, key).ok().map(|i| &entries[i].1),
            Repr::Packed(p) => p
                .layout
                .positions
                .get(key)
                .map(|&i| p.value(usize::from(i))),
        }
    }

    /// The value of a column, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key)?;
        let entries = self.loose();
        find(entries, key).ok().map(|i| &mut entries[i].1)
    }

    /// The column and value of a column.
    pub fn get_key_value(&self, key: &str) -> Option<(&Column, &Value)> {
        let i = self.position(key)?;
        self.iter().nth(i)
    }

    /// Whether the row has this column.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets a column, answering its previous value.
    /// (`"name".into()` makes a column from a name.)
    pub fn insert(&mut self, key: Column, value: Value) -> Option<Value> {
        // A packed row that has the column stays packed.
        if let Repr::Packed(p) = &mut self.repr {
            if let Some(&i) = p.layout.positions.get(key.as_str()) {
                return Some(p.set(usize::from(i), value));
            }
        }
        let entries = self.loose();
        // Rows are mostly built in name order: appending needs no search.
        if entries.last().is_none_or(|(last, _)| *last < key) {
            entries.push((key, value));
            return None;
        }
        match find(entries, &key) {
            Ok(i) => Some(std::mem::replace(&mut entries[i].1, value)),
            Err(i) => {
                entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes a column, answering its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Removes a column, answering it and its value.
    pub fn remove_entry(&mut self, key: &str) -> Option<(Column, Value)> {
        self.position(key)?;
        let entries = self.loose();
        find(entries, key).ok().map(|i| entries.remove(i))
    }

    /// Keeps the entries `keep` answers true for.
    pub fn retain(&mut self, mut keep: impl FnMut(&Column, &mut Value) -> bool) {
        self.loose().retain_mut(|(c, v)| keep(c, v));
    }

    /// Removes every column.
    pub fn clear(&mut self) {
        self.repr = Repr::Loose(Vec::new());
    }

    /// How many columns the row has.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Loose(entries) => entries.len(),
            Repr::Packed(p) => p.layout.columns.len(),
        }
    }

    /// Whether the row has no column.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries in name order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            row: self,
            front: 0,
            back: self.len(),
        }
    }

    /// The entries in name order, values mutable.
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        self.loose().iter_mut().map(|(c, v)| (&*c, v))
    }

    /// The column names in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Column> + ExactSizeIterator + '_ {
        self.iter().map(|(c, _)| c)
    }

    /// The values in column order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// The values in column order, mutable.
    pub fn values_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut Value> + ExactSizeIterator + '_ {
        self.loose().iter_mut().map(|(_, v)| v)
    }

    /// Sets every column of `other` (replacing equal columns): both rows' entries are
    /// sorted, so one pass that merges them (the later of equal columns winning) does what
    /// a search and a shift per column would.
    pub fn merge(&mut self, other: Row) {
        if other.is_empty() {
            return;
        }
        let mine = std::mem::take(self.loose());
        // Room for the system columns a write stamps next, so they do not regrow it.
        let mut out = Vec::with_capacity(mine.len() + other.len() + MERGE_SPARE);
        let (mut a, mut b) = (mine.into_iter().peekable(), other.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                    Ordering::Less => a.next(),
                    Ordering::Greater => b.next(),
                    Ordering::Equal => {
                        a.next();
                        b.next()
                    }
                },
                (Some(_), None) => a.next(),
                (None, _) => b.next(),
            };
            match next {
                Some(entry) => out.push(entry),
                None => break,
            }
        }
        self.repr = Repr::Loose(out);
    }

    /// Moves every entry of `other` into this row (replacing equal columns), leaving it empty.
    pub fn append(&mut self, other: &mut Row) {
        let taken = std::mem::take(other);
        self.extend(taken);
    }

    /// What the store does to every row it keeps: interns the column names (see the module
    /// notes for the bound), then packs the row into its columns' shared [`Layout`],
    /// keeping only the values that differ from the layout's template; a row that cannot
    /// be packed drops its spare capacity instead. Only memory changes, never what the row
    /// answers.
    pub fn compact(&mut self) {
        let Repr::Loose(entries) = &mut self.repr else {
            return;
        };
        for (c, _) in entries.iter_mut() {
            if !c.0.interned {
                *c = c.clone().interned();
            }
        }
        let Some(layout) = Layout::of(entries) else {
            for (_, v) in entries.iter_mut() {
                if let Value::String(s) = v {
                    s.shrink_to_fit();
                }
            }
            entries.shrink_to_fit();
            return;
        };
        let mut own_mask = [0u64; 2];
        let mut count = 0;
        for (i, (_, v)) in entries.iter().enumerate() {
            if *v != layout.template[i] {
                own_mask[i / 64] |= 1 << (i % 64);
                count += 1;
            }
        }
        let mut own = Vec::with_capacity(count);
        for (i, (_, mut v)) in std::mem::take(entries).into_iter().enumerate() {
            if own_mask[i / 64] & (1 << (i % 64)) != 0 {
                if let Value::String(s) = &mut v {
                    s.shrink_to_fit();
                }
                own.push(v);
            }
        }
        self.repr = Repr::Packed(Packed {
            layout,
            own_mask,
            own: own.into_boxed_slice(),
        });
    }

    /// The row as a JSON object map.
    pub fn into_map(self) -> Map<String, Value> {
        self.into_iter()
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
            return Row {
                repr: Repr::Loose(entries),
            };
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
        Row {
            repr: Repr::Loose(out),
        }
    }
}

/// Where a column is among sorted entries.
fn find(entries: &[(Column, Value)], key: &str) -> Result<usize, usize> {
    let prefix = prefix_of(key);
    entries.binary_search_by(|(c, _)| cmp_to(c, prefix, key))
}

impl PartialEq for Row {
    fn eq(&self, other: &Row) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
impl Eq for Row {}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(c, v)| (c.as_str(), v)))
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
        match self.get_mut(key) {
            Some(v) => v,
            None => panic!("no column {key:?} in the row"),
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
            self.insert(k.into(), v);
        }
    }
}

impl IntoIterator for Row {
    type Item = (Column, Value);
    type IntoIter = IntoIter;
    fn into_iter(self) -> IntoIter {
        match self.repr {
            Repr::Loose(entries) => entries.into_iter(),
            Repr::Packed(p) => p.entries().into_iter(),
        }
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
            repr: Repr::Loose(map.into_iter().map(|(k, v)| (Column::new(&k), v)).collect()),
        }
    }
}

impl From<&Map<String, Value>> for Row {
    fn from(map: &Map<String, Value>) -> Row {
        Row {
            repr: Repr::Loose(
                map.iter()
                    .map(|(k, v)| (Column::new(k), v.clone()))
                    .collect(),
            ),
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
        let mut map = s.serialize_map(Some(self.len()))?;
        for (c, v) in self.iter() {
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
        assert!(shared.is_some_and(|s| s.0.ptr_eq(&again.0)));
        let long = "x".repeat(MAX_INTERNED_LEN + 1);
        let mut row = Row::new();
        row.insert(long.as_str().into(), json!(1));
        row.compact();
        assert!(Column::lookup(&long).is_none());
        assert_eq!(row.get(&long), Some(&json!(1)));
    }

    #[test]
    fn a_packed_row_answers_as_its_entries_did() {
        let template = json!({"row_tests_p_a": 1, "row_tests_p_b": "same", "row_tests_p_c": [1], "row_tests_p_d": null});
        let other = json!({"row_tests_p_a": 2, "row_tests_p_b": "same", "row_tests_p_c": [2], "row_tests_p_d": null});
        let (mut first, _) = both(template.clone());
        first.compact();
        let (mut row, map) = both(other.clone());
        row.compact();
        assert!(
            matches!(row.repr, Repr::Packed(_)),
            "a stored row is packed"
        );
        if let Repr::Packed(p) = &row.repr {
            assert_eq!(
                p.own.len(),
                2,
                "only the values unlike the template's are its own"
            );
        }
        assert_eq!(row.to_map(), map);
        assert_eq!(serde_json::to_value(&row).ok(), Some(other.clone()));
        assert_eq!(format!("{row:?}"), format!("{map:?}"));
        assert_eq!(row.get("row_tests_p_b"), Some(&json!("same")));
        assert_eq!(row.get("row_tests_p_c"), Some(&json!([2])));
        assert_eq!(row.get("row_tests_p_x"), None);
        assert_eq!(row.len(), 4);
        let back: Vec<&str> = row.keys().rev().map(|c| c.as_str()).collect();
        assert_eq!(
            back,
            [
                "row_tests_p_d",
                "row_tests_p_c",
                "row_tests_p_b",
                "row_tests_p_a"
            ]
        );
        let (unpacked, _) = both(other);
        assert_eq!(row, unpacked);
        assert_ne!(row, first);
        // Changes unpack it and behave as on any row.
        let mut changed = row.clone();
        changed.insert("row_tests_p_b".into(), json!("new"));
        changed.insert("row_tests_p_0".into(), json!(0));
        assert_eq!(changed.remove("row_tests_p_d"), Some(Value::Null));
        assert_eq!(
            changed.to_value(),
            json!({"row_tests_p_0": 0, "row_tests_p_a": 2, "row_tests_p_b": "new", "row_tests_p_c": [2]})
        );
        assert_eq!(
            row.get("row_tests_p_b"),
            Some(&json!("same")),
            "the copy is untouched"
        );
        if let Some(v) = row.get_mut("row_tests_p_a") {
            *v = json!(3);
        }
        row.compact();
        assert_eq!(row["row_tests_p_a"], json!(3));
        assert_eq!(row.clone().into_value()["row_tests_p_b"], json!("same"));
    }

    #[test]
    fn setting_a_column_a_packed_row_has_keeps_it_packed() {
        let (mut first, _) =
            both(json!({"row_tests_s_a": 1, "row_tests_s_b": "t", "row_tests_s_c": null}));
        first.compact();
        let (mut row, _) =
            both(json!({"row_tests_s_a": 2, "row_tests_s_b": "t", "row_tests_s_c": null}));
        row.compact();
        let own = |r: &Row| match &r.repr {
            Repr::Packed(p) => Some(p.own.len()),
            Repr::Loose(_) => None,
        };
        assert_eq!(own(&row), Some(1));
        // An own value replaced, a template value made own, an own value back to the template.
        assert_eq!(row.insert("row_tests_s_a".into(), json!(5)), Some(json!(2)));
        assert_eq!(
            row.insert("row_tests_s_c".into(), json!("x")),
            Some(Value::Null)
        );
        assert_eq!(own(&row), Some(2));
        assert_eq!(row.insert("row_tests_s_a".into(), json!(1)), Some(json!(5)));
        assert_eq!(
            row.insert("row_tests_s_b".into(), json!("t")),
            Some(json!("t"))
        );
        assert_eq!(own(&row), Some(1));
        assert_eq!(
            row.to_value(),
            json!({"row_tests_s_a": 1, "row_tests_s_b": "t", "row_tests_s_c": "x"})
        );
        let (loose, _) = both(row.to_value());
        assert_eq!(row, loose);
        // A column the layout lacks unpacks it.
        row.insert("row_tests_s_d".into(), json!(0));
        assert_eq!(own(&row), None);
        assert_eq!(row.len(), 4);
    }

    #[test]
    fn merge_sets_every_column_as_inserts_would() {
        let (mut merged, _) = both(json!({"b": 1, "d": 2, "f": 3}));
        let (other, _) = both(json!({"a": 10, "d": 20, "g": 30}));
        let mut inserted = merged.clone();
        for (k, v) in other.clone() {
            inserted.insert(k, v);
        }
        merged.merge(other);
        assert_eq!(merged, inserted);
        assert_eq!(
            merged.to_value(),
            json!({"a": 10, "b": 1, "d": 20, "f": 3, "g": 30})
        );
        let mut empty = Row::new();
        empty.merge(merged.clone());
        assert_eq!(empty, merged);
    }
}
