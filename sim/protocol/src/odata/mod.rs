//! OData v4 pieces both products share: key segments, system query options, and applying
//! them to rows. Product-specific rules (what each service rejects) live in the routers.

pub mod filter;

use filter::{Dialect, Expr, Fields, FilterError};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Why a key segment, a literal or a system query option could not be read. The texts are
/// the OData library's; each product turns them into its own envelope in one place.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// A key segment without its closing parenthesis.
    #[error("Bad Request - Error in query syntax. The key segment '{0}' is not closed.")]
    UnclosedKey(String),
    /// A key part that is neither a literal nor `name=literal`.
    #[error("Bad Request - Error in query syntax. The key '{0}' is not valid.")]
    KeyPart(String),
    /// A literal of no known type.
    #[error("Bad Request - Error in query syntax. Unrecognized literal '{0}'.")]
    Literal(String),
    /// A `$filter` that does not parse.
    #[error("{0}")]
    Filter(#[from] FilterError),
    #[error("Syntax error: '{direction}' is not a valid sort direction in '$orderby={orderby}'.")]
    /// An `$orderby` item with a direction other than `asc` or `desc`.
    SortDirection {
        /// The direction written.
        direction: String,
        /// The whole `$orderby`.
        orderby: String,
    },
    #[error("Invalid value '{value}' for {option} query option found. The {option} query option requires a non-negative integer value.")]
    /// `$top` or `$skip` that is not a non-negative integer.
    NotANonNegativeInteger {
        /// The option (`$top`, `$skip`).
        option: &'static str,
        /// The value written.
        value: String,
    },
    /// A `$count` that is neither `true` nor `false`.
    #[error("'{0}' is not a valid count option.")]
    Count(String),
    /// An `$expand` inside an `$expand`.
    #[error("The $expand option is supported one level deep only.")]
    NestedExpand,
    /// An option inside `$expand` other than `$select`.
    #[error("The option '{0}' is not supported inside $expand.")]
    ExpandOption(String),
}

impl QueryError {
    /// Whether the error is in the resource path (key segment or key literal) rather than
    /// in a system query option.
    pub fn in_path(&self) -> bool {
        matches!(
            self,
            QueryError::UnclosedKey(_) | QueryError::KeyPart(_) | QueryError::Literal(_)
        )
    }
}

/// The key in parentheses after an entity set name.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySpec {
    /// `accounts(00000000-…)` or `LegalEntities('USMF')`.
    Single(Value),
    /// `accounts(accountnumber='A1',_msdyn_company_value=…)`.
    Named(Vec<(String, Value)>),
}

/// Splits `name(key)` into the name and its key, if any.
pub fn parse_segment(segment: &str) -> Result<(String, Option<KeySpec>), QueryError> {
    let Some(open) = segment.find('(') else {
        return Ok((segment.to_string(), None));
    };
    if !segment.ends_with(')') {
        return Err(QueryError::UnclosedKey(segment.to_string()));
    }
    let name = segment[..open].to_string();
    let inner = &segment[open + 1..segment.len() - 1];
    if inner.trim().is_empty() {
        return Ok((name, None));
    }
    let parts = crate::request::split_outside_quotes(inner, ',');
    let named = parts.iter().all(|p| {
        let (k, _) = p.split_once('=').unwrap_or(("", ""));
        !k.is_empty() && !k.contains('\'')
    });
    if parts.len() == 1 && !named {
        return Ok((name, Some(KeySpec::Single(literal(parts[0].trim())?))));
    }
    let mut out = Vec::new();
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| QueryError::KeyPart(inner.to_string()))?;
        out.push((k.trim().to_string(), literal(v.trim())?));
    }
    Ok((name, Some(KeySpec::Named(out))))
}

/// A key or function literal: quoted string (with `''` escapes), number, bool, null or GUID.
pub fn literal(text: &str) -> Result<Value, QueryError> {
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Ok(Value::from(inner.replace("''", "'")));
    }
    match text {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "null" => return Ok(Value::Null),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = text.parse::<f64>() {
        return Ok(Value::from(f));
    }
    if is_guid(text) {
        return Ok(Value::from(text.to_lowercase()));
    }
    Err(QueryError::Literal(text.to_string()))
}

