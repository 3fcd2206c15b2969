//! Field mappings applied to rows: F&O row → Dataverse attributes and back, integration
//! keys, source filters and the partition (company) a row belongs to.

use crate::catalogue::Catalogue;
use crate::dataverse::{same_value, DvEnv};
use crate::fno::{value_text, FnoEnv, LEGAL_ENTITIES};
use crate::schema::{Direction, DvTable, FieldMap, TableMap};
use crate::store::{Column, Row};
use serde_json::Value;

/// The rows one initial-sync leg or live-sync write looks at: one company, or all
/// connected legal entities for the legal entity map itself, or a global table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partition {
    /// One company.
    Company {
        /// The legal entity id, upper case.
        code: String,
        /// Its cdm_company row in Dataverse.
        dv_company_id: String,
    },
    /// The legal-entity map's rows: the connected companies themselves.
    LegalEntities {
        /// The connected legal entity ids.
        codes: Vec<String>,
    },
    /// A table without companies (currencies).
    Global,
}

impl Partition {
    /// The company code, or `global`, as legs and the queue name the partition.
    pub fn label(&self) -> String {
        match self {
            Partition::Company { code, .. } => code.clone(),
            Partition::LegalEntities { .. } | Partition::Global => "global".to_string(),
        }
    }
}

/// Why a row could not be transformed: the lookup that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupFailure {
    /// Dataverse entity set the lookup searched (`msdyn_customergroups`).
    pub entity_set: String,
    /// The map field (`msdyn_customergroupid.msdyn_groupid`).
    pub field: String,
    /// The value that found nothing.
    pub value: String,
}

/// Whether a field of the map looks up rows of the map's own Dataverse table (a parent
/// account, say), so that writing one row can change what the next one resolves to.
pub fn looks_up_itself(catalogue: &Catalogue, map: &TableMap) -> bool {
    let table = catalogue.dv_tables.get(&map.dv_table);
    map.fields
        .iter()
        .filter_map(FieldMap::dv_lookup)
        .any(|(nav, _)| lookup_target(table, nav) == map.dv_table)
}

/// Whether the map's Dataverse table is striped by company.
pub fn is_company_specific(catalogue: &Catalogue, map: &TableMap) -> bool {
    catalogue
        .dv_tables
        .get(&map.dv_table)
        .is_some_and(|t| t.company_lookup.is_some())
}

fn passes(filter: &[crate::schema::FieldEquals], row: &Row) -> bool {
    filter.iter().all(|f| {
        f.equals
            .as_ref()
            .is_none_or(|v| same_value(row.get(&f.field), Some(v)))
            && f.not_equals
                .as_ref()
                .is_none_or(|v| !same_value(row.get(&f.field), Some(v)))
    })
}

/// Whether an F&O row passes the map's source filter.
pub fn passes_fno_filter(map: &TableMap, row: &Row) -> bool {
    crate::mutants::active("source-filter-ignored") || passes(&map.fno_filter, row)
}

/// Whether a Dataverse row passes the map's Dataverse-side filter.
pub fn passes_dv_filter(map: &TableMap, row: &Row) -> bool {
    crate::mutants::active("source-filter-ignored") || passes(&map.dv_filter, row)
}

/// The Dataverse attribute a mapped key field lands in.
pub(crate) fn dv_attribute(field: &FieldMap) -> Option<String> {
    let dv = field.dv.as_ref()?;
    Some(match dv.split_once('.') {
        Some((nav, _)) => format!("_{nav}_value"),
        None => dv.clone(),
    })
}

/// The integration key of an F&O row (without the company), or None when a part is empty.
pub fn fno_key(map: &TableMap, row: &Row) -> Option<Vec<String>> {
    let parts: Vec<String> = map
        .key
        .iter()
        .map(|k| value_text(row.get(k)).to_lowercase())
        .collect();
    (!parts.iter().any(String::is_empty)).then_some(parts)
}

