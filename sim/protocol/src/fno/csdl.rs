//! F&O's CSDL `$metadata`, written with an XML writer (every name and value escaped): an entity
//! type per data entity with its keys, fields (enums as enum types) and navigation
//! properties, the `Companies` entity, `DataManagementEntities` with its bound version actions,
//! and the `Resources` container.

use super::NAMESPACE;
use crate::xml::{self, key as keys, property, Xml};
use dwsim_model::schema::FnoType;
use dwsim_model::Catalogue;
use std::collections::BTreeMap;
use std::io;

/// The version actions bound to `DataManagementEntities`.
pub(super) const VERSION_ACTIONS: [&str; 3] = [
    "GetApplicationVersion",
    "GetPlatformBuildVersion",
    "GetApplicationBuildVersion",
];

/// The document for a catalogue.
pub(super) fn csdl(catalogue: &Catalogue) -> String {
    xml::document(|w| document(w, catalogue))
}

fn edm(f: FnoType) -> &'static str {
    match f {
        FnoType::String | FnoType::Enum => "Edm.String",
        FnoType::Int => "Edm.Int32",
        FnoType::Real => "Edm.Decimal",
        FnoType::Date => "Edm.Date",
    }
}

fn document(w: &mut Xml, catalogue: &Catalogue) -> io::Result<()> {
    w.create_element("edmx:Edmx")
        .with_attributes([
            ("Version", "4.0"),
            ("xmlns:edmx", "http://docs.oasis-open.org/odata/ns/edmx"),
        ])
        .write_inner_content(|w| {
            w.create_element("edmx:DataServices")
                .write_inner_content(|w| schema(w, catalogue))?;
            Ok(())
        })?;
    Ok(())
}

fn schema(w: &mut Xml, catalogue: &Catalogue) -> io::Result<()> {
    w.create_element("Schema")
        .with_attributes([
            ("Namespace", NAMESPACE),
            ("xmlns", "http://docs.oasis-open.org/odata/ns/edm"),
        ])
        .write_inner_content(|w| {
            let mut enums: BTreeMap<&str, &[String]> = BTreeMap::new();
            for e in catalogue.fno_entities.values() {
                w.create_element("EntityType")
                    .with_attribute(("Name", e.name.as_str()))
                    .write_inner_content(|w| {
                        let key_names: Vec<&str> = e.keys.iter().map(String::as_str).collect();
                        keys(w, &key_names)?;
                        for f in &e.fields {
                            let kind = match (&f.kind, &f.enum_name) {
                                (FnoType::Enum, Some(n)) => {
                                    enums.insert(n, &f.values);
                                    format!("{NAMESPACE}.{n}")
                                }
                                (k, _) => edm(*k).to_string(),
                            };
                            property(w, &f.name, &kind, e.keys.contains(&f.name), f.max_length)?;
                        }
                        for r in &e.relations {
                            if let Some(t) = catalogue.fno_entities.get(&r.entity_set) {
                                w.create_element("NavigationProperty")
                                    .with_attributes([
                                        ("Name", t.name.as_str()),
                                        ("Type", &format!("{NAMESPACE}.{}", t.name)),
                                    ])
                                    .write_empty()?;
                            }
                        }
                        Ok(())
                    })?;
            }
            w.create_element("EntityType")
                .with_attribute(("Name", "Company"))
                .write_inner_content(|w| {
                    keys(w, &["DataArea"])?;
                    property(w, "DataArea", "Edm.String", true, Some(4))?;
                    property(w, "Name", "Edm.String", false, Some(60))
                })?;
            w.create_element("EntityType")
                .with_attribute(("Name", "DataManagementEntity"))
                .write_inner_content(|w| {
                    keys(w, &["Name"])?;
                    property(w, "Name", "Edm.String", true, None)
                })?;
            for (name, values) in enums {
                w.create_element("EnumType")
                    .with_attribute(("Name", name))
                    .write_inner_content(|w| {
                        for (i, v) in values.iter().enumerate() {
                            w.create_element("Member")
                                .with_attributes([("Name", v.as_str()), ("Value", &i.to_string())])
                                .write_empty()?;
                        }
                        Ok(())
                    })?;
            }
            let bound = format!("Collection({NAMESPACE}.DataManagementEntity)");
            for action in VERSION_ACTIONS {
                w.create_element("Action")
                    .with_attributes([("Name", action), ("IsBound", "true")])
                    .write_inner_content(|w| {
                        w.create_element("Parameter")
                            .with_attributes([
                                ("Name", "_bindingParameter"),
                                ("Type", bound.as_str()),
                            ])
                            .write_empty()?;
                        w.create_element("ReturnType")
                            .with_attribute(("Type", "Edm.String"))
                            .write_empty()?;
                        Ok(())
                    })?;
            }
            container(w, catalogue)
        })?;
    Ok(())
}

fn container(w: &mut Xml, catalogue: &Catalogue) -> io::Result<()> {
    w.create_element("EntityContainer")
        .with_attribute(("Name", "Resources"))
        .write_inner_content(|w| {
            let mut sets: Vec<(String, String)> = catalogue
                .fno_entities
                .values()
                .map(|e| (e.entity_set.clone(), e.name.clone()))
                .collect();
            sets.push(("Companies".into(), "Company".into()));
            sets.push((
                "DataManagementEntities".into(),
                "DataManagementEntity".into(),
            ));
            for (set, entity) in sets {
                w.create_element("EntitySet")
                    .with_attributes([
                        ("Name", set.as_str()),
                        ("EntityType", &format!("{NAMESPACE}.{entity}")),
                    ])
                    .write_empty()?;
            }
            Ok(())
        })?;
    Ok(())
}