/// Whether `s` is a GUID in its 8-4-4-4-12 form.
pub fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// System query options after parsing.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// `$select`: the columns to answer.
    pub select: Option<Vec<String>>,
    /// `$filter`, parsed.
    pub filter: Option<Expr>,
    /// `$orderby`: (column, descending).
    pub orderby: Vec<(String, bool)>,
    /// `$top`.
    pub top: Option<usize>,
    /// `$skip`.
    pub skip: Option<usize>,
    /// `$count=true`.
    pub count: bool,
    /// `$expand`: the navigation properties, as written.
    pub expand: Vec<String>,
    /// `$skiptoken`: where the next page starts.
    pub skiptoken: Option<String>,
    /// Options the service did not recognise (the router decides what to do).
    pub unknown: Vec<String>,
}

/// Parses the `$` options of a query string; aliases (`@p1=…`) feed `$filter`.
pub fn parse_options(
    params: &[(String, String)],
    dialect: Dialect,
) -> Result<QueryOptions, QueryError> {
    let aliases: BTreeMap<String, String> = params
        .iter()
        .filter(|(k, _)| k.starts_with('@'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut o = QueryOptions::default();
    for (k, v) in params {
        match k.as_str() {
            "$select" => {
                o.select = Some(
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                )
            }
            "$filter" => o.filter = Some(filter::parse(v, dialect, &aliases)?),
            "$orderby" => {
                for part in v.split(',') {
                    let mut words = part.split_whitespace();
                    let Some(mut name) = words.next().map(str::to_string) else {
                        continue;
                    };
                    if let Some(alias) = aliases.get(&name) {
                        name = alias.clone();
                    }
                    let desc = match words.next() {
                        None | Some("asc") => false,
                        Some("desc") => true,
                        Some(other) => {
                            return Err(QueryError::SortDirection {
                                direction: other.to_string(),
                                orderby: v.clone(),
                            })
                        }
                    };
                    o.orderby.push((name, desc));
                }
            }
            "$top" => o.top = Some(non_negative("$top", v)?),
            "$skip" => o.skip = Some(non_negative("$skip", v)?),
            "$count" => match v.as_str() {
                "true" => o.count = true,
                "false" => o.count = false,
                _ => return Err(QueryError::Count(v.clone())),
            },
            "$expand" => {
                o.expand = split_outside_parentheses(v)
                    .into_iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            "$skiptoken" => o.skiptoken = Some(v.clone()),
            "$format" | "$search" | "$apply" => o.unknown.push(k.clone()),
            other if other.starts_with('$') => o.unknown.push(other.to_string()),
            _ => {}
        }
    }
    Ok(o)
}

fn non_negative(option: &'static str, value: &str) -> Result<usize, QueryError> {
    value
        .parse()
        .map_err(|_| QueryError::NotANonNegativeInteger {
            option,
            value: value.to_string(),
        })
}

/// One `$expand` item: `nav` or `nav($select=a,b)`. Both services expand one level only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandItem {
    /// The navigation property.
    pub nav: String,
    /// The nested `$select`, if any.
    pub select: Option<Vec<String>>,
    /// The nested `$filter` as written (collection-valued properties only), if any.
    pub filter: Option<String>,
}

/// Splits a list at commas that are not inside parentheses or quotes
/// (`a($select=x,y),b` is two items).
fn split_outside_parentheses(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut quoted, mut start) = (Vec::new(), 0i32, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Reads one `$expand` item: `nav` or `nav($select=a,b)`.
pub fn parse_expand_item(item: &str) -> Result<ExpandItem, QueryError> {
    let (nav, inner) = match item.split_once('(') {
        Some((n, rest)) => (n.trim(), rest.trim().strip_suffix(')').unwrap_or(rest)),
        None => (item.trim(), ""),
    };
    let (mut select, mut filter) = (None, None);
    for option in inner.split(';').map(str::trim).filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("$select", list)) => {
                select = Some(list.split(',').map(|x| x.trim().to_string()).collect())
            }
            Some(("$filter", expr)) => filter = Some(expr.to_string()),
            Some(("$expand", _)) => return Err(QueryError::NestedExpand),
            _ => return Err(QueryError::ExpandOption(option.to_string())),
        }
    }
    Ok(ExpandItem {
        nav: nav.to_string(),
        select,
        filter,
    })
}