/// The integration key of a Dataverse row (without the company).
pub fn dv_key(map: &TableMap, row: &Row) -> Option<Vec<String>> {
    let parts: Vec<String> = map
        .key
        .iter()
        .map(|k| {
            map.field_for_fno(k)
                .and_then(dv_attribute)
                .map(|a| value_text(row.get(&a)).to_lowercase())
                .unwrap_or_default()
        })
        .collect();
    (!parts.iter().any(String::is_empty)).then_some(parts)
}

fn map_value(field: &FieldMap, v: &Value, to_dataverse: bool) -> Value {
    if field.dir != Direction::BothTransformed || field.value_map.is_empty() {
        return v.clone();
    }
    for (fno, dv) in &field.value_map {
        if to_dataverse && same_value(Some(fno), Some(v)) {
            return dv.clone();
        }
        if !to_dataverse && same_value(Some(dv), Some(v)) {
            return fno.clone();
        }
    }
    v.clone()
}

/// Whether the field is written when the destination row already exists: defaults are
/// only for rows created without a source value.
fn flows(field: &FieldMap, to_dataverse: bool, creating: bool) -> bool {
    let dir_ok = if to_dataverse {
        field.dir.flows_to_dataverse()
    } else {
        field.dir.flows_to_fno()
    };
    let is_default = matches!(
        field.dir,
        Direction::DefaultToDataverse | Direction::DefaultToFno
    );
    dir_ok && (creating || !is_default)
}

/// The fields one leg writes, in map order: those that flow that way (defaults only when
/// creating), and with `only_one_way` just the ones the source side owns outright.
fn projected(
    map: &TableMap,
    to_dataverse: bool,
    creating: bool,
    only_one_way: bool,
) -> impl Iterator<Item = &FieldMap> {
    let owned = if to_dataverse {
        Direction::ToDataverse
    } else {
        Direction::ToFno
    };
    map.fields
        .iter()
        .filter(move |f| flows(f, to_dataverse, creating) && (!only_one_way || f.dir == owned))
}

/// Whether changing `before` into `after` on the source side touches a field the map writes
/// to the other side, compared as stored (before transforms and lookups): what decides
/// whether a change triggers when its projection cannot be made.
pub fn source_changed(map: &TableMap, to_dataverse: bool, before: &Row, after: &Row) -> bool {
    projected(map, to_dataverse, false, false).any(|f| {
        let name = if to_dataverse {
            f.fno.clone()
        } else {
            dv_attribute(f)
        };
        name.is_some_and(|n| !same_stored(before.get(&n), after.get(&n)))
    })
}

/// The table a Dataverse lookup column points at ("" when the column is unknown).
pub(crate) fn lookup_target<'t>(table: Option<&'t DvTable>, nav: &str) -> &'t str {
    table
        .and_then(|t| t.column(nav))
        .and_then(|c| c.targets.first().or(c.target.as_ref()))
        .map_or("", String::as_str)
}

/// Projects an F&O row to Dataverse attributes. `only_one_way` keeps just the fields F&O
/// owns outright (`>`), for a conflict that Dataverse wins.
pub fn to_dataverse(
    catalogue: &Catalogue,
    map: &TableMap,
    dv: &DvEnv,
    row: &Row,
    partition: &Partition,
    creating: bool,
    only_one_way: bool,
) -> Result<Row, LookupFailure> {
    ToDataverse::new(catalogue, map, partition).project(dv, row, creating, only_one_way)
}

/// A map's projection to Dataverse for one partition, worked out once for the rows of a
/// leg: each field's column, and for a lookup its attribute, target and company pin, and
/// the column order, so that a projected row needs no sorting. It also remembers what each
/// lookup value resolved to, where the leg cannot change the answer (the target is another
/// table than the one the leg writes): an initial sync of 500,000 customers looks up the
/// same few customer groups and currencies for every row.
pub struct ToDataverse<'c> {
    /// In map order (which decides which failed lookup a row reports), the company last.
    columns: Vec<Planned<'c>>,
    /// Positions in `columns` in column order; of two for one column, the later is last.
    order: Vec<usize>,
    /// Per column, the lookup values resolved so far.
    /// Shared by the threads that prepare a leg's rows.
    resolved: std::sync::Mutex<Vec<Resolved>>,
}

