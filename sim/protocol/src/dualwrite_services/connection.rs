//! `DualWriteConnectionService`: the health check, the link, the connection and its reset.

use super::{connection_json, Operation};
use dwsim_model::error::SimResult;
use dwsim_model::World;
use serde::Deserialize;
use serde_json::{json, Value};

/// `getHealthCheck`: the prerequisite checks against a Dataverse environment.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct GetHealthCheck {
    dataverse_environment: String,
}

impl Operation for GetHealthCheck {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        let checks = world.health_check(env, &self.dataverse_environment)?;
        Ok(json!({"passed": checks.iter().all(|c| c.passed), "checks": checks}))
    }
}

/// `link`: links to a Dataverse environment with these legal entities.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Link {
    dataverse_environment: String,
    legal_entities: Vec<String>,
}

impl Operation for Link {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        world.link(env, &self.dataverse_environment, &self.legal_entities)?;
        Ok(connection_json(world, env))
    }
}

/// `getConnection`: the connection, or `linked: false`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetConnection {}

impl Operation for GetConnection {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        Ok(connection_json(world, env))
    }
}

/// `resetLink`: clears the connection; every map must be stopped unless `force`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ResetLink {
    #[serde(default)]
    force: bool,
}

impl Operation for ResetLink {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        world.reset_link(env, self.force)?;
        Ok(connection_json(world, env))
    }
}
