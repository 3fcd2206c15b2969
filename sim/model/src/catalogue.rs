//! The product definitions a world is built from, loaded from the JSON files in
//! `sim/model/data/` (embedded at compile time) and, optionally, a partner's own folder.

use crate::error::{SimError, SimResult};
use crate::schema::{DvTable, FnoEntity, SolutionDef, TableMap};
use crate::seed::SeedData;
use std::collections::BTreeMap;
use std::path::Path;

const DV_TABLES: &str = include_str!("../data/dataverse-tables.json");
const FNO_ENTITIES: &str = include_str!("../data/fno-entities.json");
const TABLE_MAPS: &str = include_str!("../data/table-maps.json");
const SOLUTIONS: &str = include_str!("../data/solutions.json");
const DEMO_DATA: &str = include_str!("../data/demo-data.json");

/// Every definition a world is built from, by the names the products use.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// Dataverse tables by logical name.
    pub dv_tables: BTreeMap<String, DvTable>,
    /// F&O data entities by entity set name (case-sensitive, as in URLs).
    pub fno_entities: BTreeMap<String, FnoEntity>,
    /// Table maps in catalogue order (upstream maps first).
    pub maps: Vec<TableMap>,
    /// The solutions an environment can have installed, each in its install group.
    pub solutions: Vec<SolutionDef>,
    /// The demo data set a "with data" F&O deployment and an existing Dataverse start from.
    pub demo: SeedData,
}

/// The process's catalogue: the built-in one unless the CLI installed a partner's.
static SHARED: std::sync::OnceLock<SimResult<std::sync::Arc<Catalogue>>> =
    std::sync::OnceLock::new();

fn parse<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> SimResult<T> {
    serde_json::from_str(text).map_err(|e| SimError::bad_request(format!("{name}: {e}")))
}

impl Catalogue {
    /// The definitions shipped with dwsim, parsed once per process and shared: every world
    /// built on them holds the same copy.
    pub fn shared() -> SimResult<std::sync::Arc<Catalogue>> {
        SHARED
            .get_or_init(|| Catalogue::builtin().map(std::sync::Arc::new))
            .clone()
    }

    /// Makes `catalogue` the one [`Catalogue::shared`] answers for the rest of the process
    /// (the CLI's `--catalogue DIR`); refused once anything has asked for the shared one.
    pub fn install(catalogue: Catalogue) -> SimResult<()> {
        SHARED
            .set(Ok(std::sync::Arc::new(catalogue)))
            .map_err(|_| SimError::bad_request("the shared catalogue is already in use"))
    }

    /// The built-in catalogue with a partner's definitions and data from `dir` merged in.
    pub fn with_partner_dir(dir: &Path) -> SimResult<Catalogue> {
        let mut catalogue = Catalogue::builtin()?;
        catalogue.extend_from_dir(dir)?;
        Ok(catalogue)
    }

    /// The definitions shipped with dwsim, freshly parsed.
    pub fn builtin() -> SimResult<Catalogue> {
        let mut tables: Vec<DvTable> = parse("dataverse-tables.json", DV_TABLES)?;
        tables.iter_mut().for_each(DvTable::complete);
        let entities: Vec<FnoEntity> = parse("fno-entities.json", FNO_ENTITIES)?;
        let catalogue = Catalogue {
            dv_tables: tables
                .into_iter()
                .map(|t| (t.logical_name.clone(), t))
                .collect(),
            fno_entities: entities
                .into_iter()
                .map(|e| (e.entity_set.clone(), e))
                .collect(),
            maps: parse("table-maps.json", TABLE_MAPS)?,
            solutions: parse("solutions.json", SOLUTIONS)?,
            demo: parse("demo-data.json", DEMO_DATA)?,
        };
        catalogue.check()?;
        Ok(catalogue)
    }

