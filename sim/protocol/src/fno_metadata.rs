//! What an F&O environment says about itself, generated from the same entity schemas as
//! `/data/$metadata`: the read-only Metadata API under `{env}/Metadata/…` (`DataEntities`,
//! `PublicEntities`, `PublicEnumerations`, `Labels`), the `Companies` entity (one row per
//! legal entity, key `DataArea`), and the `DataManagementEntities` version actions. Clients
//! such as d365fo-client read these before their first `/data` request.
//!
//! The catalogue has no label files, so every label id is `@DWSIM:<name>` and `Labels`
//! answers the catalogue's own label text for it (docs/servers.md).

use crate::odata::filter::Dialect;
use crate::odata::{self, KeySpec};
use crate::request::{Request, Response};
use dwsim_model::error::{ErrorKind, SimError, SimResult};
use dwsim_model::fno::{value_text, LEGAL_ENTITIES};
use dwsim_model::schema::{FnoEntity, FnoField, FnoType};
use dwsim_model::store::Row;
use dwsim_model::World;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The entity set of the companies (legal entities) the environment has.
pub(crate) const COMPANIES: &str = "Companies";
/// The only language the generated labels exist in.
const LANGUAGE: &str = "en-us";
const CONSTRAINT_TYPE: &str = "#Microsoft.Dynamics.Metadata.ReferentialConstraint";

/// `{env}/Metadata/{collection}[(key)]`.
pub(crate) fn metadata_api(
    world: &World,
    base: &str,
    req: &Request,
    rest: &[String],
) -> SimResult<Response> {
    read_only(req, "the metadata service")?;
    let [seg] = rest else {
        return Err(not_found(rest.last().map_or("Metadata", String::as_str)));
    };
    let (set, key) = odata::parse_segment(seg).map_err(|e| SimError::bad_request(e.to_string()))?;
    let (rows, key_fields): (Vec<Row>, &[&str]) = match set.as_str() {
        "DataEntities" => (data_entities(world), &["Name"]),
        "PublicEntities" => (public_entities(world), &["Name"]),
        "PublicEnumerations" => (public_enumerations(world), &["Name"]),
        "Labels" => (labels(world), &["Id", "Language"]),
        _ => return Err(not_found(&set)),
    };
    let context = format!("{base}/Metadata/$metadata#{set}");
    answer(rows, key, key_fields, seg, req, &context)
}

/// `GET {env}/data/Companies[(…)]`: one row per legal entity of the environment.
pub(crate) fn companies(
    world: &World,
    env: &str,
    base: &str,
    req: &Request,
    seg: &str,
    key: Option<KeySpec>,
) -> SimResult<Response> {
    read_only(req, "the entity set 'Companies'")?;
    let rows: Vec<Row> = world.fno[env]
        .store
        .rows(LEGAL_ENTITIES)
        .map(|(_, le)| {
            let mut r = Row::new();
            r.insert(
                "DataArea".into(),
                json!(value_text(le.get("LegalEntityId")).to_lowercase()),
            );
            r.insert(
                "Name".into(),
                le.get("Name").cloned().unwrap_or(Value::Null),
            );
            r
        })
        .collect();
    let context = format!("{base}/data/$metadata#{COMPANIES}");
    answer(rows, key, &["DataArea"], seg, req, &context)
}

/// Only GET reads these.
fn read_only(req: &Request, what: &str) -> SimResult<()> {
    if req.method == "GET" {
        return Ok(());
    }
    Err(SimError::new(
        ErrorKind::MethodNotAllowed,
        "",
        format!(
            "The HTTP method '{}' is not supported on {what}; it is read-only.",
            req.method
        ),
    ))
}

/// The collection (with its query options), or the one row whose key fields match `key`
/// (compared ignoring case, as F&O compares keys).
fn answer(
    rows: Vec<Row>,
    key: Option<KeySpec>,
    key_fields: &[&str],
    seg: &str,
    req: &Request,
    context: &str,
) -> SimResult<Response> {
    let Some(key) = key else {
        return collection(rows, req, context);
    };
    let set = seg.split('(').next().unwrap_or(seg);
    let wanted = key_values(&key, key_fields, set)?;
    let row = rows
        .into_iter()
        .find(|r| {
            key_fields
                .iter()
                .zip(&wanted)
                .all(|(f, w)| value_text(r.get(f)).eq_ignore_ascii_case(w))
        })
        .ok_or_else(|| not_found(seg))?;
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(format!("{context}/$entity")));
    body.extend(row.into_map());
    Ok(json_response(&Value::Object(body)))
}

