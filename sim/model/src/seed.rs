//! Seed data: what the starting world holds before a scenario runs. The demo data set is a
//! JSON file; property tests generate their own `SeedData` and hand it to the same builder.

use crate::store::Row;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// What a world's existing environments start with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SeedData {
    /// Companies of an F&O environment deployed with demo data (or of an existing one).
    pub fno: FnoSeed,
    /// Rows of an existing Dataverse environment, none of them with a company yet.
    pub dataverse: DvSeed,
    /// Rows of any table, as the products' APIs take them: for a partner's own entities
    /// and tables, which the typed lists above do not cover.
    #[serde(default, skip_serializing_if = "RowsSeed::is_empty")]
    pub rows: RowsSeed,
}

/// Rows by table, written through each product's own validation after the typed seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RowsSeed {
    /// F&O rows by entity set; company-specific rows name their `dataAreaId`.
    #[serde(default)]
    pub fno: BTreeMap<String, Vec<Row>>,
    /// Dataverse rows by table logical name, with attribute names (`_x_value` for lookups).
    #[serde(default)]
    pub dataverse: BTreeMap<String, Vec<Row>>,
}

impl RowsSeed {
    /// Whether there are no rows at all.
    pub fn is_empty(&self) -> bool {
        self.fno.values().all(Vec::is_empty) && self.dataverse.values().all(Vec::is_empty)
    }
}

impl SeedData {
    /// Merges a partner's data set into this one: a company with a new id is added, one
    /// with an existing id gets the partner's groups, customers, terms and vendors
    /// appended; currencies, Dataverse rows and generic rows are appended.
    pub fn merge(&mut self, other: SeedData) {
        for company in other.fno.companies {
            match self.fno.companies.iter_mut().find(|c| c.id == company.id) {
                Some(c) => {
                    c.generate.add(&company.generate);
                    c.customer_groups.extend(company.customer_groups);
                    c.customers.extend(company.customers);
                    c.payment_terms.extend(company.payment_terms);
                    c.vendor_groups.extend(company.vendor_groups);
                    c.vendors.extend(company.vendors);
                }
                None => self.fno.companies.push(company),
            }
        }
        self.fno.currencies.extend(other.fno.currencies);
        self.dataverse.currencies.extend(other.dataverse.currencies);
        self.dataverse
            .customer_groups
            .extend(other.dataverse.customer_groups);
        self.dataverse.accounts.extend(other.dataverse.accounts);
        self.dataverse.contacts.extend(other.dataverse.contacts);
        self.dataverse.generate.add(&other.dataverse.generate);
        for (set, rows) in other.rows.fno {
            self.rows.fno.entry(set).or_default().extend(rows);
        }
        for (table, rows) in other.rows.dataverse {
            self.rows.dataverse.entry(table).or_default().extend(rows);
        }
    }
}

/// The companies and currencies of an F&O deployment with data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FnoSeed {
    /// The demo companies and their rows.
    pub companies: Vec<CompanySeed>,
    /// Currencies besides USD, which every F&O environment has.
    #[serde(default)]
    pub currencies: Vec<CurrencySeed>,
}

/// A currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrencySeed {
    /// The ISO code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Dataverse's `exchangerate` (to the base currency); 1 when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_rate: Option<f64>,
}

/// A vendor of a company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorSeed {
    /// The vendor account.
    pub account: String,
    /// The organization name.
    pub name: String,
    /// Its vendor group.
    pub group: String,
    /// Its currency; F&O's default when not given.
    #[serde(default)]
    pub currency: Option<String>,
}

/// A demo company and its rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanySeed {
    /// The legal entity id (`USMF`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its customer groups.
    #[serde(default)]
    pub customer_groups: Vec<GroupSeed>,
    /// Its customers.
    #[serde(default)]
    pub customers: Vec<CustomerSeed>,
    /// Terms of payment (id = name).
    #[serde(default)]
    pub payment_terms: Vec<GroupSeed>,
    /// Its vendor groups.
    #[serde(default)]
    pub vendor_groups: Vec<GroupSeed>,
    /// Its vendors.
    #[serde(default)]
    pub vendors: Vec<VendorSeed>,
    /// Rows generated on top of the listed ones, for a tenant's data volume.
    #[serde(default, skip_serializing_if = "Generate::is_empty")]
    pub generate: Generate,
}