/// Lookup values a leg has resolved, by text: the row found, if any.
type Resolved = std::collections::HashMap<String, Option<String>, foldhash::fast::FixedState>;

/// One column a [`ToDataverse`] writes.
struct Planned<'c> {
    /// The Dataverse column, or a lookup's `_nav_value` attribute.
    column: Column,
    source: Source<'c>,
}

enum Source<'c> {
    /// A mapped field, resolved through a lookup when it has one.
    Field(&'c FieldMap, Option<LookupPlan<'c>>),
    /// The partition's company.
    Company(Value),
}

/// How a lookup field finds its row.
struct LookupPlan<'c> {
    target: &'c str,
    target_table: Option<&'c DvTable>,
    keyfield: &'c str,
    /// The company the row must belong to, for a company-striped target.
    company: Option<(String, Value)>,
    /// Whether a resolved value may be remembered for the rest of the leg.
    memo: bool,
}

impl<'c> ToDataverse<'c> {
    /// The projection of `map` for rows of `partition`.
    pub fn new(catalogue: &'c Catalogue, map: &'c TableMap, partition: &Partition) -> Self {
        let table = catalogue.dv_tables.get(&map.dv_table);
        let company_id = match partition {
            Partition::Company { dv_company_id, .. } => Some(dv_company_id),
            _ => None,
        };
        let mut columns: Vec<Planned> = map
            .fields
            .iter()
            .filter_map(|field| {
                let dv_name = field.dv.as_ref()?;
                Some(match field.dv_lookup() {
                    Some((nav, keyfield)) => {
                        let target = lookup_target(table, nav);
                        let target_table = catalogue.dv_tables.get(target);
                        let company = target_table
                            .and_then(|t| t.company_attribute())
                            .zip(company_id)
                            .filter(|_| !crate::mutants::active("lookup-company-ignored"))
                            .map(|(attr, id)| (attr, Value::from(id.clone())));
                        let lookup = LookupPlan {
                            target,
                            target_table,
                            keyfield,
                            company,
                            memo: target != map.dv_table,
                        };
                        Planned {
                            column: Column::schema(&format!("_{nav}_value")),
                            source: Source::Field(field, Some(lookup)),
                        }
                    }
                    None => Planned {
                        column: Column::schema(dv_name),
                        source: Source::Field(field, None),
                    },
                })
            })
            .collect();
        if let Some((attr, id)) = table.and_then(|t| t.company_attribute()).zip(company_id) {
            columns.push(Planned {
                column: Column::schema(&attr),
                source: Source::Company(Value::from(id.clone())),
            });
        }
        let mut order: Vec<usize> = (0..columns.len()).collect();
        order.sort_by(|&a, &b| columns[a].column.cmp(&columns[b].column));
        let resolved = columns.iter().map(|_| Resolved::default()).collect();
        ToDataverse {
            columns,
            order,
            resolved: std::sync::Mutex::new(resolved),
        }
    }