/// Case-insensitive, numeric-aware ordering with nulls first (SQL Server's order).
pub fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        (None | Some(Value::Null), _) => Ordering::Less,
        (_, None | Some(Value::Null)) => Ordering::Greater,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// Filters and sorts rows; answers the rows and how many matched.
pub fn filter_and_sort<R: Fields>(
    rows: impl IntoIterator<Item = R>,
    options: &QueryOptions,
    dialect: Dialect,
) -> Result<Vec<R>, QueryError> {
    select_rows(rows, options, dialect, None)
}

/// [`filter_and_sort`] that may stop early: without `$orderby`, rows keep the order they
/// come in, so once `cap` rows pass the filter the rest cannot change the answer.
pub fn select_rows<R: Fields>(
    rows: impl IntoIterator<Item = R>,
    options: &QueryOptions,
    dialect: Dialect,
    cap: Option<usize>,
) -> Result<Vec<R>, QueryError> {
    let cap = if options.orderby.is_empty() {
        cap.unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    let mut out = Vec::new();
    for r in rows {
        if out.len() >= cap {
            break;
        }
        let keep = match &options.filter {
            Some(f) => filter::eval(f, &r, dialect)?,
            None => true,
        };
        if keep {
            out.push(r);
        }
    }
    if !options.orderby.is_empty() {
        out.sort_by(|a, b| {
            for (name, desc) in &options.orderby {
                let o = compare(a.field(name), b.field(name));
                if o != Ordering::Equal {
                    return if *desc { o.reverse() } else { o };
                }
            }
            Ordering::Equal
        });
    }
    Ok(out)
}

/// The columns a filter pins to one text value (`name eq 'x'`, alone or among `and`ed
/// terms), for an index to narrow the rows it reads. Only literals whose equality is plain
/// case-insensitive text are pinned: not numbers or booleans (which compare across types),
/// not F&O wildcards.
pub fn equality_pins(filter: &Expr) -> Vec<(&str, &Value)> {
    fn pin(e: &Expr) -> Option<(&str, &Value)> {
        let Expr::Eq(l, r) = e else { return None };
        let (name, value) = match (l.as_ref(), r.as_ref()) {
            (Expr::Property(p), Expr::Literal(v)) | (Expr::Literal(v), Expr::Property(p)) => (p, v),
            _ => return None,
        };
        let text = value.as_str()?;
        let t = text.trim();
        let plain = !text.contains('*')
            && t.parse::<f64>().is_err()
            && !t.eq_ignore_ascii_case("true")
            && !t.eq_ignore_ascii_case("false");
        plain.then_some((name.as_str(), value))
    }
    match filter {
        Expr::And(items) => items.iter().filter_map(pin).collect(),
        other => pin(other).into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_named_and_guid_keys() {
        let (n, k) = parse_segment("LegalEntities('USMF')").expect("ok");
        assert_eq!(n, "LegalEntities");
        assert_eq!(k, Some(KeySpec::Single(Value::from("USMF"))));
        let (_, k) =
            parse_segment("CustomersV3(dataAreaId='usmf',CustomerAccount='O''Brien, Ltd')")
                .expect("ok");
        assert_eq!(
            k,
            Some(KeySpec::Named(vec![
                ("dataAreaId".into(), Value::from("usmf")),
                ("CustomerAccount".into(), Value::from("O'Brien, Ltd"))
            ]))
        );
        let (_, k) = parse_segment("accounts(0A000000-0000-0000-0000-000000000001)").expect("ok");
        assert_eq!(
            k,
            Some(KeySpec::Single(Value::from(
                "0a000000-0000-0000-0000-000000000001"
            )))
        );
        assert!(parse_segment("accounts(nonsense").is_err());
        assert!(parse_segment("accounts(nonsense)").is_err());
    }

    #[test]
    fn expand_items_take_a_nested_select_and_refuse_deeper_expands() {
        let item =
            parse_expand_item("msdyn_company($select=cdm_companycode, cdm_name)").expect("ok");
        assert_eq!(item.nav, "msdyn_company");
        assert_eq!(
            item.select,
            Some(vec!["cdm_companycode".to_string(), "cdm_name".to_string()])
        );
        assert_eq!(parse_expand_item("CustomerGroup").expect("ok").select, None);
        assert!(parse_expand_item("a($expand=b)").is_err());
        assert!(parse_expand_item("a($top=1)").is_err());
    }
}