/// `POST {env}/data/DataManagementEntities/Microsoft.Dynamics.DataEntities.<action>`: the
/// environment's version strings.
pub(crate) fn version_action(
    world: &World,
    env: &str,
    base: &str,
    req: &Request,
    action: &str,
) -> SimResult<Response> {
    let fno = &world.fno[env];
    let value = match action {
        "GetApplicationVersion" => &fno.application_version,
        "GetApplicationBuildVersion" => &fno.application_build,
        "GetPlatformBuildVersion" => &fno.platform_build,
        _ => {
            return Err(not_found(&format!(
                "Microsoft.Dynamics.DataEntities.{action}"
            )))
        }
    };
    if req.method != "POST" {
        return Err(SimError::new(
            ErrorKind::MethodNotAllowed,
            "",
            format!(
                "The HTTP method '{}' is not supported; '{action}' is an action, called with POST.",
                req.method
            ),
        ));
    }
    Ok(json_response(&json!({
        "@odata.context": format!("{base}/data/$metadata#Edm.String"),
        "value": value,
    })))
}

fn not_found(segment: &str) -> SimError {
    SimError::not_found(format!("Resource not found for the segment '{segment}'."))
}

fn json_response(v: &Value) -> Response {
    Response::json(200, v).with_header(
        "content-type",
        "application/json; odata.metadata=minimal; charset=utf-8",
    )
}

/// The key values in `fields` order: `('X')` for a one-field key, or every field by name.
fn key_values(key: &KeySpec, fields: &[&str], set: &str) -> SimResult<Vec<String>> {
    let refused = || SimError::bad_request(format!("The key of '{set}' is {}.", fields.join(", ")));
    match key {
        KeySpec::Single(v) if fields.len() == 1 => Ok(vec![value_text(Some(v))]),
        KeySpec::Named(pairs) => fields
            .iter()
            .map(|f| {
                pairs
                    .iter()
                    .find(|(n, _)| n == f)
                    .map(|(_, v)| value_text(Some(v)))
                    .ok_or_else(refused)
            })
            .collect(),
        _ => Err(refused()),
    }
}

/// A collection answer with `$filter`, `$orderby`, `$skip`, `$top`, `$select` and `$count`.
fn collection(rows: Vec<Row>, req: &Request, context: &str) -> SimResult<Response> {
    let params = req.params();
    let o = odata::parse_options(&params, Dialect::FinOps)
        .map_err(|e| SimError::bad_request(e.to_string()))?;
    let rows = odata::filter_and_sort(rows, &o, Dialect::FinOps)
        .map_err(|e| SimError::bad_request(e.to_string()))?;
    let total = rows.len();
    let value: Vec<Value> = rows
        .into_iter()
        .skip(o.skip.unwrap_or(0))
        .take(o.top.unwrap_or(usize::MAX))
        .map(|r| match &o.select {
            Some(names) => Value::Object(
                names
                    .iter()
                    .map(|n| (n.clone(), r.get(n).cloned().unwrap_or(Value::Null)))
                    .collect(),
            ),
            None => r.into_value(),
        })
        .collect();
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(context));
    if o.count {
        body.insert("@odata.count".into(), json!(total));
    }
    body.insert("value".into(), Value::Array(value));
    Ok(json_response(&Value::Object(body)))
}

fn label_id(name: &str) -> String {
    format!("@DWSIM:{name}")
}

fn field_label_id(entity: &FnoEntity, field: &FnoField) -> String {
    label_id(&format!("{}_{}", entity.name, field.name))
}

fn row(v: Value) -> Row {
    match v {
        Value::Object(m) => m.into(),
        _ => Row::new(),
    }
}

/// A service entity F&O has besides the catalogue's data entities.
struct ServiceEntity {
    name: &'static str,
    set: &'static str,
    label: &'static str,
    /// String key fields.
    keys: &'static [&'static str],
    /// Actions bound to its collection.
    actions: &'static [&'static str],
}

const SERVICE_ENTITIES: [ServiceEntity; 2] = [
    ServiceEntity {
        name: "Company",
        set: "Companies",
        label: "Company",
        keys: &["DataArea"],
        actions: &[],
    },
    ServiceEntity {
        name: "DataManagementEntity",
        set: "DataManagementEntities",
        label: "Data management",
        keys: &["Name"],
        actions: &[
            "GetApplicationVersion",
            "GetPlatformBuildVersion",
            "GetApplicationBuildVersion",
        ],
    },
];

fn data_entities(world: &World) -> Vec<Row> {
    let service = SERVICE_ENTITIES.iter().map(|e| {
        row(json!({
            "Name": e.name,
            "PublicEntityName": e.name,
            "PublicCollectionName": e.set,
            "LabelId": label_id(e.name),
            "DataServiceEnabled": true,
            "DataManagementEnabled": false,
            "EntityCategory": "Reference",
            "IsReadOnly": true,
        }))
    });
    world
        .catalogue
        .fno_entities
        .values()
        .map(|e| {
            row(json!({
                "Name": e.entity_class,
                "PublicEntityName": e.name,
                "PublicCollectionName": e.entity_set,
                "LabelId": label_id(&e.name),
                "DataServiceEnabled": true,
                "DataManagementEnabled": true,
                "EntityCategory": "Master",
                "IsReadOnly": false,
            }))
        })
        .chain(service)
        .collect()
}

/// The X++ data type F&O reports for a field.
fn data_type(kind: FnoType) -> &'static str {
    match kind {
        FnoType::String => "String",
        FnoType::Int => "Int32",
        FnoType::Real => "Real",
        FnoType::Enum => "Enum",
        FnoType::Date => "Date",
    }
}

