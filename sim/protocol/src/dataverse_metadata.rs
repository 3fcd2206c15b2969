//! Dataverse describes itself: the metadata services `EntityDefinitions` (tables with their
//! attributes, keys and relationships) and `GlobalOptionSetDefinitions`, and the CSDL
//! `$metadata` document ([`csdl`]). All three are generated from the catalogue's table
//! definitions, the same ones writes are checked against, so what the Web API says it accepts
//! and what it accepts cannot drift apart.
//!
//! Supported: `EntityDefinitions` as a collection or by `LogicalName='…'` or MetadataId, with
//! `$select`, `$filter` and `$expand` of `Attributes`, `Keys`, `ManyToOneRelationships` and
//! `OneToManyRelationships` (each with a nested `$select` and `$filter`); below one table its
//! `Attributes` (by `LogicalName` or MetadataId), optionally cast to a derived type
//! (`/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`) with `$expand=OptionSet` or
//! `GlobalOptionSet`, its `Keys` and relationships; `GlobalOptionSetDefinitions` by `Name='…'`
//! or MetadataId. Labels are in English (LCID 1033).

mod csdl;

pub(crate) use csdl::csdl;

use crate::odata::filter::Dialect;
use crate::odata::{self, KeySpec, QueryOptions};
use crate::request::Response;
use dwsim_model::error::{ErrorKind, SimError, SimResult};
use dwsim_model::ids::derived_guid;
use dwsim_model::schema::{DvColumn, DvRelationship, DvTable, DvType};
use dwsim_model::Catalogue;
use serde_json::{json, Map, Value};

/// The English language code labels are given in.
const LCID: i64 = 1033;
/// The namespace derived metadata types are cast with.
const NS: &str = "Microsoft.Dynamics.CRM";

/// A request below `EntityDefinitions` or `GlobalOptionSetDefinitions`, read-only.
pub(crate) struct MetadataCall<'a> {
    /// The catalogue the tables come from.
    pub catalogue: &'a Catalogue,
    /// `{origin}/api/data/v9.x`, for `@odata.context`.
    pub base: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The query string's parameters.
    pub params: Vec<(String, String)>,
}

/// `EntityDefinitions…`: `first` is the `EntityDefinitions` segment (with its key, if any),
/// `more` what follows it.
pub(crate) fn entity_definitions(
    call: &MetadataCall,
    first: &str,
    more: &[String],
) -> SimResult<Response> {
    read_only(call)?;
    let options = metadata_options(call)?;
    let (_, key) = odata::parse_segment(first).map_err(refused)?;
    let Some(key) = key else {
        if !more.is_empty() {
            return Err(not_found(&more[0]));
        }
        let tables: Vec<Map<String, Value>> = call
            .catalogue
            .dv_tables
            .values()
            .map(|t| entity(call.catalogue, t))
            .collect();
        let tables =
            odata::filter_and_sort(tables, &options, Dialect::Dataverse).map_err(refused)?;
        let value = tables
            .into_iter()
            .map(|e| shape_entity(call, e, &options))
            .collect::<SimResult<Vec<_>>>()?;
        return Ok(collection(call, "EntityDefinitions", &options, value));
    };
    let table = find_table(call.catalogue, &key)?;
    match more {
        [] => {
            let body = shape_entity(call, entity(call.catalogue, table), &options)?;
            Ok(single(call, "EntityDefinitions", &options, body))
        }
        [part, rest @ ..] => {
            let (name, member) = odata::parse_segment(part).map_err(refused)?;
            let items = children(call.catalogue, table, &name).ok_or_else(|| not_found(part))?;
            let context = format!("EntityDefinitions({})/{name}", table.metadata_id());
            let (cast, rest) = match rest {
                [c, rest @ ..] if c.starts_with(&format!("{NS}.")) => (Some(c.as_str()), rest),
                _ => (None, rest),
            };
            if let Some(extra) = rest.first() {
                return Err(not_found(extra));
            }
            let items: Vec<Map<String, Value>> = items
                .into_iter()
                .filter(|i| cast.is_none_or(|c| is_of_type(i, c)))
                .collect();
            match member {
                None => {
                    let items = odata::filter_and_sort(items, &options, Dialect::Dataverse)
                        .map_err(refused)?;
                    let value = items
                        .into_iter()
                        .map(|i| shape_child(table, i, &options))
                        .collect::<SimResult<Vec<_>>>()?;
                    Ok(collection(call, &context, &options, value))
                }
                Some(member) => {
                    let item = find_member(items, &member).ok_or_else(|| not_found(part))?;
                    let body = shape_child(table, item, &options)?;
                    Ok(single(call, &context, &options, body))
                }
            }
        }
    }
}

