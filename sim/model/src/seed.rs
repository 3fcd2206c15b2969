//! Seed data: what the starting world holds before a scenario runs. The demo data set is a
//! JSON file; property tests generate their own `SeedData` and hand it to the same builder.

use serde::{Deserialize, Serialize};

/// What a world's existing environments start with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SeedData {
    /// Companies of an F&O environment deployed with demo data (or of an existing one).
    pub fno: FnoSeed,
    /// Rows of an existing Dataverse environment, none of them with a company yet.
    pub dataverse: DvSeed,
}

/// The companies and currencies of an F&O deployment with data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FnoSeed {
    /// The demo companies and their rows.
    pub companies: Vec<CompanySeed>,
    /// Currencies besides USD, which every F&O environment has.
    #[serde(default)]
    pub currencies: Vec<CurrencySeed>,
}

/// A currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