/// How many rows to generate on top of a data set's listed ones. Generated rows are
/// plain and deterministic (numbered keys and names, the first listed group), so that a
/// scenario or a partner's data set can ask for a production-sized tenant in one line
/// without a file of that size: `"generate": {"customers": 100000}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// F&O: organisation customers `GEN-0000000`… of the company's first customer group.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub customers: usize,
    /// F&O: vendors `GENV-0000000`… of the company's first vendor group.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vendors: usize,
    /// Dataverse: customer accounts `GEN-A0000000`… of the first customer group.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub accounts: usize,
    /// Dataverse: sellable contacts `GEN-P0000000`… of the first customer group.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub contacts: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Generate {
    /// Whether nothing is generated.
    pub fn is_empty(&self) -> bool {
        *self == Generate::default()
    }

    /// Adds another data set's counts (merging data sets adds their rows).
    pub fn add(&mut self, other: &Generate) {
        self.customers += other.customers;
        self.vendors += other.vendors;
        self.accounts += other.accounts;
        self.contacts += other.contacts;
    }
}

impl CompanySeed {
    /// The listed customers, then the generated ones.
    pub fn all_customers(&self) -> impl Iterator<Item = Cow<'_, CustomerSeed>> {
        let group = self.customer_groups.first().map(|g| g.id.clone());
        let area = self.id.to_lowercase();
        let generated = group.into_iter().flat_map(move |group| {
            let area = area.clone();
            (0..self.generate.customers).map(move |i| {
                Cow::Owned(CustomerSeed {
                    account: format!("GEN-{i:07}"),
                    party_type: "Organization".into(),
                    name: Some(format!("Generated customer {i}")),
                    first_name: None,
                    last_name: None,
                    group: group.clone(),
                    currency: None,
                    credit_limit: Some((i % 100) as i64 * 1000),
                    email: Some(format!("c{i}@{area}.generated.example")),
                })
            })
        });
        self.customers.iter().map(Cow::Borrowed).chain(generated)
    }

    /// The listed vendors, then the generated ones.
    pub fn all_vendors(&self) -> impl Iterator<Item = Cow<'_, VendorSeed>> {
        let group = self.vendor_groups.first().map(|g| g.id.clone());
        let generated = group.into_iter().flat_map(move |group| {
            (0..self.generate.vendors).map(move |i| {
                Cow::Owned(VendorSeed {
                    account: format!("GENV-{i:07}"),
                    name: format!("Generated vendor {i}"),
                    group: group.clone(),
                    currency: None,
                })
            })
        });
        self.vendors.iter().map(Cow::Borrowed).chain(generated)
    }

    /// Why this company's generation cannot run: it asks for rows of a group it lacks.
    pub fn generation_problem(&self) -> Option<String> {
        if self.generate.customers > 0 && self.customer_groups.is_empty() {
            return Some(format!(
                "company {} asks for {} generated customers but has no customer group",
                self.id, self.generate.customers
            ));
        }
        if self.generate.vendors > 0 && self.vendor_groups.is_empty() {
            return Some(format!(
                "company {} asks for {} generated vendors but has no vendor group",
                self.id, self.generate.vendors
            ));
        }
        None
    }
}

/// A group (customer, vendor) or a term of payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSeed {
    /// Its id.
    pub id: String,
    /// Its description.
    pub description: String,
    /// A customer group's terms of payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_term: Option<String>,
}

/// A customer of a company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerSeed {
    /// The customer account.
    pub account: String,
    /// `Organization` or `Person`.
    pub party_type: String,
    /// The organization name (organizations).
    #[serde(default)]
    pub name: Option<String>,
    /// The first name (persons).
    #[serde(default)]
    pub first_name: Option<String>,
    /// The last name (persons).
    #[serde(default)]
    pub last_name: Option<String>,
    /// Its customer group.
    pub group: String,
    /// Sales currency; F&O's default (USD) when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The credit limit.
    #[serde(default)]
    pub credit_limit: Option<i64>,
    /// The primary contact email.
    #[serde(default)]
    pub email: Option<String>,
}

/// The rows an existing Dataverse starts with, none with a company yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DvSeed {
    /// Currencies besides the organization's base currency (USD).
    #[serde(default)]
    pub currencies: Vec<CurrencySeed>,
    /// Customer groups.
    #[serde(default)]
    pub customer_groups: Vec<GroupSeed>,
    /// Accounts.
    #[serde(default)]
    pub accounts: Vec<DvAccountSeed>,
    /// Contacts.
    #[serde(default)]
    pub contacts: Vec<DvContactSeed>,
    /// Accounts and contacts generated on top of the listed ones.
    #[serde(default, skip_serializing_if = "Generate::is_empty")]
    pub generate: Generate,
}