/// `GlobalOptionSetDefinitions…`: every option set a column names as global.
pub(crate) fn global_option_sets(
    call: &MetadataCall,
    first: &str,
    more: &[String],
) -> SimResult<Response> {
    read_only(call)?;
    if let Some(extra) = more.first() {
        return Err(not_found(extra));
    }
    let options = metadata_options(call)?;
    let (_, key) = odata::parse_segment(first).map_err(refused)?;
    let mut sets: std::collections::BTreeMap<String, Map<String, Value>> = Default::default();
    for table in call.catalogue.dv_tables.values() {
        for col in &table.columns {
            if let Some(name) = &col.global_option_set {
                sets.entry(name.clone())
                    .or_insert_with(|| option_set(table, col));
            }
        }
    }
    let sets: Vec<Map<String, Value>> = sets.into_values().collect();
    match key {
        None => {
            let sets =
                odata::filter_and_sort(sets, &options, Dialect::Dataverse).map_err(refused)?;
            let value = sets.into_iter().map(|s| select(s, &options)).collect();
            Ok(collection(
                call,
                "GlobalOptionSetDefinitions",
                &options,
                value,
            ))
        }
        Some(key) => {
            let set = find_member(sets, &key).ok_or_else(|| not_found(first))?;
            Ok(single(
                call,
                "GlobalOptionSetDefinitions",
                &options,
                select(set, &options),
            ))
        }
    }
}

fn read_only(call: &MetadataCall) -> SimResult<()> {
    if call.method == "GET" {
        return Ok(());
    }
    Err(SimError::new(
        ErrorKind::MethodNotAllowed,
        "0x80060888",
        format!(
            "dwsim serves the metadata read-only; '{}' is not supported here.",
            call.method
        ),
    ))
}

fn metadata_options(call: &MetadataCall) -> SimResult<QueryOptions> {
    let o = odata::parse_options(&call.params, Dialect::Dataverse).map_err(refused)?;
    let unsupported = o
        .unknown
        .first()
        .map(String::as_str)
        .or(o.skip.map(|_| "$skip"));
    if let Some(u) = unsupported {
        return Err(SimError::new(
            ErrorKind::BadRequest,
            "0x80060888",
            format!("The query parameter {u} is not supported"),
        ));
    }
    if o.top.is_some() || o.skiptoken.is_some() {
        return Err(SimError::new(
            ErrorKind::BadRequest,
            "0x80060888",
            "The metadata services do not page: $top is not supported",
        ));
    }
    Ok(o)
}

fn refused(e: odata::QueryError) -> SimError {
    SimError::new(ErrorKind::BadRequest, "0x80060888", e.to_string())
}

fn not_found(segment: &str) -> SimError {
    SimError::new(
        ErrorKind::NotFound,
        "0x80060888",
        format!("Resource not found for the segment '{segment}'."),
    )
}

/// The table a key names: `LogicalName='account'` or the table's MetadataId.
fn find_table<'c>(catalogue: &'c Catalogue, key: &KeySpec) -> SimResult<&'c DvTable> {
    let found = match key {
        KeySpec::Named(pairs) => match pairs.as_slice() {
            [(k, Value::String(name))] if k == "LogicalName" => catalogue.dv_tables.get(name),
            [(k, Value::String(id))] if k == "MetadataId" => by_metadata_id(catalogue, id),
            _ => None,
        },
        KeySpec::Single(Value::String(id)) => by_metadata_id(catalogue, id),
        KeySpec::Single(_) => None,
    };
    found.ok_or_else(|| {
        let shown = match key {
            KeySpec::Named(p) => p
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            KeySpec::Single(v) => v.to_string(),
        };
        SimError::new(
            ErrorKind::NotFound,
            "0x80040217",
            format!("Could not find entity with {shown}."),
        )
    })
}

fn by_metadata_id<'c>(catalogue: &'c Catalogue, id: &str) -> Option<&'c DvTable> {
    catalogue
        .dv_tables
        .values()
        .find(|t| t.metadata_id().eq_ignore_ascii_case(id))
}

