//! `DualWriteLegalEntityService`: the legal entities of the environment and of the
//! connection.

use super::{connection_json, Operation};
use dwsim_model::error::SimResult;
use dwsim_model::World;
use serde::Deserialize;
use serde_json::{json, Value};

/// `getLegalEntities`: every company, and those in the connection.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetLegalEntities {}

impl Operation for GetLegalEntities {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        let connected = world
            .connection_of(env)
            .map(|c| c.legal_entities.clone())
            .unwrap_or_default();
        Ok(json!({"companies": world.fno[env].companies(), "connected": connected}))
    }
}

/// `addLegalEntities`: adds companies; running maps do initial writes for them unless
/// `skipInitialWrites`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct AddLegalEntities {
    legal_entities: Vec<String>,
    #[serde(default)]
    skip_initial_writes: bool,
}

impl Operation for AddLegalEntities {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        let executions = world
            .dual_write(env)?
            .add_legal_entities(&self.legal_entities, self.skip_initial_writes)?;
        Ok(json!({"connection": connection_json(world, env), "executions": executions}))
    }
}

/// `removeLegalEntity`: takes one company out of the connection.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RemoveLegalEntity {
    legal_entity: String,
}

impl Operation for RemoveLegalEntity {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        world
            .dual_write(env)?
            .remove_legal_entity(&self.legal_entity)?;
        Ok(connection_json(world, env))
    }
}