    /// The Dataverse attributes of an F&O row, or the lookup that found nothing.
    pub fn project(
        &self,
        dv: &DvEnv,
        row: &Row,
        creating: bool,
        only_one_way: bool,
    ) -> Result<Row, LookupFailure> {
        let mut values: Vec<Option<Value>> = vec![None; self.columns.len()];
        for (i, planned) in self.columns.iter().enumerate() {
            let (field, lookup) = match &planned.source {
                Source::Company(id) => {
                    values[i] = Some(id.clone());
                    continue;
                }
                Source::Field(field, lookup) => (*field, lookup),
            };
            if !flows(field, true, creating)
                || (only_one_way && field.dir != Direction::ToDataverse)
            {
                continue;
            }
            let value = match &field.fno {
                Some(f) => map_value(field, row.get(f).unwrap_or(&Value::Null), true),
                None => field.default.clone().unwrap_or(Value::Null),
            };
            let Some(lookup) = lookup else {
                values[i] = Some(value);
                continue;
            };
            let empty = match &value {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                _ => false,
            };
            if empty {
                values[i] = Some(Value::Null);
                continue;
            }
            match self.resolve(dv, i, lookup, &value) {
                Some(id) => values[i] = Some(Value::from(id)),
                None => {
                    return Err(LookupFailure {
                        entity_set: lookup
                            .target_table
                            .map_or(lookup.target.to_string(), |t| t.entity_set.clone()),
                        field: field.dv.clone().unwrap_or_default(),
                        value: value_text(Some(&value)),
                    })
                }
            }
        }
        Ok(self
            .order
            .iter()
            .filter_map(|&i| Some((self.columns[i].column.clone(), values[i].take()?)))
            .collect())
    }

    /// The id of the row a lookup value names, remembered per text value where allowed.
    fn resolve(&self, dv: &DvEnv, i: usize, lookup: &LookupPlan, value: &Value) -> Option<String> {
        let text = match value {
            Value::String(s) if lookup.memo => Some(s.as_str()),
            _ => None,
        };
        let resolved = || self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = text.and_then(|t| resolved()[i].get(t).cloned()) {
            return found;
        }
        let mut key = vec![(lookup.keyfield.to_string(), value.clone())];
        key.extend(lookup.company.clone());
        let found = dv.find_by(lookup.target, &key).map(|(id, _)| id);
        if let Some(t) = text {
            resolved()[i].insert(t.to_string(), found.clone());
        }
        found
    }
}

/// Projects a Dataverse row to F&O fields. `only_one_way` keeps the `<` fields.
pub fn to_fno(
    catalogue: &Catalogue,
    map: &TableMap,
    dv: &DvEnv,
    row: &Row,
    partition: &Partition,
    creating: bool,
    only_one_way: bool,
) -> Row {
    let table = catalogue.dv_tables.get(&map.dv_table);
    let mut out = Row::new();
    for field in projected(map, false, creating, only_one_way) {
        let Some(fno_name) = &field.fno else { continue };
        let value = match (&field.dv, field.dv_lookup()) {
            (_, Some((nav, keyfield))) => {
                let target = lookup_target(table, nav);
                row.get(&format!("_{nav}_value"))
                    .and_then(Value::as_str)
                    .and_then(|id| dv.get(target, id))
                    .and_then(|r| r.get(keyfield).cloned())
                    .unwrap_or(Value::Null)
            }
            (Some(dv_name), None) => {
                map_value(field, row.get(dv_name).unwrap_or(&Value::Null), false)
            }
            (None, None) => field.default.clone().unwrap_or(Value::Null),
        };
        out.insert(fno_name.as_str().into(), value);
    }
    if let Partition::Company { code, .. } = partition {
        out.insert("dataAreaId".into(), Value::from(code.to_lowercase()));
    }
    out
}

/// F&O has no nulls: an empty string or a zero is what Dataverse's null comes back as. Values
/// are equivalent when equal, or both empty in that sense.
pub fn equivalent(a: Option<&Value>, b: Option<&Value>) -> bool {
    fn empty(v: Option<&Value>) -> bool {
        match v {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Number(n)) => n.as_f64() == Some(0.0),
            _ => false,
        }
    }
    same_value(a, b) || (empty(a) && empty(b))
}