/// A member of a child collection by its key: `LogicalName='…'`, `Name='…'`, `SchemaName='…'`
/// or MetadataId.
fn find_member(items: Vec<Map<String, Value>>, key: &KeySpec) -> Option<Map<String, Value>> {
    let (field, wanted) = match key {
        KeySpec::Named(pairs) => match pairs.as_slice() {
            [(k, Value::String(v))] => (k.as_str(), v.as_str()),
            _ => return None,
        },
        KeySpec::Single(Value::String(id)) => ("MetadataId", id.as_str()),
        KeySpec::Single(_) => return None,
    };
    items.into_iter().find(|i| {
        i.get(field)
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case(wanted))
    })
}

/// Whether a metadata object is of the derived type a cast segment names.
fn is_of_type(item: &Map<String, Value>, cast: &str) -> bool {
    let Some(t) = item.get("@odata.type").and_then(Value::as_str) else {
        return false;
    };
    let t = t.trim_start_matches('#');
    // A cast to the enum base type takes every choice column.
    t == cast
        || (cast == format!("{NS}.EnumAttributeMetadata")
            && [
                "PicklistAttributeMetadata",
                "StateAttributeMetadata",
                "StatusAttributeMetadata",
            ]
            .iter()
            .any(|d| t == format!("{NS}.{d}")))
}

/// The collections below a table.
fn children(catalogue: &Catalogue, table: &DvTable, name: &str) -> Option<Vec<Map<String, Value>>> {
    Some(match name {
        "Attributes" => table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| attribute(table, c, i))
            .collect(),
        "Keys" => table.alternate_keys.iter().map(|k| key(table, k)).collect(),
        "ManyToOneRelationships" => table
            .many_to_one
            .iter()
            .map(|r| relationship(catalogue, &table.logical_name, r))
            .collect(),
        "OneToManyRelationships" => catalogue
            .dv_tables
            .values()
            .flat_map(|t| {
                t.many_to_one
                    .iter()
                    .filter(|r| r.referenced_entity == table.logical_name)
                    .map(|r| relationship(catalogue, &t.logical_name, r))
            })
            .collect(),
        _ => return None,
    })
}

/// `{"LocalizedLabels":[…],"UserLocalizedLabel":…}` for an English text.
fn label(text: &str, id_parts: &[&str]) -> Value {
    let localized = json!({
        "Label": text,
        "LanguageCode": LCID,
        "IsManaged": true,
        "MetadataId": derived_guid(id_parts),
        "HasChanged": null,
    });
    json!({"LocalizedLabels": [localized.clone()], "UserLocalizedLabel": localized})
}

fn empty_label() -> Value {
    json!({"LocalizedLabels": [], "UserLocalizedLabel": null})
}

/// Words of a logical name as a label (`primarycontactid` stays as it is; there is no
/// dictionary to split it by).
fn display(column: &DvColumn) -> String {
    column
        .display_name
        .clone()
        .unwrap_or_else(|| column.name.clone())
}

/// A table's `EntityMetadata`.
fn entity(catalogue: &Catalogue, t: &DvTable) -> Map<String, Value> {
    let name = t
        .display_name
        .clone()
        .unwrap_or_else(|| t.logical_name.clone());
    let plural = t
        .display_collection_name
        .clone()
        .unwrap_or_else(|| t.entity_set.clone());
    let custom = t.logical_name.contains('_');
    let object_type_code = t.object_type_code.unwrap_or_else(|| {
        // Custom tables get codes from 10000 in catalogue order.
        10_000
            + catalogue
                .dv_tables
                .keys()
                .position(|k| k == &t.logical_name)
                .unwrap_or(0) as i64
    });
    let value = json!({
        "@odata.type": format!("#{NS}.EntityMetadata"),
        "MetadataId": t.metadata_id(),
        "HasChanged": null,
        "LogicalName": t.logical_name,
        "SchemaName": t.schema(),
        "EntitySetName": t.entity_set,
        "LogicalCollectionName": t.entity_set,
        "CollectionSchemaName": format!("{}s", t.schema()),
        "PrimaryIdAttribute": t.primary_id,
        "PrimaryNameAttribute": t.primary_name,
        "ObjectTypeCode": object_type_code,
        "OwnershipType": if t.owned { "UserOwned" } else { "OrganizationOwned" },
        "IsCustomEntity": custom,
        "IsActivity": false,
        "IsManaged": true,
        "IsValidForAdvancedFind": true,
        "IsIntersect": false,
        "IsLogicalEntity": false,
        "HasActivities": false,
        "HasNotes": false,
        "DisplayName": label(&name, &["EntityDisplayName", &t.logical_name]),
        "DisplayCollectionName": label(&plural, &["EntityDisplayCollectionName", &t.logical_name]),
        "Description": t.description.as_deref().map_or_else(empty_label, |d| label(d, &["EntityDescription", &t.logical_name])),
    });
    let Value::Object(map) = value else {
        unreachable!("a JSON object literal")
    };
    map
}

