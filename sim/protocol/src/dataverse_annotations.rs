//! The instance annotations Dataverse adds to a record when the caller asks for them with
//! `Prefer: odata.include-annotations="…"`: the formatted value of every typed column
//! (choices, state and status, yes/no, money, dates, whole and decimal numbers, lookups) and a
//! lookup's table and navigation property. Formatting is that of an en-US user in UTC.

use dwsim_model::dataverse::DvEnv;
use dwsim_model::schema::{DvColumn, DvTable, DvType};
use dwsim_model::{Row, World};
use serde_json::{json, Value};

/// The formatted value annotation.
pub const FORMATTED: &str = "OData.Community.Display.V1.FormattedValue";
/// A lookup's table.
pub const LOOKUP_LOGICAL_NAME: &str = "Microsoft.Dynamics.CRM.lookuplogicalname";
/// A lookup's navigation property.
pub const ASSOCIATED_NAVIGATION: &str = "Microsoft.Dynamics.CRM.associatednavigationproperty";

/// Which annotations a request asked for: the terms of `odata.include-annotations`, with
/// `*` and `Namespace.*` wildcards and `-term` exclusions, as OData defines the preference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Annotations {
    /// The preference from a request's `Prefer` values; none asked for when absent.
    pub fn from_prefer(prefer: &[String]) -> Annotations {
        let mut out = Annotations::default();
        for p in prefer {
            let Some(list) = p.trim().strip_prefix("odata.include-annotations=") else {
                continue;
            };
            for term in list.trim_matches('"').split(',') {
                let term = term.trim();
                match term.strip_prefix('-') {
                    Some(excluded) => out.exclude.push(excluded.to_string()),
                    None if !term.is_empty() => out.include.push(term.to_string()),
                    None => {}
                }
            }
        }
        out
    }

    /// Whether any annotation at all was asked for.
    pub fn any(&self) -> bool {
        !self.include.is_empty()
    }

    /// Whether `term` (`OData.Community.Display.V1.FormattedValue`) is to be written.
    pub fn wants(&self, term: &str) -> bool {
        let matches = |pattern: &String| {
            pattern == "*"
                || pattern == term
                || pattern
                    .strip_suffix(".*")
                    .is_some_and(|ns| term.strip_prefix(ns).is_some_and(|r| r.starts_with('.')))
        };
        self.include.iter().any(matches) && !self.exclude.iter().any(matches)
    }
}

/// What annotating one record needs: where it lives and what the caller asked for.
pub struct Annotator<'a> {
    /// The world, for the tables lookups point at.
    pub world: &'a World,
    /// The record's environment.
    pub dv: &'a DvEnv,
    /// The record's table.
    pub table: &'a DvTable,
    /// The record (a money value's currency is in it).
    pub row: &'a Row,
    /// The annotations asked for.
    pub asked: &'a Annotations,
}

impl Annotator<'_> {
    /// Adds the annotations of attribute `name` (holding `value`) to `out`, the record's
    /// entries.
    pub fn annotate(
        &self,
        col: &DvColumn,
        name: &str,
        value: &Value,
        out: &mut Vec<(String, Value)>,
    ) {
        if value.is_null() {
            return;
        }
        if col.kind.is_lookup() {
            self.lookup(col, name, value, out);
            return;
        }
        if !self.asked.wants(FORMATTED) {
            return;
        }
        if let Some(text) = formatted(self.dv, self.row, col, value) {
            out.push((format!("{name}@{FORMATTED}"), json!(text)));
        }
    }

    /// A lookup's navigation property, table and the name of the record it points at.
    fn lookup(&self, col: &DvColumn, name: &str, value: &Value, out: &mut Vec<(String, Value)>) {
        let (world, dv, table, asked) = (self.world, self.dv, self.table, self.asked);
        let Some(id) = value.as_str() else { return };
        let Some(target) = dv.lookup_target(col, id) else {
            return;
        };
        if asked.wants(ASSOCIATED_NAVIGATION) {
            let nav = table
                .many_to_one
                .iter()
                .find(|r| {
                    r.referencing_attribute == col.name
                        && (r.referenced_entity == target || r.referenced_entity == "owner")
                })
                .map_or(col.name.as_str(), |r| r.referencing_nav.as_str());
            out.push((format!("{name}@{ASSOCIATED_NAVIGATION}"), json!(nav)));
        }
        if asked.wants(LOOKUP_LOGICAL_NAME) {
            out.push((format!("{name}@{LOOKUP_LOGICAL_NAME}"), json!(target)));
        }
        if asked.wants(FORMATTED) {
            let primary = world
                .catalogue
                .dv_tables
                .get(target)
                .and_then(|t| t.primary_name.as_deref());
            if let Some(label) = primary.and_then(|p| dv.get(target, id)?.get(p).cloned()) {
                out.push((format!("{name}@{FORMATTED}"), label));
            }
        }
    }
}