impl DvSeed {
    /// The listed accounts, then the generated ones.
    pub fn all_accounts(&self) -> impl Iterator<Item = Cow<'_, DvAccountSeed>> {
        let group = self.customer_groups.first().map(|g| g.id.clone());
        let generated = (0..self.generate.accounts).map(move |i| {
            Cow::Owned(DvAccountSeed {
                accountnumber: Some(format!("GEN-A{i:07}")),
                name: format!("Generated account {i}"),
                customertypecode: 3,
                group: group.clone(),
                currency: None,
                email: Some(format!("a{i}@crm.generated.example")),
                creditlimit: Some((i % 100) as i64 * 1000),
            })
        });
        self.accounts.iter().map(Cow::Borrowed).chain(generated)
    }

    /// The listed contacts, then the generated ones.
    pub fn all_contacts(&self) -> impl Iterator<Item = Cow<'_, DvContactSeed>> {
        let group = self.customer_groups.first().map(|g| g.id.clone());
        let generated = (0..self.generate.contacts).map(move |i| {
            Cow::Owned(DvContactSeed {
                contactpersonid: Some(format!("GEN-P{i:07}")),
                firstname: Some("Generated".into()),
                lastname: format!("Contact {i}"),
                group: group.clone(),
                email: Some(format!("p{i}@crm.generated.example")),
                sellable: true,
            })
        });
        self.contacts.iter().map(Cow::Borrowed).chain(generated)
    }
}

/// An account of an existing Dataverse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DvAccountSeed {
    /// The account number (the integration key with the company).
    #[serde(default)]
    pub accountnumber: Option<String>,
    /// The account name.
    pub name: String,
    /// The relationship type choice.
    pub customertypecode: i64,
    /// Its customer group id.
    #[serde(default)]
    pub group: Option<String>,
    /// ISO code of the account's currency (the base currency when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Its email.
    #[serde(default)]
    pub email: Option<String>,
    /// Its credit limit.
    #[serde(default)]
    pub creditlimit: Option<i64>,
}

/// A contact of an existing Dataverse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DvContactSeed {
    /// The contact person id (the integration key with the company).
    #[serde(default)]
    pub contactpersonid: Option<String>,
    /// The first name.
    #[serde(default)]
    pub firstname: Option<String>,
    /// The last name.
    pub lastname: String,
    /// Its customer group id.
    #[serde(default)]
    pub group: Option<String>,
    /// Its email.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the contact is sellable (a customer).
    #[serde(default)]
    pub sellable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_rows_follow_the_listed_ones_and_merging_adds_counts() {
        let mut data: SeedData = serde_json::from_str(
            r#"{"fno": {"companies": [{"id": "USMF", "name": "Contoso",
                "customer_groups": [{"id": "10", "description": "Wholesale"}],
                "customers": [{"account": "US-001", "party_type": "Organization", "name": "A", "group": "10"}],
                "generate": {"customers": 2}}]},
              "dataverse": {"generate": {"contacts": 1}}}"#,
        )
        .expect("data set");
        let extra: SeedData = serde_json::from_str(
            r#"{"fno": {"companies": [{"id": "USMF", "name": "Contoso", "generate": {"customers": 3}}]},
              "dataverse": {"generate": {"accounts": 4}}}"#,
        )
        .expect("data set");
        data.merge(extra);
        let usmf = &data.fno.companies[0];
        let accounts: Vec<String> = usmf.all_customers().map(|c| c.account.clone()).collect();
        assert_eq!(
            accounts,
            [
                "US-001",
                "GEN-0000000",
                "GEN-0000001",
                "GEN-0000002",
                "GEN-0000003",
                "GEN-0000004"
            ]
        );
        assert!(usmf.all_customers().skip(1).all(|c| c.group == "10"));
        assert_eq!(data.dataverse.all_accounts().count(), 4);
        assert_eq!(data.dataverse.all_contacts().count(), 1);
        assert_eq!(usmf.generation_problem(), None);
        // A data set that generates nothing writes no `generate` field.
        let plain: SeedData =
            serde_json::from_str(r#"{"fno": {"companies": []}, "dataverse": {}}"#)
                .expect("data set");
        assert!(!serde_json::to_string(&plain)
            .expect("json")
            .contains("generate"));
    }
}
