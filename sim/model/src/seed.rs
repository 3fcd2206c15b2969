//! Seed data: what the starting world holds before a scenario runs. The demo data set is a
//! JSON file; property tests generate their own `SeedData` and hand it to the same builder.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SeedData {
    /// Companies of an F&O environment deployed with demo data (or of an existing one).
    pub fno: FnoSeed,
    /// Rows of an existing Dataverse environment, none of them with a company yet.
    pub dataverse: DvSeed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FnoSeed {
    pub companies: Vec<CompanySeed>,
    /// Currencies besides USD, which every F&O environment has.
    #[serde(default)]
    pub currencies: Vec<CurrencySeed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrencySeed {
    pub code: String,
    pub name: String,
    /// Dataverse's `exchangerate` (to the base currency); 1 when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VendorSeed {
    pub account: String,
    pub name: String,
    pub group: String,
    #[serde(default)]
    pub currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompanySeed {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub customer_groups: Vec<GroupSeed>,
    #[serde(default)]
    pub customers: Vec<CustomerSeed>,
    /// Terms of payment (id = name).
    #[serde(default)]
    pub payment_terms: Vec<GroupSeed>,
    #[serde(default)]
    pub vendor_groups: Vec<GroupSeed>,
    #[serde(default)]
    pub vendors: Vec<VendorSeed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSeed {
    pub id: String,
    pub description: String,
    /// A customer group's terms of payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_term: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerSeed {
    pub account: String,
    /// `Organization` or `Person`.
    pub party_type: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    pub group: String,
    /// Sales currency; F&O's default (USD) when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default)]
    pub credit_limit: Option<i64>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DvSeed {
    /// Currencies besides the organization's base currency (USD).
    #[serde(default)]
    pub currencies: Vec<CurrencySeed>,
    #[serde(default)]
    pub customer_groups: Vec<GroupSeed>,
    #[serde(default)]
    pub accounts: Vec<DvAccountSeed>,
    #[serde(default)]
    pub contacts: Vec<DvContactSeed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DvAccountSeed {
    #[serde(default)]
    pub accountnumber: Option<String>,
    pub name: String,
    pub customertypecode: i64,
    #[serde(default)]
    pub group: Option<String>,
    /// ISO code of the account's currency (the base currency when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub creditlimit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DvContactSeed {
    #[serde(default)]
    pub contactpersonid: Option<String>,
    #[serde(default)]
    pub firstname: Option<String>,
    pub lastname: String,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub sellable: bool,
}
