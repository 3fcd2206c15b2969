//! The CSDL `$metadata` document, written with an XML writer (every name and value escaped):
//! the vocabulary references, an entity type per table with every property a payload can
//! carry, its single- and collection-valued navigation properties and alternate keys, the
//! metadata types `EntityDefinitions` answers in, the functions and actions the service
//! answers, and the entity container.

use super::NS;
use crate::xml::{self, Xml};
use dwsim_model::schema::{DvTable, DvType};
use dwsim_model::Catalogue;
use std::io;

/// The document for a catalogue.
pub(crate) fn csdl(catalogue: &Catalogue) -> String {
    xml::document(|w| write_document(w, catalogue))
}

fn write_document(w: &mut Xml, catalogue: &Catalogue) -> io::Result<()> {
    w.create_element("edmx:Edmx")
        .with_attributes([
            ("Version", "4.0"),
            ("xmlns:edmx", "http://docs.oasis-open.org/odata/ns/edmx"),
        ])
        .write_inner_content(|w| {
            for (uri, namespace, alias) in [
                (
                    "http://vocabularies.odata.org/OData.Community.Keys.V1.xml",
                    "OData.Community.Keys.V1",
                    "Keys",
                ),
                (
                    "http://vocabularies.odata.org/OData.Community.Display.V1.xml",
                    "OData.Community.Display.V1",
                    "Display",
                ),
                (
                    "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml",
                    "Org.OData.Core.V1",
                    "Core",
                ),
            ] {
                w.create_element("edmx:Reference")
                    .with_attribute(("Uri", uri))
                    .write_inner_content(|w| {
                        w.create_element("edmx:Include")
                            .with_attributes([("Namespace", namespace), ("Alias", alias)])
                            .write_empty()?;
                        w.create_element("edmx:IncludeAnnotations")
                            .with_attribute(("TermNamespace", namespace))
                            .write_empty()?;
                        Ok(())
                    })?;
            }
            w.create_element("edmx:DataServices")
                .write_inner_content(|w| schema(w, catalogue))?;
            Ok(())
        })?;
    Ok(())
}

fn schema(w: &mut Xml, catalogue: &Catalogue) -> io::Result<()> {
    w.create_element("Schema")
        .with_attributes([
            ("Namespace", NS),
            ("Alias", "mscrm"),
            ("xmlns", "http://docs.oasis-open.org/odata/ns/edm"),
        ])
        .write_inner_content(|w| {
            w.create_element("EntityType")
                .with_attributes([("Name", "crmbaseentity"), ("Abstract", "true")])
                .write_empty()?;
            w.create_element("EntityType")
                .with_attributes([
                    ("Name", "principal"),
                    ("BaseType", "mscrm.crmbaseentity"),
                    ("Abstract", "true"),
                ])
                .write_inner_content(|w| {
                    key_ref(w, "ownerid")?;
                    property(w, "ownerid", "Edm.Guid")
                })?;
            for table in catalogue.dv_tables.values() {
                entity_type(w, catalogue, table)?;
            }
            metadata_types(w)?;
            operations(w)?;
            container(w, catalogue)
        })?;
    Ok(())
}

fn key_ref(w: &mut Xml, name: &str) -> io::Result<()> {
    xml::key(w, &[name])
}

fn property(w: &mut Xml, name: &str, edm: &str) -> io::Result<()> {
    xml::property(w, name, edm, false, None)
}

/// The primary id of the table a relationship points at (`ownerid` for the owner).
fn referenced_key(catalogue: &Catalogue, entity: &str) -> String {
    if entity == "owner" {
        return "ownerid".into();
    }
    catalogue
        .dv_tables
        .get(entity)
        .map_or_else(|| format!("{entity}id"), |t| t.primary_id.clone())
}