/// An attribute's metadata in its derived type, without the option set navigation
/// properties (those come with `$expand`).
fn attribute(t: &DvTable, c: &DvColumn, position: usize) -> Map<String, Value> {
    let custom = c.name.contains('_') && !c.name.starts_with('_');
    let mut a = json!({
        "@odata.type": format!("#{NS}.{}", c.kind.metadata_type()),
        "MetadataId": derived_guid(&["AttributeMetadata", &t.logical_name, &c.name]),
        "HasChanged": null,
        "LogicalName": c.name,
        "SchemaName": c.name,
        "EntityLogicalName": t.logical_name,
        "AttributeType": c.kind.attribute_type(),
        "AttributeTypeName": {"Value": format!("{}Type", c.kind.attribute_type())},
        "DisplayName": label(&display(c), &["AttributeDisplayName", &t.logical_name, &c.name]),
        "Description": empty_label(),
        "RequiredLevel": {"Value": format!("{:?}", c.level()), "CanBeChanged": !c.required, "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"},
        "IsValidForCreate": !c.read_only,
        "IsValidForUpdate": !c.read_only && c.name != t.primary_id,
        "IsValidForRead": true,
        "IsPrimaryId": c.name == t.primary_id,
        "IsPrimaryName": t.primary_name.as_deref() == Some(c.name.as_str()),
        "IsCustomAttribute": custom,
        "IsLogical": false,
        "AttributeOf": null,
        "ColumnNumber": position + 1,
    });
    match c.kind {
        DvType::String | DvType::Memo => {
            a["MaxLength"] =
                json!(c
                    .max_length
                    .unwrap_or(if c.kind == DvType::Memo { 2000 } else { 100 }));
            a["Format"] = json!(c
                .format
                .clone()
                .unwrap_or_else(|| if c.kind == DvType::Memo {
                    "TextArea".into()
                } else {
                    "Text".into()
                }));
        }
        DvType::Integer => {
            a["MinValue"] = json!(c.min_value.map_or(i64::from(i32::MIN), |v| v as i64));
            a["MaxValue"] = json!(c.max_value.map_or(i64::from(i32::MAX), |v| v as i64));
            a["Format"] = json!(c.format.clone().unwrap_or_else(|| "None".into()));
        }
        DvType::BigInt => {
            a["MinValue"] = json!(i64::MIN);
            a["MaxValue"] = json!(i64::MAX);
        }
        DvType::Decimal | DvType::Double | DvType::Money => {
            a["MinValue"] = json!(c.min_value.unwrap_or(-100_000_000_000.0));
            a["MaxValue"] = json!(c.max_value.unwrap_or(100_000_000_000.0));
            a["Precision"] = json!(c.precision.unwrap_or(2));
        }
        DvType::Boolean => {
            a["DefaultValue"] = c.default_value.clone().unwrap_or(json!(false));
        }
        DvType::Picklist | DvType::State | DvType::Status => {
            a["DefaultFormValue"] = c.default_value.clone().unwrap_or(json!(-1));
        }
        DvType::Lookup | DvType::Customer | DvType::Owner => {
            a["Targets"] = json!(c.targets());
        }
        DvType::Datetime => {
            a["Format"] = json!(c.format.clone().unwrap_or_else(|| "DateAndTime".into()));
            a["DateTimeBehavior"] = json!({"Value": if c.format.as_deref() == Some("DateOnly") { "DateOnly" } else { "UserLocal" }});
        }
        DvType::Uniqueidentifier => {}
    }
    let Value::Object(map) = a else {
        unreachable!("a JSON object literal")
    };
    map
}