    /// Adds a partner's definitions from `dir`, each file in the format of the built-in one
    /// of the same name (any of `dataverse-tables.json`, `fno-entities.json`,
    /// `table-maps.json`, `solutions.json`, `demo-data.json`): a table, entity, map or
    /// solution with an existing name replaces it; the data set is merged (see
    /// [`SeedData::merge`]). Unknown fields are refused with the file named.
    pub fn extend_from_dir(&mut self, dir: &Path) -> SimResult<()> {
        if !dir.is_dir() {
            return Err(SimError::bad_request(format!(
                "{}: not a catalogue directory",
                dir.display()
            )));
        }
        let read = |name: &str| -> SimResult<Option<String>> {
            let path = dir.join(name);
            if !path.exists() {
                return Ok(None);
            }
            std::fs::read_to_string(&path)
                .map(Some)
                .map_err(|e| SimError::bad_request(format!("{}: {e}", path.display())))
        };
        if let Some(text) = read("dataverse-tables.json")? {
            for mut t in parse::<Vec<DvTable>>("dataverse-tables.json", &text)? {
                t.complete();
                self.dv_tables.insert(t.logical_name.clone(), t);
            }
        }
        if let Some(text) = read("fno-entities.json")? {
            for e in parse::<Vec<FnoEntity>>("fno-entities.json", &text)? {
                self.fno_entities.insert(e.entity_set.clone(), e);
            }
        }
        if let Some(text) = read("table-maps.json")? {
            for m in parse::<Vec<TableMap>>("table-maps.json", &text)? {
                match self.maps.iter_mut().find(|x| x.id == m.id) {
                    Some(slot) => *slot = m,
                    None => self.maps.push(m),
                }
            }
        }
        if let Some(text) = read("solutions.json")? {
            for s in parse::<Vec<SolutionDef>>("solutions.json", &text)? {
                match self
                    .solutions
                    .iter_mut()
                    .find(|x| x.uniquename == s.uniquename)
                {
                    Some(slot) => *slot = s,
                    None => self.solutions.push(s),
                }
            }
        }
        if let Some(text) = read("demo-data.json")? {
            let data = parse::<SeedData>("demo-data.json", &text)?;
            self.demo.merge(data);
        }
        self.check()
    }

    /// Cross-references between the files must hold, or the world would fail later.
    fn check(&self) -> SimResult<()> {
        for m in &self.maps {
            let entity = self.fno_entities.get(&m.fno_entity).ok_or_else(|| {
                SimError::bad_request(format!("map {}: unknown F&O entity {}", m.id, m.fno_entity))
            })?;
            let table = self.dv_tables.get(&m.dv_table).ok_or_else(|| {
                SimError::bad_request(format!(
                    "map {}: unknown Dataverse table {}",
                    m.id, m.dv_table
                ))
            })?;
            for f in &m.fields {
                if let Some(name) = &f.fno {
                    if entity.field(name).is_none() {
                        return Err(SimError::bad_request(format!(
                            "map {}: {} has no field {name}",
                            m.id, m.fno_entity
                        )));
                    }
                }
                if let Some(dv) = &f.dv {
                    let column = dv.split('.').next().unwrap_or(dv);
                    if table.column(column).is_none() {
                        return Err(SimError::bad_request(format!(
                            "map {}: {} has no column {column}",
                            m.id, m.dv_table
                        )));
                    }
                }
            }
            for d in &m.depends_on {
                if !self.maps.iter().any(|x| &x.id == d) {
                    return Err(SimError::bad_request(format!(
                        "map {}: depends on unknown map {d}",
                        m.id
                    )));
                }
            }
        }
        Ok(())
    }

    /// The table map with this id (`customersv3-accounts`).
    pub fn map(&self, id: &str) -> Option<&TableMap> {
        self.maps.iter().find(|m| m.id == id)
    }

    /// The Dataverse table an entity set (`accounts`) serves.
    pub fn dv_table_by_set(&self, entity_set: &str) -> Option<&DvTable> {
        self.dv_tables.values().find(|t| t.entity_set == entity_set)
    }

    /// `id` and the maps it depends on, upstream first, each once (the Run dialog's list).
    pub fn related_maps(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.visit_dependencies(id, &mut out);
        out
    }

    fn visit_dependencies(&self, id: &str, out: &mut Vec<String>) {
        if out.iter().any(|x| x == id) {
            return;
        }
        if let Some(m) = self.map(id) {
            for d in &m.depends_on {
                self.visit_dependencies(d, out);
            }
        }
        if !out.iter().any(|x| x == id) {
            out.push(id.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_loads_and_orders_related_maps_upstream_first() {
        let c = Catalogue::builtin().expect("catalogue");
        assert_eq!(
            c.related_maps("customersv3-accounts"),
            vec![
                "legalentities-companies",
                "currencies",
                "paymentterms",
                "customergroups",
                "customersv3-accounts"
            ]
        );
        assert_eq!(
            c.related_maps("vendorsv2"),
            vec![
                "legalentities-companies",
                "currencies",
                "vendorgroups",
                "vendorsv2"
            ]
        );
    }
}