/// Fields of `patch` whose value differs from `row` (so an update would change something).
/// Text compares exactly: a change of letter case is a change, even though both products
/// match text case-insensitively in keys and queries.
pub fn changed(patch: &Row, row: &Row) -> Row {
    patch
        .iter()
        .filter(|(k, v)| !same_stored(row.get(k), Some(v)))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Whether writing `b` over `a` would store nothing new: equal values (numbers by value,
/// text exactly), or both empty in F&O's sense (null ≡ "" ≡ 0).
fn same_stored(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => {
            x == y || (x.is_empty() && y.is_empty())
        }
        _ => equivalent(a, b),
    }
}

/// F&O rows of the map's entity in a partition that pass the source filter.
pub fn fno_rows(map: &TableMap, fno: &FnoEnv, partition: &Partition) -> Vec<(String, Row)> {
    fno_rows_where(map, fno, partition, true)
}

/// F&O rows of the map's entity in a partition; `filtered` applies the source filter.
/// Dual-write writes a counterpart by integration key (an upsert), so it looks among all
/// rows of the partition, filter or not.
pub fn fno_rows_where(
    map: &TableMap,
    fno: &FnoEnv,
    partition: &Partition,
    filtered: bool,
) -> Vec<(String, Row)> {
    let company = fno_company_pin(map, partition);
    fno.store
        .candidates(&map.fno_entity, &pins(&company))
        .filter(|(_, r)| in_fno_partition(map, r, partition))
        .filter(|(_, r)| !filtered || passes_fno_filter(map, r))
        .map(|(id, r)| (id.to_string(), r.clone()))
        .collect()
}

/// The map's F&O rows in a partition, in id order, before the source filter. Initial sync
/// reads rows where they lie instead of copying them.
pub fn fno_partition<'a>(
    map: &'a TableMap,
    fno: &'a FnoEnv,
    partition: &'a Partition,
) -> impl Iterator<Item = (&'a str, &'a Row)> + 'a {
    let company = fno_company_pin(map, partition);
    fno.store
        .candidates(&map.fno_entity, &pins(&company))
        .filter(move |(_, r)| in_fno_partition(map, r, partition))
}

/// The map's Dataverse rows in a partition, in id order, before the reverse filter.
pub fn dv_partition<'a>(
    catalogue: &'a Catalogue,
    map: &'a TableMap,
    dv: &'a DvEnv,
    partition: &'a Partition,
) -> impl Iterator<Item = (&'a str, &'a Row)> + 'a {
    let company = dv_company_pin(catalogue, map, partition);
    dv.store
        .candidates(&map.dv_table, &pins(&company))
        .filter(move |(_, r)| in_dv_partition(catalogue, map, r, partition))
}

/// Borrowed pins for [`crate::store::Store::candidates`].
fn pins(owned: &[(String, Value)]) -> Vec<(&str, Option<&Value>)> {
    owned.iter().map(|(k, v)| (k.as_str(), Some(v))).collect()
}

/// The column a partition pins on the map's F&O entity: its company.
fn fno_company_pin(map: &TableMap, partition: &Partition) -> Vec<(String, Value)> {
    match partition {
        Partition::Company { code, .. } if map.fno_entity != LEGAL_ENTITIES => {
            vec![("dataAreaId".to_string(), Value::from(code.clone()))]
        }
        _ => Vec::new(),
    }
}

/// The column a partition pins on the map's Dataverse table: its company lookup.
fn dv_company_pin(
    catalogue: &Catalogue,
    map: &TableMap,
    partition: &Partition,
) -> Vec<(String, Value)> {
    let attr = catalogue
        .dv_tables
        .get(&map.dv_table)
        .and_then(|t| t.company_attribute());
    match (partition, attr) {
        (Partition::Company { dv_company_id, .. }, Some(attr)) => {
            vec![(attr, Value::from(dv_company_id.clone()))]
        }
        _ => Vec::new(),
    }
}