fn public_entities(world: &World) -> Vec<Row> {
    let catalogue = &world.catalogue;
    catalogue
        .fno_entities
        .values()
        .map(|e| {
            let properties: Vec<Value> = e
                .fields
                .iter()
                .map(|f| {
                    let is_key = e.keys.contains(&f.name);
                    json!({
                        "Name": f.name,
                        "TypeName": f.enum_name.clone().unwrap_or_else(|| data_type(f.kind).to_string()),
                        "DataType": data_type(f.kind),
                        "LabelId": field_label_id(e, f),
                        "IsKey": is_key,
                        "IsMandatory": is_key || f.mandatory,
                        "ConfigurationEnabled": true,
                        "AllowEdit": !is_key,
                        "AllowEditOnCreate": true,
                        "IsDimension": false,
                        "DimensionRelation": "",
                        "IsDynamicDimension": false,
                        "DimensionLegalEntityProperty": "",
                        "DimensionTypeProperty": "",
                    })
                })
                .collect();
            let navigation: Vec<Value> = e
                .relations
                .iter()
                .filter_map(|r| catalogue.fno_entities.get(&r.entity_set).map(|t| (r, t)))
                .map(|(r, t)| {
                    json!({
                        "Name": t.name,
                        "RelatedEntity": t.name,
                        "RelatedRelationName": "",
                        "Cardinality": "Single",
                        "Constraints": [{
                            "@odata.type": CONSTRAINT_TYPE,
                            "Property": r.field,
                            "ReferencedProperty": r.target_field,
                        }],
                    })
                })
                .collect();
            row(json!({
                "Name": e.name,
                "EntitySetName": e.entity_set,
                "LabelId": label_id(&e.name),
                "IsReadOnly": false,
                "ConfigurationEnabled": true,
                "Properties": properties,
                "NavigationProperties": navigation,
                "PropertyGroups": [],
                "Actions": [],
            }))
        })
        .chain(SERVICE_ENTITIES.iter().map(service_public_entity))
        .collect()
}

/// A service entity as `PublicEntities` lists it: string keys, read-only, its bound actions.
fn service_public_entity(entity: &ServiceEntity) -> Row {
    let ServiceEntity {
        name,
        set,
        keys,
        actions,
        ..
    } = entity;
    let properties: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "Name": k, "TypeName": "String", "DataType": "String",
                "LabelId": label_id(&format!("{name}_{k}")), "IsKey": true, "IsMandatory": true,
                "ConfigurationEnabled": true, "AllowEdit": false, "AllowEditOnCreate": false,
                "IsDimension": false, "DimensionRelation": "", "IsDynamicDimension": false,
                "DimensionLegalEntityProperty": "", "DimensionTypeProperty": "",
            })
        })
        .collect();
    let actions: Vec<Value> = actions
        .iter()
        .map(|a| {
            json!({
                "Name": a,
                "Parameters": [],
                "ReturnType": {"Name": "String", "Type": "Edm.String", "IsCollection": false},
                "FieldsMapping": {},
            })
        })
        .collect();
    row(json!({
        "Name": name,
        "EntitySetName": set,
        "LabelId": label_id(name),
        "IsReadOnly": true,
        "ConfigurationEnabled": true,
        "Properties": properties,
        "NavigationProperties": [],
        "PropertyGroups": [],
        "Actions": actions,
    }))
}

/// Every enum a field uses, once, with its members in declaration order.
fn enums(world: &World) -> BTreeMap<&str, &[String]> {
    world
        .catalogue
        .fno_entities
        .values()
        .flat_map(|e| &e.fields)
        .filter_map(|f| f.enum_name.as_deref().map(|n| (n, f.values.as_slice())))
        .collect()
}

fn public_enumerations(world: &World) -> Vec<Row> {
    enums(world)
        .into_iter()
        .map(|(name, values)| {
            let members: Vec<Value> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    json!({"Name": v, "Value": i, "LabelId": label_id(&format!("{name}_{v}")), "ConfigurationEnabled": true})
                })
                .collect();
            row(json!({"Name": name, "LabelId": label_id(name), "Members": members}))
        })
        .collect()
}

/// Every label id the other collections hand out, with its text.
fn labels(world: &World) -> Vec<Row> {
    let mut out = Vec::new();
    let mut push = |id: String, text: &str| {
        out.push(row(json!({"Id": id, "Language": LANGUAGE, "Value": text})));
    };
    for e in world.catalogue.fno_entities.values() {
        push(label_id(&e.name), &e.label);
        for f in &e.fields {
            push(field_label_id(e, f), &f.label);
        }
    }
    for e in &SERVICE_ENTITIES {
        push(label_id(e.name), e.label);
        for k in e.keys {
            push(label_id(&format!("{}_{k}", e.name)), k);
        }
    }
    for (name, values) in enums(world) {
        push(label_id(name), name);
        for v in values {
            push(label_id(&format!("{name}_{v}")), v);
        }
    }
    out
}
