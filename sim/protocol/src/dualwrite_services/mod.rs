//! The dual-write administration as F&O JSON custom services,
//! `{env}/api/services/DualWriteServices/{Service}/{operation}`: one typed argument struct
//! per operation, each with its own `apply` (as mini-redis does one file per command).
//! Arguments are read strictly: a field the operation does not take is refused with 400
//! and named, so a misspelt `initalSync` cannot silently mean the default.
//!
//! [`SERVICES`] lists what `GET` on the group and on a service answer, and [`call`]
//! dispatches a `POST`; both come from the one table in `services!`, so they cannot drift.

mod connection;
mod legal_entities;
mod maps;

use dwsim_model::error::{SimError, SimResult};
use dwsim_model::World;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The service group every operation lives in.
pub(crate) const GROUP: &str = "DualWriteServices";

/// One operation: its arguments, read from the request body, and what it does.
trait Operation: DeserializeOwned {
    /// Runs the operation on the F&O environment `env`; answers the response body.
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value>;
}

/// Reads an operation's arguments and runs it. A body that does not fit the operation's
/// arguments (an unknown field, a wrong type, a missing field) is a 400 naming it.
fn run<O: Operation>(
    world: &mut World,
    env: &str,
    op: &str,
    args: Map<String, Value>,
) -> SimResult<Value> {
    let parsed: O = serde_json::from_value(Value::Object(args)).map_err(|e| {
        SimError::bad_request(format!(
            "The parameters of operation {op} are not valid: {e}."
        ))
    })?;
    parsed.apply(world, env)
}

macro_rules! services {
    ($($service:literal => { $($op:literal => $ty:ty),+ $(,)? }),+ $(,)?) => {
        /// Each service of the group with its operations, in the order GET lists them.
        pub(crate) const SERVICES: &[(&str, &[&str])] = &[$(($service, &[$($op),+])),+];

        /// Runs `service`/`op` with the arguments of the request body; `None` when the
        /// service has no such operation.
        pub(crate) fn call(
            world: &mut World,
            env: &str,
            service: &str,
            op: &str,
            args: Map<String, Value>,
        ) -> Option<SimResult<Value>> {
            match (service, op) {
                $($(($service, $op) => Some(run::<$ty>(world, env, op, args)),)+)+
                _ => None,
            }
        }
    };
}

services! {
    "DualWriteConnectionService" => {
        "getHealthCheck" => connection::GetHealthCheck,
        "link" => connection::Link,
        "getConnection" => connection::GetConnection,
        "resetLink" => connection::ResetLink,
    },
    "DualWriteLegalEntityService" => {
        "getLegalEntities" => legal_entities::GetLegalEntities,
        "addLegalEntities" => legal_entities::AddLegalEntities,
        "removeLegalEntity" => legal_entities::RemoveLegalEntity,
    },
    "DualWriteMapService" => {
        "getMaps" => maps::GetMaps,
        "getRelatedMaps" => maps::GetRelatedMaps,
        "runMaps" => maps::RunMaps,
        "pauseMap" => maps::PauseMap,
        "resumeMap" => maps::ResumeMap,
        "stopMap" => maps::StopMap,
        "getInitialSyncDetails" => maps::GetInitialSyncDetails,
        "getQueuedRecords" => maps::GetQueuedRecords,
        "updateMapFields" => maps::UpdateMapFields,
        "rerunExecution" => maps::RerunExecution,
        "retryCatchUpErrors" => maps::RetryCatchUpErrors,
        "setAlertRules" => maps::SetAlertRules,
        "getAlerts" => maps::GetAlerts,
    },
}

/// The connection as `getConnection` and the link operations answer it.
fn connection_json(world: &World, env: &str) -> Value {
    match world.connection_of(env) {
        None => serde_json::json!({"linked": false}),
        Some(c) => serde_json::json!({
            "linked": true,
            "dataverseEnvironment": c.dataverse,
            "legalEntities": c.legal_entities,
            "healthCheck": c.health_check,
            "linkedAt": c.linked_at.iso(),
        }),
    }
}
