//! Seed data: what the starting world holds before a scenario runs. The demo data set is a
//! JSON file; property tests generate their own `SeedData` and hand it to the same builder.

use crate::store::Row;
use serde::{Deserialize, Serialize};
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