fn entity_type(w: &mut Xml, catalogue: &Catalogue, table: &DvTable) -> io::Result<()> {
    w.create_element("EntityType")
        .with_attributes([
            ("Name", table.logical_name.as_str()),
            ("BaseType", "mscrm.crmbaseentity"),
        ])
        .write_inner_content(|w| {
            key_ref(w, &table.primary_id)?;
            for c in &table.columns {
                let edm = match (c.kind, c.format.as_deref()) {
                    (DvType::Datetime, Some("DateOnly")) => "Edm.Date",
                    (kind, _) => kind.edm_type(),
                };
                property(w, &c.attribute(), edm)?;
            }
            // Single-valued: the lookups of this table (the owner once, whatever its targets).
            let mut written: Vec<&str> = Vec::new();
            for r in &table.many_to_one {
                if written.contains(&r.referencing_nav.as_str()) {
                    continue;
                }
                written.push(&r.referencing_nav);
                let target = if r.referenced_entity == "owner" {
                    "mscrm.principal".to_string()
                } else {
                    format!("mscrm.{}", r.referenced_entity)
                };
                let partner = (r.referenced_entity != "owner").then_some(r.referenced_nav.as_str());
                let mut nav = w
                    .create_element("NavigationProperty")
                    .with_attributes([("Name", r.referencing_nav.as_str()), ("Type", &target)]);
                if let Some(partner) = partner {
                    nav = nav.with_attribute(("Partner", partner));
                }
                let lookup = format!("_{}_value", r.referencing_attribute);
                let referenced = referenced_key(catalogue, &r.referenced_entity);
                nav.write_inner_content(|w| {
                    w.create_element("ReferentialConstraint")
                        .with_attributes([
                            ("Property", lookup.as_str()),
                            ("ReferencedProperty", referenced.as_str()),
                        ])
                        .write_empty()?;
                    Ok(())
                })?;
            }
            // Collection-valued: the lookups of other tables that point here.
            for other in catalogue.dv_tables.values() {
                for r in other
                    .many_to_one
                    .iter()
                    .filter(|r| r.referenced_entity == table.logical_name)
                {
                    w.create_element("NavigationProperty")
                        .with_attributes([
                            ("Name", r.referenced_nav.as_str()),
                            ("Type", &format!("Collection(mscrm.{})", other.logical_name)),
                            ("Partner", r.referencing_nav.as_str()),
                        ])
                        .write_empty()?;
                }
            }
            alternate_keys(w, table)
        })?;
    Ok(())
}