/// The option set of a choice or yes/no column.
fn option_set(t: &DvTable, c: &DvColumn) -> Map<String, Value> {
    let global = c.global_option_set.is_some();
    let name = c
        .global_option_set
        .clone()
        .unwrap_or_else(|| format!("{}_{}", t.logical_name, c.name));
    let id = |parts: &[&str]| derived_guid(&[&["OptionSet", &name][..], parts].concat());
    let option = |value: i64, text: &str| {
        let mut o = json!({
            "Value": value,
            "Color": null,
            "IsManaged": true,
            "ExternalValue": "",
            "ParentValues": [],
            "Tag": null,
            "IsHidden": false,
            "MetadataId": null,
            "HasChanged": null,
            "Label": label(text, &["Option", &name, &value.to_string()]),
            "Description": empty_label(),
        });
        if c.kind == DvType::Status {
            o["@odata.type"] = json!(format!("#{NS}.StatusOptionMetadata"));
            o["State"] = json!(c.states.get(&value.to_string()).copied().unwrap_or(0));
            o["TransitionData"] = Value::Null;
        }
        if c.kind == DvType::State {
            o["@odata.type"] = json!(format!("#{NS}.StateOptionMetadata"));
            o["InvariantName"] = json!(text);
            o["DefaultStatus"] = json!(value + 1);
        }
        o
    };
    let mut set = json!({
        "MetadataId": id(&[]),
        "HasChanged": null,
        "Name": name,
        "IsGlobal": global,
        "IsCustomOptionSet": name.contains('_') && global,
        "IsManaged": true,
        "DisplayName": label(&display(c), &["OptionSetDisplayName", &name]),
        "Description": empty_label(),
        "ExternalTypeName": null,
        "IntroducedVersion": "1.0",
    });
    if c.kind == DvType::Boolean {
        set["@odata.type"] = json!(format!("#{NS}.BooleanOptionSetMetadata"));
        set["OptionSetType"] = json!("Boolean");
        let text =
            |v: &str, fallback: &str| c.options.get(v).cloned().unwrap_or_else(|| fallback.into());
        set["TrueOption"] = option(1, &text("1", "Yes"));
        set["FalseOption"] = option(0, &text("0", "No"));
    } else {
        set["@odata.type"] = json!(format!("#{NS}.OptionSetMetadata"));
        set["OptionSetType"] = json!(c.kind.attribute_type());
        let mut options: Vec<(i64, &String)> = c
            .options
            .iter()
            .filter_map(|(v, l)| Some((v.parse::<i64>().ok()?, l)))
            .collect();
        options.sort();
        set["Options"] = Value::Array(options.into_iter().map(|(v, l)| option(v, l)).collect());
    }
    let Value::Object(map) = set else {
        unreachable!("a JSON object literal")
    };
    map
}

fn key(t: &DvTable, k: &dwsim_model::schema::DvKey) -> Map<String, Value> {
    let value = json!({
        "@odata.type": format!("#{NS}.EntityKeyMetadata"),
        "MetadataId": derived_guid(&["EntityKeyMetadata", &t.logical_name, &k.name]),
        "HasChanged": null,
        "LogicalName": k.name,
        "SchemaName": k.name,
        "EntityLogicalName": t.logical_name,
        "KeyAttributes": k.columns.iter().map(|c| {
            // A lookup in a key is named by its column, not its `_x_value` attribute.
            c.strip_prefix('_').and_then(|c| c.strip_suffix("_value")).unwrap_or(c).to_string()
        }).collect::<Vec<_>>(),
        "DisplayName": label(&k.name, &["EntityKeyDisplayName", &t.logical_name, &k.name]),
        "EntityKeyIndexStatus": "Active",
        "IsManaged": true,
        "IsCustomizable": {"Value": true, "CanBeChanged": true, "ManagedPropertyLogicalName": "iscustomizable"},
    });
    let Value::Object(map) = value else {
        unreachable!("a JSON object literal")
    };
    map
}

fn relationship(
    catalogue: &Catalogue,
    referencing: &str,
    r: &DvRelationship,
) -> Map<String, Value> {
    let referenced_attribute = if r.referenced_entity == "owner" {
        "ownerid".to_string()
    } else {
        catalogue.dv_tables.get(&r.referenced_entity).map_or_else(
            || format!("{}id", r.referenced_entity),
            |t| t.primary_id.clone(),
        )
    };
    let value = json!({
        "@odata.type": format!("#{NS}.OneToManyRelationshipMetadata"),
        "MetadataId": derived_guid(&["RelationshipMetadata", &r.schema_name]),
        "HasChanged": null,
        "SchemaName": r.schema_name,
        "RelationshipType": "OneToManyRelationship",
        "IsCustomRelationship": r.schema_name.contains("_msdyn") || r.schema_name.starts_with("msdyn_"),
        "IsManaged": true,
        "IsValidForAdvancedFind": true,
        "ReferencedAttribute": referenced_attribute,
        "ReferencedEntity": r.referenced_entity,
        "ReferencingAttribute": r.referencing_attribute,
        "ReferencingEntity": referencing,
        "ReferencedEntityNavigationPropertyName": r.referenced_nav,
        "ReferencingEntityNavigationPropertyName": r.referencing_nav,
        "IsHierarchical": false,
        "CascadeConfiguration": {"Assign": "NoCascade", "Delete": "RemoveLink", "Merge": "NoCascade", "Reparent": "NoCascade", "Share": "NoCascade", "Unshare": "NoCascade", "RollupView": "NoCascade"},
    });
    let Value::Object(map) = value else {
        unreachable!("a JSON object literal")
    };
    map
}

