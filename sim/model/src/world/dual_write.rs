//! The world's dual-write verbs. Each builds the runtime of one linked F&O environment
//! ([`DualWrite`], over its connection and the two stores) and delegates to it; a write
//! to an environment that is not linked is a plain write to its product.

use super::World;
use crate::dataverse::WriteContext;
use crate::dualwrite::customize;
use crate::dualwrite::initial_sync;
use crate::dualwrite::link::{self, check_companies, health_check_failed};
use crate::dualwrite::live_sync::fno_entity;
use crate::dualwrite::transform::Partition;
use crate::dualwrite::{Connection, DualWrite, Execution, HealthCheck, MapRun, MapState, Side};
use crate::error::{SimError, SimResult};
use crate::schema::{FieldMap, TableMap};
use crate::store::Row;
use std::collections::BTreeSet;
use std::sync::Arc;

const NOT_LINKED: &str = "Dual-write is not linked for this environment.";

impl World {
    /// The dual-write runtime of a linked F&O environment, over its two stores: where the
    /// map verbs live (`world.dual_write(env)?.run(&maps)`). An environment that is not
    /// linked is refused in the words the workspace uses.
    pub fn dual_write(&mut self, fno_env: &str) -> SimResult<DualWrite<'_>> {
        let World {
            catalogue,
            config,
            in_flight,
            ids,
            clock,
            fno,
            dataverse,
            connections,
            ..
        } = self;
        let fno = fno
            .get_mut(fno_env)
            .ok_or_else(|| SimError::not_found(format!("Environment {fno_env} does not exist.")))?;
        let conn = connections.get_mut(fno_env).ok_or_else(|| {
            SimError::conflict(format!(
                "{NOT_LINKED} Link to a Dataverse environment first."
            ))
        })?;
        let dv = dataverse
            .get_mut(&conn.dataverse)
            .ok_or_else(|| SimError::not_found(conn.dataverse.clone()))?;
        Ok(DualWrite {
            catalogue,
            settings: &config.dual_write,
            faults: &mut config.faults,
            in_flight,
            ids,
            clock,
            fno,
            dv,
            conn,
        })
    }

    /// The dual-write connection of an F&O environment, once linked.
    pub fn connection_of(&self, fno_env: &str) -> Option<&Connection> {
        self.connections.get(fno_env)
    }

    /// Which Dataverse org an F&O environment is dual-write linked to.
    pub fn linked_dataverse(&self, fno_env: &str) -> Option<String> {
        self.connections.get(fno_env).map(|c| c.dataverse.clone())
    }

    /// The F&O environment dual-write links to a Dataverse org.
    pub fn linked_fno(&self, org: &str) -> Option<String> {
        self.connections
            .iter()
            .find(|(_, c)| c.dataverse == org)
            .map(|(n, _)| n.clone())
    }

    /// The systemuserid dual-write writes to a Dataverse org as.
    pub fn dual_write_user(&self, org: &str) -> String {
        self.dataverse
            .get(org)
            .map(|d| d.dual_write_user())
            .unwrap_or_default()
    }

    /// Creates the dual-write application users in Dataverse if they are missing.
    pub fn ensure_dual_write_app_users(&mut self, org: &str) -> SimResult<()> {
        let dv = self
            .dataverse
            .get_mut(org)
            .ok_or_else(|| SimError::not_found(org.to_string()))?;
        dv.ensure_dual_write_app_users(&mut self.ids);
        Ok(())
    }

    /// The partitions a map syncs for these companies.
    pub fn partitions(&self, org: &str, map: &TableMap, companies: &[String]) -> Vec<Partition> {
        initial_sync::partitions(&self.catalogue, self.dataverse.get(org), map, companies)
    }

    /// Sorts runs so that each map comes after the maps it depends on.
    pub fn order_upstream_first(&self, runs: Vec<MapRun>) -> Vec<MapRun> {
        self.catalogue.order_upstream_first(runs)
    }

    /// The prerequisite health check the link wizard runs.
    pub fn health_check(&self, fno_env: &str, org: &str) -> SimResult<Vec<HealthCheck>> {
        let fno = self
            .fno
            .get(fno_env)
            .ok_or_else(|| SimError::not_found(format!("Environment {fno_env} does not exist.")))?;
        let dv = self.dataverse.get(org).ok_or_else(|| {
            SimError::not_found(format!("Dataverse environment {org} does not exist."))
        })?;
        Ok(link::health_check(fno, dv))
    }

    /// Links F&O to Dataverse with these legal entities: 1:1, only when every health check
    /// passes, and only when the companies' names are unique and not blank.
    pub fn link(&mut self, fno_env: &str, org: &str, legal_entities: &[String]) -> SimResult<()> {
        let checks = self.health_check(fno_env, org)?;
        if let Some(existing) = self.linked_dataverse(fno_env) {
            return Err(SimError::conflict(format!(
                "This finance and operations environment is already linked to Dataverse environment {existing}. One finance and operations environment links to one Dataverse environment."
            )));
        }
        if let Some(other) = self.linked_fno(org) {
            return Err(SimError::conflict(format!(
                "Dataverse environment {org} is already linked to finance and operations environment {other}. One finance and operations environment links to one Dataverse environment."
            )));
        }
        if let Some(refusal) = health_check_failed(&checks) {
            self.connections.remove(fno_env);
            return Err(refusal);
        }
        check_companies(&self.fno[fno_env], self.dataverse.get(org), legal_entities)?;
        let has_maps = self
            .dataverse
            .get(org)
            .is_some_and(|d| d.has_solution("msdyn_Dynamics365FinanceExtendedMaps"));
        let connection = Connection::new(&self.catalogue, org, has_maps, checks, self.clock.now());
        self.connections.insert(fno_env.to_string(), connection);
        let mut dw = self.dual_write(fno_env)?;
        for code in legal_entities {
            dw.register_company(code)?;
        }
        Ok(())
    }

    /// Reset link: all maps must be stopped unless forced. Clears the connection.
    pub fn reset_link(&mut self, fno_env: &str, force: bool) -> SimResult<()> {
        let dw = self.dual_write(fno_env)?;
        if !force
            && dw
                .connection()
                .maps
                .values()
                .any(|m| m.state != MapState::NotRunning)
        {
            return Err(SimError::conflict(
                "You must stop all dual-write maps before you use the Reset link button.",
            ));
        }
        self.connections.remove(fno_env);
        Ok(())
    }

    /// Initial sync of one map for these companies.
    pub fn initial_sync(
        &mut self,
        fno_env: &str,
        map_id: &str,
        master: Side,
        companies: &[String],
    ) -> SimResult<Execution> {
        self.dual_write(fno_env)?
            .initial_sync(map_id, master, companies, &BTreeSet::new())
    }

    /// Replaces a map's field mappings (see [`customize::customized`]); the world keeps the
    /// customized map, and it replaces the catalogue's definition.
    pub fn customize_map(
        &mut self,
        fno_env: &str,
        map_id: &str,
        fields: Vec<FieldMap>,
        publisher: &str,
        version: &str,
    ) -> SimResult<TableMap> {
        let connection = self
            .connections
            .get(fno_env)
            .ok_or_else(|| SimError::conflict(NOT_LINKED))?;
        let map = customize::customized(
            &self.catalogue,
            connection,
            map_id,
            fields,
            publisher,
            version,
        )?;
        self.custom_maps.insert(map_id.to_string(), map.clone());
        self.apply_custom_maps();
        Ok(map)
    }

    /// Puts the world's edited maps into its catalogue (after building or importing it),
    /// and declares the stores' indexes for the maps as they now are.
    pub fn apply_custom_maps(&mut self) {
        if !self.custom_maps.is_empty() {
            let catalogue = Arc::make_mut(&mut self.catalogue);
            for (id, map) in &self.custom_maps {
                if let Some(slot) = catalogue.maps.iter_mut().find(|m| &m.id == id) {
                    *slot = map.clone();
                }
            }
        }
        self.declare_indexes();
    }

    /// Declares every store's indexes (idempotent): after an import, whose stores come
    /// without them, and after a map changes the keys it looks rows up by.
    pub fn declare_indexes(&mut self) {
        let catalogue = self.catalogue.clone();
        for env in self.fno.values_mut() {
            env.declare_indexes(&catalogue);
        }
        for env in self.dataverse.values_mut() {
            env.declare_indexes(&catalogue);
        }
    }

    /// F&O OData create, dual-written when the environment is linked.
    pub fn fno_create(&mut self, fno_env: &str, entity_set: &str, row: Row) -> SimResult<Row> {
        if self.connections.contains_key(fno_env) {
            return self.dual_write(fno_env)?.fno_create(entity_set, row);
        }
        let catalogue = self.catalogue.clone();
        let entity = fno_entity(&catalogue, entity_set)?;
        let now = self.clock.now();
        self.fno_env_mut(fno_env)?
            .insert(&catalogue, entity, row, now)
    }

    /// F&O OData update of the row with store id `id`.
    pub fn fno_update(
        &mut self,
        fno_env: &str,
        entity_set: &str,
        id: &str,
        changes: Row,
    ) -> SimResult<Row> {
        if self.connections.contains_key(fno_env) {
            return self
                .dual_write(fno_env)?
                .fno_update(entity_set, id, changes);
        }
        let catalogue = self.catalogue.clone();
        let entity = fno_entity(&catalogue, entity_set)?;
        let now = self.clock.now();
        self.fno_env_mut(fno_env)?
            .update(&catalogue, entity, id, &changes, now)
    }

    /// F&O OData delete.
    pub fn fno_delete(&mut self, fno_env: &str, entity_set: &str, id: &str) -> SimResult<()> {
        if self.connections.contains_key(fno_env) {
            return self.dual_write(fno_env)?.fno_delete(entity_set, id);
        }
        let catalogue = self.catalogue.clone();
        let entity = fno_entity(&catalogue, entity_set)?;
        self.fno_env_mut(fno_env)?.delete(entity, id).map(|_| ())
    }

    fn fno_env_mut(&mut self, fno_env: &str) -> SimResult<&mut crate::fno::FnoEnv> {
        self.fno
            .get_mut(fno_env)
            .ok_or_else(|| SimError::not_found(fno_env.to_string()))
    }

    /// Dataverse create as `caller` (a systemuserid). Answers the new id and row.
    pub fn dv_create(
        &mut self,
        org: &str,
        table: &str,
        attrs: Row,
        caller: &str,
    ) -> SimResult<(String, Row)> {
        if let Some(fno_env) = self.linked_fno(org) {
            return self.dual_write(&fno_env)?.dv_create(table, attrs, caller);
        }
        self.dv_write(org, caller, |dv, cx| dv.create(cx, table, attrs))
    }

    /// Dataverse update.
    pub fn dv_update(
        &mut self,
        org: &str,
        table: &str,
        id: &str,
        attrs: Row,
        caller: &str,
    ) -> SimResult<Row> {
        if let Some(fno_env) = self.linked_fno(org) {
            return self
                .dual_write(&fno_env)?
                .dv_update(table, id, attrs, caller);
        }
        self.dv_write(org, caller, |dv, cx| dv.update(cx, table, id, attrs))
    }

    /// Dataverse delete.
    pub fn dv_delete(&mut self, org: &str, table: &str, id: &str) -> SimResult<()> {
        if let Some(fno_env) = self.linked_fno(org) {
            return self.dual_write(&fno_env)?.dv_delete(table, id);
        }
        self.dv_write(org, "", |dv, cx| {
            dv.delete(cx.catalogue, table, id).map(|_| ())
        })
    }

    /// A write to a Dataverse org that is not linked.
    fn dv_write<T>(
        &mut self,
        org: &str,
        caller: &str,
        f: impl FnOnce(&mut crate::dataverse::DvEnv, &mut WriteContext) -> SimResult<T>,
    ) -> SimResult<T> {
        let catalogue = self.catalogue.clone();
        let now = self.clock.now();
        let dv = self
            .dataverse
            .get_mut(org)
            .ok_or_else(|| SimError::not_found(org.to_string()))?;
        let mut cx = WriteContext {
            catalogue: &catalogue,
            ids: &mut self.ids,
            now,
            caller: caller.to_string(),
            owner: None,
        };
        f(dv, &mut cx)
    }
}