fn alternate_keys(w: &mut Xml, table: &DvTable) -> io::Result<()> {
    if table.alternate_keys.is_empty() {
        return Ok(());
    }
    w.create_element("Annotation")
        .with_attribute(("Term", "OData.Community.Keys.V1.AlternateKeys"))
        .write_inner_content(|w| {
            w.create_element("Collection").write_inner_content(|w| {
                for k in &table.alternate_keys {
                    w.create_element("Record")
                        .with_attribute(("Type", "OData.Community.Keys.V1.AlternateKey"))
                        .write_inner_content(|w| {
                            w.create_element("PropertyValue")
                                .with_attribute(("Property", "Key"))
                                .write_inner_content(|w| {
                                    w.create_element("Collection").write_inner_content(|w| {
                                        for c in &k.columns {
                                            w.create_element("Record")
                                                .with_attribute((
                                                    "Type",
                                                    "OData.Community.Keys.V1.PropertyRef",
                                                ))
                                                .write_inner_content(|w| {
                                                    w.create_element("PropertyValue")
                                                        .with_attributes([
                                                            ("Property", "Alias"),
                                                            ("String", c.as_str()),
                                                        ])
                                                        .write_empty()?;
                                                    w.create_element("PropertyValue")
                                                        .with_attributes([
                                                            ("Property", "Name"),
                                                            ("PropertyPath", c.as_str()),
                                                        ])
                                                        .write_empty()?;
                                                    Ok(())
                                                })?;
                                        }
                                        Ok(())
                                    })?;
                                    Ok(())
                                })?;
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

/// A type with a base type and its properties (`(name, type)`); navigation properties are
/// the ones whose type is an entity type (`nav:` prefix).
fn typed(
    w: &mut Xml,
    element: &str,
    name: &str,
    base: Option<&str>,
    abstract_: bool,
    members: &[(&str, &str)],
) -> io::Result<()> {
    let mut e = w.create_element(element).with_attribute(("Name", name));
    if let Some(base) = base {
        e = e.with_attribute(("BaseType", base));
    }
    if abstract_ {
        e = e.with_attribute(("Abstract", "true"));
    }
    e.write_inner_content(|w| {
        if element == "EntityType" && base.is_none() {
            key_ref(w, "MetadataId")?;
        }
        for (member, kind) in members {
            match member.strip_prefix("nav:") {
                Some(nav) => {
                    w.create_element("NavigationProperty")
                        .with_attributes([("Name", nav), ("Type", kind)])
                        .write_empty()?;
                }
                None => property(w, member, kind)?,
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// The metadata types `EntityDefinitions` and `GlobalOptionSetDefinitions` answer in.
fn metadata_types(w: &mut Xml) -> io::Result<()> {
    const S: &str = "Edm.String";
    const B: &str = "Edm.Boolean";
    const I: &str = "Edm.Int32";
    const L: &str = "mscrm.Label";
    typed(
        w,
        "ComplexType",
        "LocalizedLabel",
        None,
        false,
        &[
            ("Label", S),
            ("LanguageCode", I),
            ("IsManaged", B),
            ("MetadataId", "Edm.Guid"),
            ("HasChanged", B),
        ],
    )?;
    typed(
        w,
        "ComplexType",
        "Label",
        None,
        false,
        &[
            ("LocalizedLabels", "Collection(mscrm.LocalizedLabel)"),
            ("UserLocalizedLabel", "mscrm.LocalizedLabel"),
        ],
    )?;
    typed(
        w,
        "ComplexType",
        "AttributeRequiredLevelManagedProperty",
        None,
        false,
        &[
            ("Value", S),
            ("CanBeChanged", B),
            ("ManagedPropertyLogicalName", S),
        ],
    )?;
    typed(
        w,
        "ComplexType",
        "AttributeTypeDisplayName",
        None,
        false,
        &[("Value", S)],
    )?;
    typed(
        w,
        "ComplexType",
        "OptionMetadata",
        None,
        false,
        &[
            ("Value", I),
            ("Label", L),
            ("Description", L),
            ("Color", S),
            ("IsManaged", B),
            ("ExternalValue", S),
            ("ParentValues", "Collection(Edm.Int32)"),
            ("Tag", S),
            ("IsHidden", B),
            ("MetadataId", "Edm.Guid"),
            ("HasChanged", B),
        ],
    )?;
    typed(
        w,
        "ComplexType",
        "StatusOptionMetadata",
        Some("mscrm.OptionMetadata"),
        false,
        &[("State", I), ("TransitionData", S)],
    )?;
    typed(
        w,
        "ComplexType",
        "StateOptionMetadata",
        Some("mscrm.OptionMetadata"),
        false,
        &[("DefaultStatus", I), ("InvariantName", S)],
    )?;
    typed(
        w,
        "EntityType",
        "MetadataBase",
        None,
        true,
        &[("MetadataId", "Edm.Guid"), ("HasChanged", B)],
    )?;
    typed(
        w,
        "EntityType",
        "EntityMetadata",
        Some("mscrm.MetadataBase"),
        false,
        &[
            ("LogicalName", S),
            ("SchemaName", S),
            ("EntitySetName", S),
            ("LogicalCollectionName", S),
            ("CollectionSchemaName", S),
            ("PrimaryIdAttribute", S),
            ("PrimaryNameAttribute", S),
            ("ObjectTypeCode", I),
            ("OwnershipType", S),
            ("IsCustomEntity", B),
            ("IsActivity", B),
            ("IsManaged", B),
            ("IsValidForAdvancedFind", B),
            ("IsIntersect", B),
            ("IsLogicalEntity", B),
            ("HasActivities", B),
            ("HasNotes", B),
            ("DisplayName", L),
            ("DisplayCollectionName", L),
            ("Description", L),
            ("nav:Attributes", "Collection(mscrm.AttributeMetadata)"),
            ("nav:Keys", "Collection(mscrm.EntityKeyMetadata)"),
            (
                "nav:ManyToOneRelationships",
                "Collection(mscrm.OneToManyRelationshipMetadata)",
            ),
            (
                "nav:OneToManyRelationships",
                "Collection(mscrm.OneToManyRelationshipMetadata)",
            ),
        ],
    )?;
    typed(
        w,
        "EntityType",
        "AttributeMetadata",
        Some("mscrm.MetadataBase"),
        false,
        &[
            ("LogicalName", S),
            ("SchemaName", S),
            ("EntityLogicalName", S),
            ("AttributeType", S),
            ("AttributeTypeName", "mscrm.AttributeTypeDisplayName"),
            ("DisplayName", L),
            ("Description", L),
            (
                "RequiredLevel",
                "mscrm.AttributeRequiredLevelManagedProperty",
            ),
            ("IsValidForCreate", B),
            ("IsValidForUpdate", B),
            ("IsValidForRead", B),
            ("IsPrimaryId", B),
            ("IsPrimaryName", B),
            ("IsCustomAttribute", B),
            ("IsLogical", B),
            ("AttributeOf", S),
            ("ColumnNumber", I),
        ],
    )?;
    let attribute = Some("mscrm.AttributeMetadata");
    typed(
        w,
        "EntityType",
        "StringAttributeMetadata",
        attribute,
        false,
        &[("MaxLength", I), ("Format", S)],
    )?;
    typed(
        w,
        "EntityType",
        "MemoAttributeMetadata",
        attribute,
        false,
        &[("MaxLength", I), ("Format", S)],
    )?;
    typed(
        w,
        "EntityType",
        "IntegerAttributeMetadata",
        attribute,
        false,
        &[("MinValue", I), ("MaxValue", I), ("Format", S)],
    )?;
    typed(
        w,
        "EntityType",
        "BigIntAttributeMetadata",
        attribute,
        false,
        &[("MinValue", "Edm.Int64"), ("MaxValue", "Edm.Int64")],
    )?;
    for name in ["DecimalAttributeMetadata", "MoneyAttributeMetadata"] {
        typed(
            w,
            "EntityType",
            name,
            attribute,
            false,
            &[
                ("MinValue", "Edm.Decimal"),
                ("MaxValue", "Edm.Decimal"),
                ("Precision", I),
            ],
        )?;
    }
    typed(
        w,
        "EntityType",
        "DoubleAttributeMetadata",
        attribute,
        false,
        &[
            ("MinValue", "Edm.Double"),
            ("MaxValue", "Edm.Double"),
            ("Precision", I),
        ],
    )?;
    typed(
        w,
        "EntityType",
        "BooleanAttributeMetadata",
        attribute,
        false,
        &[
            ("DefaultValue", B),
            ("nav:OptionSet", "mscrm.BooleanOptionSetMetadata"),
            ("nav:GlobalOptionSet", "mscrm.BooleanOptionSetMetadata"),
        ],
    )?;
    typed(
        w,
        "EntityType",
        "EnumAttributeMetadata",
        attribute,
        true,
        &[
            ("DefaultFormValue", I),
            ("nav:OptionSet", "mscrm.OptionSetMetadata"),
            ("nav:GlobalOptionSet", "mscrm.OptionSetMetadata"),
        ],
    )?;
    for name in [
        "PicklistAttributeMetadata",
        "StateAttributeMetadata",
        "StatusAttributeMetadata",
    ] {
        typed(
            w,
            "EntityType",
            name,
            Some("mscrm.EnumAttributeMetadata"),
            false,
            &[],
        )?;
    }
    typed(
        w,
        "EntityType",
        "LookupAttributeMetadata",
        attribute,
        false,
        &[("Targets", "Collection(Edm.String)")],
    )?;
    typed(
        w,
        "EntityType",
        "UniqueIdentifierAttributeMetadata",
        attribute,
        false,
        &[],
    )?;
    typed(
        w,
        "EntityType",
        "DateTimeAttributeMetadata",
        attribute,
        false,
        &[("Format", S)],
    )?;
    typed(
        w,
        "EntityType",
        "OptionSetMetadataBase",
        Some("mscrm.MetadataBase"),
        true,
        &[
            ("Name", S),
            ("IsGlobal", B),
            ("IsCustomOptionSet", B),
            ("IsManaged", B),
            ("OptionSetType", S),
            ("DisplayName", L),
            ("Description", L),
            ("ExternalTypeName", S),
            ("IntroducedVersion", S),
        ],
    )?;
    typed(
        w,
        "EntityType",
        "OptionSetMetadata",
        Some("mscrm.OptionSetMetadataBase"),
        false,
        &[("Options", "Collection(mscrm.OptionMetadata)")],
    )?;
    typed(
        w,
        "EntityType",
        "BooleanOptionSetMetadata",
        Some("mscrm.OptionSetMetadataBase"),
        false,
        &[
            ("TrueOption", "mscrm.OptionMetadata"),
            ("FalseOption", "mscrm.OptionMetadata"),
        ],
    )?;
    typed(
        w,
        "EntityType",
        "EntityKeyMetadata",
        Some("mscrm.MetadataBase"),
        false,
        &[
            ("LogicalName", S),
            ("SchemaName", S),
            ("EntityLogicalName", S),
            ("KeyAttributes", "Collection(Edm.String)"),
            ("DisplayName", L),
            ("EntityKeyIndexStatus", S),
            ("IsManaged", B),
        ],
    )?;
    typed(
        w,
        "EntityType",
        "OneToManyRelationshipMetadata",
        Some("mscrm.MetadataBase"),
        false,
        &[
            ("SchemaName", S),
            ("RelationshipType", S),
            ("IsCustomRelationship", B),
            ("IsManaged", B),
            ("IsValidForAdvancedFind", B),
            ("ReferencedAttribute", S),
            ("ReferencedEntity", S),
            ("ReferencingAttribute", S),
            ("ReferencingEntity", S),
            ("ReferencedEntityNavigationPropertyName", S),
            ("ReferencingEntityNavigationPropertyName", S),
            ("IsHierarchical", B),
        ],
    )?;
    Ok(())
}

/// The functions and the bulk actions the service answers.
fn operations(w: &mut Xml) -> io::Result<()> {
    typed(
        w,
        "ComplexType",
        "WhoAmIResponse",
        None,
        false,
        &[
            ("BusinessUnitId", "Edm.Guid"),
            ("UserId", "Edm.Guid"),
            ("OrganizationId", "Edm.Guid"),
        ],
    )?;
    typed(
        w,
        "ComplexType",
        "RetrieveFinanceAndOperationsIntegrationDetailsResponse",
        None,
        false,
        &[
            ("Url", "Edm.String"),
            ("TenantId", "Edm.Guid"),
            ("Id", "Edm.String"),
        ],
    )?;
    typed(
        w,
        "ComplexType",
        "CreateMultipleResponse",
        None,
        false,
        &[("Ids", "Collection(Edm.Guid)")],
    )?;
    typed(
        w,
        "ComplexType",
        "UpsertMultipleResponse",
        None,
        false,
        &[("Results", "Collection(mscrm.UpsertResponse)")],
    )?;
    typed(
        w,
        "ComplexType",
        "UpsertResponse",
        None,
        false,
        &[
            ("RecordCreated", "Edm.Boolean"),
            ("Target", "mscrm.crmbaseentity"),
        ],
    )?;
    for (name, returns) in [
        ("WhoAmI", "mscrm.WhoAmIResponse"),
        (
            "RetrieveFinanceAndOperationsIntegrationDetails",
            "mscrm.RetrieveFinanceAndOperationsIntegrationDetailsResponse",
        ),
    ] {
        w.create_element("Function")
            .with_attribute(("Name", name))
            .write_inner_content(|w| {
                w.create_element("ReturnType")
                    .with_attributes([("Type", returns), ("Nullable", "false")])
                    .write_empty()?;
                Ok(())
            })?;
    }
    for (name, returns) in [
        ("CreateMultiple", Some("mscrm.CreateMultipleResponse")),
        ("UpdateMultiple", None),
        ("UpsertMultiple", Some("mscrm.UpsertMultipleResponse")),
    ] {
        w.create_element("Action")
            .with_attributes([("Name", name), ("IsBound", "true")])
            .write_inner_content(|w| {
                for parameter in ["entityset", "Targets"] {
                    w.create_element("Parameter")
                        .with_attributes([
                            ("Name", parameter),
                            ("Type", "Collection(mscrm.crmbaseentity)"),
                            ("Nullable", "false"),
                        ])
                        .write_empty()?;
                }
                if let Some(returns) = returns {
                    w.create_element("ReturnType")
                        .with_attributes([("Type", returns), ("Nullable", "false")])
                        .write_empty()?;
                }
                Ok(())
            })?;
    }
    Ok(())
}

fn container(w: &mut Xml, catalogue: &Catalogue) -> io::Result<()> {
    w.create_element("EntityContainer")
        .with_attribute(("Name", "System"))
        .write_inner_content(|w| {
            for t in catalogue.dv_tables.values() {
                let entity_type = format!("{NS}.{}", t.logical_name);
                w.create_element("EntitySet")
                    .with_attributes([
                        ("Name", t.entity_set.as_str()),
                        ("EntityType", &entity_type),
                    ])
                    .write_inner_content(|w| {
                        for r in t
                            .many_to_one
                            .iter()
                            .filter(|r| r.referenced_entity != "owner")
                        {
                            if let Some(target) = catalogue.dv_tables.get(&r.referenced_entity) {
                                w.create_element("NavigationPropertyBinding")
                                    .with_attributes([
                                        ("Path", r.referencing_nav.as_str()),
                                        ("Target", target.entity_set.as_str()),
                                    ])
                                    .write_empty()?;
                            }
                        }
                        Ok(())
                    })?;
            }
            for (set, entity_type) in [
                ("EntityDefinitions", "Microsoft.Dynamics.CRM.EntityMetadata"),
                (
                    "GlobalOptionSetDefinitions",
                    "Microsoft.Dynamics.CRM.OptionSetMetadataBase",
                ),
            ] {
                w.create_element("EntitySet")
                    .with_attributes([("Name", set), ("EntityType", entity_type)])
                    .write_empty()?;
            }
            for name in ["WhoAmI", "RetrieveFinanceAndOperationsIntegrationDetails"] {
                let function = format!("{NS}.{name}");
                w.create_element("FunctionImport")
                    .with_attributes([("Name", name), ("Function", function.as_str())])
                    .write_empty()?;
            }
            Ok(())
        })?;
    Ok(())
}
