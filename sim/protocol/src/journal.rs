//! The journal of requests a simulator answered, for `GET /_dwsim/journal`: the newest
//! requests, bounded by count and by bytes so a long `serve` keeps a fixed amount whatever
//! its traffic (a long URL costs its length, not a fixed slot).

use serde::Serialize;
use std::collections::VecDeque;

/// Entries the journal keeps at most (oldest dropped first).
pub const JOURNAL_LIMIT: usize = 10_000;
/// Bytes of method, path and query the journal keeps at most.
pub const JOURNAL_BYTES: usize = 4 * 1024 * 1024;
/// A path or query longer than this is kept shortened, ending in `…`.
const KEPT_TEXT: usize = 2048;

/// One answered request.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The virtual time it was answered at.
    pub at: String,
    /// `entra`, `lcs`, `fno` or `dataverse`.
    pub product: &'static str,
    /// The F&O or Dataverse environment, if any.
    pub environment: Option<String>,
    /// The HTTP method.
    pub method: String,
    /// The path below the origin.
    pub path: String,
    /// The query string.
    pub query: String,
    /// The status answered.
    pub status: u16,
}

impl Entry {
    fn bytes(&self) -> usize {
        // The texts, plus the fixed part of an entry.
        self.at.len()
            + self.environment.as_ref().map_or(0, String::len)
            + self.method.len()
            + self.path.len()
            + self.query.len()
            + 96
    }
}

/// The newest entries, within [`JOURNAL_LIMIT`] and [`JOURNAL_BYTES`].
#[derive(Debug, Default)]
pub struct Journal {
    entries: VecDeque<Entry>,
    bytes: usize,
}

fn shortened(mut text: String) -> String {
    if text.len() > KEPT_TEXT {
        let mut cut = KEPT_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

impl Journal {
    /// Records an entry, dropping the oldest ones to stay within the bounds.
    pub fn push(&mut self, mut entry: Entry) {
        entry.path = shortened(entry.path);
        entry.query = shortened(entry.query);
        let size = entry.bytes();
        while self.entries.len() >= JOURNAL_LIMIT || self.bytes + size > JOURNAL_BYTES {
            match self.entries.pop_front() {
                Some(old) => self.bytes -= old.bytes(),
                None => break,
            }
        }
        self.bytes += size;
        self.entries.push_back(entry);
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path_len: usize) -> Entry {
        Entry {
            at: "2026-01-01T00:00:00Z".into(),
            product: "dataverse",
            environment: None,
            method: "GET".into(),
            path: "p".repeat(path_len),
            query: String::new(),
            status: 200,
        }
    }

    #[test]
    fn the_journal_is_bounded_by_count_and_by_bytes() {
        let mut j = Journal::default();
        for _ in 0..JOURNAL_LIMIT + 5 {
            j.push(entry(10));
        }
        assert_eq!(j.len(), JOURNAL_LIMIT);
        for _ in 0..5_000 {
            j.push(entry(100_000));
        }
        assert!(j.bytes <= JOURNAL_BYTES);
        assert!(j
            .entries()
            .all(|e| e.path.len() <= KEPT_TEXT + '…'.len_utf8()));
    }
}