/// Keeps the `$select`ed properties (and always the MetadataId and the type annotation).
fn select(mut item: Map<String, Value>, o: &QueryOptions) -> Map<String, Value> {
    if let Some(keep) = &o.select {
        item.retain(|k, _| k == "MetadataId" || k.starts_with('@') || keep.iter().any(|s| s == k));
    }
    item
}

/// One table as asked: its properties, then the child collections `$expand` names.
fn shape_entity(
    call: &MetadataCall,
    entity: Map<String, Value>,
    o: &QueryOptions,
) -> SimResult<Map<String, Value>> {
    let table = entity
        .get("LogicalName")
        .and_then(Value::as_str)
        .and_then(|n| call.catalogue.dv_tables.get(n))
        .ok_or_else(|| not_found("EntityDefinitions"))?;
    let mut out = select(entity, o);
    out.remove("@odata.type");
    for item in &o.expand {
        let parsed = odata::parse_expand_item(item).map_err(refused)?;
        let items =
            children(call.catalogue, table, &parsed.nav).ok_or_else(|| not_found(&parsed.nav))?;
        let nested = nested_options(parsed.select, parsed.filter.as_deref())?;
        let items = odata::filter_and_sort(items, &nested, Dialect::Dataverse).map_err(refused)?;
        out.insert(
            parsed.nav.clone(),
            Value::Array(
                items
                    .into_iter()
                    .map(|i| Value::Object(select(i, &nested)))
                    .collect(),
            ),
        );
    }
    Ok(out)
}

/// One attribute, key or relationship as asked; an attribute may expand its option set.
fn shape_child(
    table: &DvTable,
    item: Map<String, Value>,
    o: &QueryOptions,
) -> SimResult<Map<String, Value>> {
    let column = item
        .get("EntityLogicalName")
        .and(item.get("AttributeType"))
        .and(item.get("LogicalName"))
        .and_then(Value::as_str)
        .and_then(|n| table.column(n));
    let mut out = select(item, o);
    for expand in &o.expand {
        let parsed = odata::parse_expand_item(expand).map_err(refused)?;
        let col = column
            .filter(|c| c.kind.is_choice() || c.kind == DvType::Boolean)
            .filter(|_| parsed.nav == "OptionSet" || parsed.nav == "GlobalOptionSet")
            .ok_or_else(|| not_found(&parsed.nav))?;
        let nested = nested_options(parsed.select, None)?;
        let global = col.global_option_set.is_some();
        let value = if (parsed.nav == "GlobalOptionSet") == global {
            Value::Object(select(option_set(table, col), &nested))
        } else {
            Value::Null
        };
        out.insert(parsed.nav, value);
    }
    Ok(out)
}

fn nested_options(select: Option<Vec<String>>, filter: Option<&str>) -> SimResult<QueryOptions> {
    let mut params = Vec::new();
    if let Some(f) = filter {
        params.push(("$filter".to_string(), f.to_string()));
    }
    let mut o = odata::parse_options(&params, Dialect::Dataverse).map_err(refused)?;
    o.select = select;
    Ok(o)
}

fn context(call: &MetadataCall, path: &str, o: &QueryOptions) -> String {
    match &o.select {
        Some(s) => format!("{}/$metadata#{path}({})", call.base, s.join(",")),
        None => format!("{}/$metadata#{path}", call.base),
    }
}

fn collection(
    call: &MetadataCall,
    path: &str,
    o: &QueryOptions,
    value: Vec<Map<String, Value>>,
) -> Response {
    let value: Vec<Value> = value.into_iter().map(Value::Object).collect();
    Response::json(
        200,
        &json!({"@odata.context": context(call, path, o), "value": value}),
    )
}

fn single(call: &MetadataCall, path: &str, o: &QueryOptions, body: Map<String, Value>) -> Response {
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(format!("{}/$entity", context(call, path, o))),
    );
    out.extend(body);
    Response::json(200, &Value::Object(out))
}