/// The id of the F&O row of the map's entity in a partition with this integration key
/// (an upsert's lookup: filter or not).
pub fn find_fno(
    map: &TableMap,
    fno: &FnoEnv,
    partition: &Partition,
    key: &[String],
) -> Option<String> {
    let mut pinned = fno_company_pin(map, partition);
    pinned.extend(
        map.key
            .iter()
            .zip(key)
            .map(|(k, v)| (k.to_string(), Value::from(v.clone()))),
    );
    fno.store
        .candidates(&map.fno_entity, &pins(&pinned))
        .filter(|(_, r)| in_fno_partition(map, r, partition))
        .find(|(_, r)| fno_key(map, r).as_deref() == Some(key))
        .map(|(id, _)| id.to_string())
}

/// The id of the Dataverse row of the map's table in a partition with this integration
/// key (an upsert's lookup: filter or not).
pub fn find_dv(
    catalogue: &Catalogue,
    map: &TableMap,
    dv: &DvEnv,
    partition: &Partition,
    key: &[String],
) -> Option<String> {
    let mut pinned = dv_company_pin(catalogue, map, partition);
    let attrs: Vec<Option<String>> = map
        .key
        .iter()
        .map(|k| map.field_for_fno(k).and_then(dv_attribute))
        .collect();
    for (attr, v) in attrs.into_iter().zip(key) {
        if let Some(attr) = attr {
            pinned.push((attr, Value::from(v.clone())));
        }
    }
    dv.store
        .candidates(&map.dv_table, &pins(&pinned))
        .filter(|(_, r)| in_dv_partition(catalogue, map, r, partition))
        .find(|(_, r)| dv_key(map, r).as_deref() == Some(key))
        .map(|(id, _)| id.to_string())
}

/// Whether an F&O row belongs to the partition.
pub fn in_fno_partition(map: &TableMap, row: &Row, partition: &Partition) -> bool {
    match partition {
        Partition::Company { code, .. } => {
            value_text(row.get("dataAreaId")).eq_ignore_ascii_case(code)
        }
        Partition::LegalEntities { codes } => {
            map.fno_entity == LEGAL_ENTITIES
                && codes
                    .iter()
                    .any(|c| value_text(row.get("LegalEntityId")).eq_ignore_ascii_case(c))
        }
        Partition::Global => true,
    }
}

/// Dataverse rows of the map's table in a partition that pass the reverse filter.
pub fn dv_rows(
    catalogue: &Catalogue,
    map: &TableMap,
    dv: &DvEnv,
    partition: &Partition,
) -> Vec<(String, Row)> {
    dv_rows_where(catalogue, map, dv, partition, true)
}

/// Dataverse rows of the map's table in a partition; `filtered` applies the reverse filter.
pub fn dv_rows_where(
    catalogue: &Catalogue,
    map: &TableMap,
    dv: &DvEnv,
    partition: &Partition,
    filtered: bool,
) -> Vec<(String, Row)> {
    let company = dv_company_pin(catalogue, map, partition);
    dv.store
        .candidates(&map.dv_table, &pins(&company))
        .filter(|(_, r)| in_dv_partition(catalogue, map, r, partition))
        .filter(|(_, r)| !filtered || passes_dv_filter(map, r))
        .map(|(id, r)| (id.to_string(), r.clone()))
        .collect()
}

/// Whether a Dataverse row belongs to the partition.
pub fn in_dv_partition(
    catalogue: &Catalogue,
    map: &TableMap,
    row: &Row,
    partition: &Partition,
) -> bool {
    match partition {
        Partition::Company { dv_company_id, .. } => {
            let attr = catalogue
                .dv_tables
                .get(&map.dv_table)
                .and_then(|t| t.company_attribute());
            attr.is_some_and(|a| same_value(row.get(&a), Some(&Value::from(dv_company_id.clone()))))
        }
        Partition::LegalEntities { codes } => codes
            .iter()
            .any(|c| value_text(row.get("cdm_companycode")).eq_ignore_ascii_case(c)),
        Partition::Global => true,
    }
}