/// The text a user sees for a value, or none for types Dataverse does not format (text,
/// GUIDs, the row version).
fn formatted(dv: &DvEnv, row: &Row, col: &DvColumn, value: &Value) -> Option<String> {
    match col.kind {
        DvType::Picklist | DvType::State | DvType::Status => {
            col.label(value.as_i64()?).map(str::to_string)
        }
        DvType::Boolean => {
            let b = value.as_bool()?;
            let key = if b { "1" } else { "0" };
            Some(
                col.options
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| if b { "Yes" } else { "No" }.to_string()),
            )
        }
        DvType::Integer => Some(grouped(value.as_i64()?.to_string(), None)),
        DvType::Decimal | DvType::Double => {
            Some(number(value.as_f64()?, col.precision.unwrap_or(2)))
        }
        DvType::Money => {
            let amount = number(value.as_f64()?, col.precision.unwrap_or(2));
            let symbol = currency_symbol(dv, row);
            Some(match amount.strip_prefix('-') {
                Some(positive) => format!("-{symbol}{positive}"),
                None => format!("{symbol}{amount}"),
            })
        }
        DvType::Datetime => date_time(value.as_str()?, col.format.as_deref() == Some("DateOnly")),
        DvType::String
        | DvType::Memo
        | DvType::BigInt
        | DvType::Uniqueidentifier
        | DvType::Lookup
        | DvType::Customer
        | DvType::Owner => None,
    }
}

/// `1234567.5` with 2 digits as `1,234,567.50`.
fn number(value: f64, precision: u32) -> String {
    let text = format!("{:.*}", precision as usize, value.abs());
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (text, None),
    };
    let sign = if value < 0.0 { "-" } else { "" };
    format!("{sign}{}", grouped(int, frac))
}

/// Digits grouped by thousands with commas, then the fraction.
fn grouped(int: String, frac: Option<String>) -> String {
    let (sign, digits) = match int.strip_prefix('-') {
        Some(d) => ("-", d.to_string()),
        None => ("", int),
    };
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

/// The symbol of the record's currency (its transactioncurrency's `currencysymbol`, or the
/// usual one for its ISO code), `$` when the record has none.
fn currency_symbol(dv: &DvEnv, row: &Row) -> String {
    let currency = row
        .get("_transactioncurrencyid_value")
        .and_then(Value::as_str)
        .and_then(|id| dv.get("transactioncurrency", id));
    let Some(currency) = currency else {
        return "$".into();
    };
    if let Some(symbol) = currency.get("currencysymbol").and_then(Value::as_str) {
        return symbol.to_string();
    }
    match currency.get("isocurrencycode").and_then(Value::as_str) {
        Some("USD") => "$".into(),
        Some("EUR") => "€".into(),
        Some("GBP") => "£".into(),
        Some("JPY") | Some("CNY") => "¥".into(),
        Some("INR") => "₹".into(),
        Some("CAD") => "CA$".into(),
        Some("AUD") => "A$".into(),
        Some(other) => format!("{other} "),
        None => "$".into(),
    }
}

/// `2026-01-01T13:05:00Z` as `1/1/2026 1:05 PM` (or `1/1/2026` for a date-only column).
fn date_time(iso: &str, date_only: bool) -> Option<String> {
    let (date, time) = iso.split_once('T').unwrap_or((iso, "00:00:00Z"));
    let mut d = date.split('-');
    let (y, m, day) = (
        d.next()?,
        d.next()?.parse::<u32>().ok()?,
        d.next()?.parse::<u32>().ok()?,
    );
    if date_only {
        return Some(format!("{m}/{day}/{y}"));
    }
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<u32>().ok()?,
        t.next()?.parse::<u32>().ok()?,
    );
    let (h12, half) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    Some(format!("{m}/{day}/{y} {h12}:{min:02} {half}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preference_takes_lists_wildcards_and_exclusions() {
        let all = Annotations::from_prefer(&["odata.include-annotations=\"*\"".into()]);
        assert!(all.wants(FORMATTED) && all.wants(LOOKUP_LOGICAL_NAME));
        let one = Annotations::from_prefer(&[format!("odata.include-annotations=\"{FORMATTED}\"")]);
        assert!(one.wants(FORMATTED) && !one.wants(LOOKUP_LOGICAL_NAME));
        let crm = Annotations::from_prefer(&[
            "odata.include-annotations=\"Microsoft.Dynamics.CRM.*,-Microsoft.Dynamics.CRM.associatednavigationproperty\"".into(),
        ]);
        assert!(
            crm.wants(LOOKUP_LOGICAL_NAME)
                && !crm.wants(ASSOCIATED_NAVIGATION)
                && !crm.wants(FORMATTED)
        );
        assert!(!Annotations::from_prefer(&["return=representation".into()]).any());
    }

    #[test]
    fn numbers_money_and_dates_format_as_for_an_en_us_user() {
        assert_eq!(number(1_234_567.5, 2), "1,234,567.50");
        assert_eq!(number(-1000.0, 2), "-1,000.00");
        assert_eq!(number(12.0, 0), "12");
        assert_eq!(grouped("1000000".into(), None), "1,000,000");
        assert_eq!(
            date_time("2026-01-01T13:05:00Z", false).unwrap(),
            "1/1/2026 1:05 PM"
        );
        assert_eq!(
            date_time("2026-01-01T00:00:00Z", false).unwrap(),
            "1/1/2026 12:00 AM"
        );
        assert_eq!(date_time("2026-03-09T00:00:00Z", true).unwrap(), "3/9/2026");
    }
}
