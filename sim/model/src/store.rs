//! Row storage with an undo log. A dual-write is one transaction across two products: the
//! runtime takes a savepoint on both stores, and a failure on either side rolls both back to
//! it. Outside a transaction nothing is logged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A row: column name to JSON value, in sorted order.
pub type Row = Map<String, Value>;

/// A JSON object literal as a row.
pub fn obj(v: Value) -> Row {
    match v {
        Value::Object(m) => m,
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

/// Tables of rows keyed by a primary id, with savepoints.
#[derive(Debug, Clone, Default)]
pub struct Store {
    tables: BTreeMap<String, BTreeMap<String, Row>>,
    undo: Vec<Undo>,
    open: usize,
}

/// A position in the undo log to roll back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Savepoint(usize);

impl Store {
    /// A row by table and id.
    pub fn get(&self, table: &str, id: &str) -> Option<&Row> {
        self.tables.get(table).and_then(|t| t.get(id))
    }

    /// Rows of a table in primary-id order.
    pub fn rows(&self, table: &str) -> impl Iterator<Item = (&String, &Row)> {
        self.tables.get(table).into_iter().flat_map(|t| t.iter())
    }

    /// How many rows a table has.
    pub fn count(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, |t| t.len())
    }

    /// The tables that have (or had) rows, in name order.
    pub fn table_names(&self) -> impl Iterator<Item = &String> {
        self.tables.keys()
    }

    /// Inserts or replaces a row (logged when a transaction is open).
    pub fn put(&mut self, table: &str, id: &str, row: Row) {
        let previous = self
            .tables
            .entry(table.to_string())
            .or_default()
            .insert(id.to_string(), row);
        self.log(table, id, previous);
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
                    t.insert(id, row);
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

/// Only the rows are state; an open transaction never outlives one World operation.
impl Serialize for Store {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.tables.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Store {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Store {
            tables: BTreeMap::deserialize(d)?,
            undo: Vec::new(),
            open: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Row {
        v.as_object().cloned().unwrap_or_default()
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
