//! The bulk operations bound to an entity set: `CreateMultiple`, `UpdateMultiple` and
//! `UpsertMultiple` (`POST accounts/Microsoft.Dynamics.CRM.CreateMultiple` with
//! `{"Targets": [...]}`). Every target names its type with `@odata.type`; the operation is one
//! transaction, so a failing target leaves nothing written. `CreateMultiple` answers the new
//! ids; the other two answer 204, as the Web API reference says.

use super::{attributes, missing, resolve_key, Call};
use crate::odata::{self, KeySpec};
use crate::request::Response;
use dwsim_model::error::{ErrorKind, SimError, SimResult};
use dwsim_model::schema::DvTable;
use dwsim_model::World;
use serde_json::{json, Map, Value};

/// The bulk actions, by the name after the namespace.
pub(super) const ACTIONS: [&str; 3] = ["CreateMultiple", "UpdateMultiple", "UpsertMultiple"];

/// Runs `action` (one of [`ACTIONS`]) over the request's targets.
pub(super) fn run(
    world: &mut World,
    call: &Call,
    table: &DvTable,
    action: &str,
) -> SimResult<Response> {
    let targets = targets(table, &call.req.body)?;
    let ids = world.atomically(|world| {
        targets
            .into_iter()
            .map(|target| match action {
                "CreateMultiple" => create(world, call, table, target),
                "UpdateMultiple" => update(world, call, table, target),
                _ => upsert(world, call, table, target),
            })
            .collect::<SimResult<Vec<String>>>()
    })?;
    if action == "CreateMultiple" {
        return Ok(Response::json(
            200,
            &json!({
                "@odata.context": format!("{}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse", call.base),
                "Ids": ids,
            }),
        ));
    }
    Ok(Response::new(204))
}

fn bad(message: String) -> SimError {
    SimError::new(ErrorKind::BadRequest, "0x80048d19", message)
}

/// The `Targets` of the body, each an object of this table's type.
fn targets(table: &DvTable, body: &[u8]) -> SimResult<Vec<Map<String, Value>>> {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad(
            "The request body must be a JSON object with a 'Targets' collection.".into(),
        ));
    };
    let Some(Value::Array(targets)) = body.remove("Targets") else {
        return Err(bad(
            "The parameter 'Targets' is required and must be a collection of records.".into(),
        ));
    };
    if let Some(other) = body.keys().find(|k| !k.starts_with('@')) {
        return Err(bad(format!(
            "The parameter '{other}' is not a parameter of this action."
        )));
    }
    let wanted = format!("Microsoft.Dynamics.CRM.{}", table.logical_name);
    targets
        .into_iter()
        .map(|t| {
            let Value::Object(t) = t else {
                return Err(bad("Every item of 'Targets' must be a record.".into()));
            };
            match t.get("@odata.type").and_then(Value::as_str) {
                Some(ty) if ty.trim_start_matches('#') == wanted => Ok(t),
                Some(ty) => Err(bad(format!(
                    "The type '{ty}' of an item of 'Targets' is not '{wanted}', the type of the entity set."
                ))),
                None => Err(bad(
                    "The '@odata.type' annotation is required on every item of 'Targets'.".into(),
                )),
            }
        })
        .collect()
}

fn create(
    world: &mut World,
    call: &Call,
    table: &DvTable,
    target: Map<String, Value>,
) -> SimResult<String> {
    let attrs = attributes(world, call, table, target)?;
    Ok(world
        .dv_create(&call.org, &table.logical_name, attrs, &call.caller)?
        .0)
}

/// The key a target names: its `@odata.id` (`accounts(accountnumber='A1')`) or its primary id.
fn key_of(table: &DvTable, target: &Map<String, Value>) -> SimResult<Option<KeySpec>> {
    if let Some(id) = target.get("@odata.id").and_then(Value::as_str) {
        let segment = id.rsplit('/').next().unwrap_or(id);
        let (set, key) = odata::parse_segment(segment).map_err(|e| bad(e.to_string()))?;
        if set != table.entity_set {
            return Err(bad(format!(
                "The '@odata.id' '{id}' is not a record of '{}'.",
                table.entity_set
            )));
        }
        return Ok(key);
    }
    Ok(target
        .get(&table.primary_id)
        .filter(|v| v.is_string())
        .map(|v| KeySpec::Single(v.clone())))
}

fn update(
    world: &mut World,
    call: &Call,
    table: &DvTable,
    target: Map<String, Value>,
) -> SimResult<String> {
    let key = key_of(table, &target)?.ok_or_else(|| {
        bad(format!(
            "Every item of 'Targets' must carry its '{}' for UpdateMultiple.",
            table.primary_id
        ))
    })?;
    let id = resolve_key(world, &call.org, table, &key)?.ok_or_else(|| missing(table, &key))?;
    let mut attrs = attributes(world, call, table, target)?;
    attrs.remove(&table.primary_id);
    world.dv_update(&call.org, &table.logical_name, &id, attrs, &call.caller)?;
    Ok(id)
}

fn upsert(
    world: &mut World,
    call: &Call,
    table: &DvTable,
    target: Map<String, Value>,
) -> SimResult<String> {
    let key = key_of(table, &target)?;
    let existing = match &key {
        Some(key) => resolve_key(world, &call.org, table, key)?,
        None => None,
    };
    let mut attrs = attributes(world, call, table, target)?;
    if let Some(id) = existing {
        attrs.remove(&table.primary_id);
        if let Some(KeySpec::Named(pairs)) = &key {
            for (k, _) in pairs {
                attrs.remove(k);
            }
        }
        world.dv_update(&call.org, &table.logical_name, &id, attrs, &call.caller)?;
        return Ok(id);
    }
    match key {
        Some(KeySpec::Single(v)) => {
            attrs.insert(table.primary_id.as_str().into(), v);
        }
        Some(KeySpec::Named(pairs)) => attrs.extend(pairs),
        None => {}
    }
    Ok(world
        .dv_create(&call.org, &table.logical_name, attrs, &call.caller)?
        .0)
}
