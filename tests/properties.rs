//! Property tests: generated seed data for every scenario. Each case runs the scenario
//! in-process and checks every invariant; it runs again in-process and over HTTP, and all
//! three end states must be identical. proptest shrinks a failure to the smallest data set.
//! `PROPTEST_CASES` sets the case count (default 6 per scenario), `DWSIM_PROPERTY_ROWS` the
//! most rows per generated table (default 24), `PROPTEST_RNG_SEED` replays one run (the
//! seed varies per run otherwise). A long sweep, split across machines:
//! `PROPTEST_CASES=500 DWSIM_PROPERTY_ROWS=200 cargo nextest run --release --test properties
//! --partition count:K/N` on machine K of N (each machine takes whole scenarios).

use dwsim_harness::runner::{self, Options, TransportKind};
use dwsim_harness::scenario::Scenario;
use dwsim_model::seed::{
    CompanySeed, CurrencySeed, CustomerSeed, DvAccountSeed, DvContactSeed, DvSeed, FnoSeed,
    GroupSeed, SeedData, VendorSeed,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRng, TestRunner};
use std::path::Path;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

/// The most rows a generated table gets: `DWSIM_PROPERTY_ROWS` (default 24; a long sweep
/// uses hundreds). Keys are drawn from twice as many values, so that both products often
/// hold the same key (a conflict for initial sync).
fn max_rows() -> usize {
    std::env::var("DWSIM_PROPERTY_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

fn key_space() -> u16 {
    (max_rows() * 2).clamp(4, 9999) as u16
}

/// Names as people type them: any letter case, accents and other scripts, digits,
/// apostrophes and hyphens, up to `max` characters. Callers pass the tighter of the two
/// products' column lengths, so values reach the longest both sides accept.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(
        "[A-Za-zÀ-ÖØ-öø-ÿĀ-žΑ-ωА-я一-龥][A-Za-z0-9À-ÖØ-öø-ÿĀ-žΑ-ωА-я一-龥 '-]{{1,{}}}",
        max.saturating_sub(1).max(2)
    ))
    .expect("regex")
}

fn currency(code: &str, name: &str) -> CurrencySeed {
    CurrencySeed {
        code: code.into(),
        name: name.into(),
        exchange_rate: None,
    }
}

/// F&O currencies besides USD: always EUR (the generated customers and vendors may use it),
/// sometimes GBP and the `999` currency the map's filter leaves out.
fn fno_currencies() -> impl Strategy<Value = Vec<CurrencySeed>> {
    proptest::sample::subsequence(vec![("GBP", "Pound sterling"), ("999", "Reporting")], 0..=2)
        .prop_map(|extra| {
            std::iter::once(("EUR", "Euro"))
                .chain(extra)
                .map(|(c, n)| currency(c, n))
                .collect()
        })
}

/// A currency every generated F&O has: none (F&O's default, USD), USD or EUR.
fn fno_currency() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just("USD".to_string()),
        Just("EUR".to_string())
    ])
}

fn groups() -> impl Strategy<Value = Vec<GroupSeed>> {
    // Descriptions up to F&O's 60 characters, or empty (no description).
    let description = prop_oneof![1 => Just(String::new()), 4 => text(60)];
    proptest::collection::btree_map("[0-9]{2}", description, 1..4).prop_map(|m| {
        m.into_iter()
            .map(|(id, description)| GroupSeed {
                id,
                description,
                payment_term: None,
            })
            .collect()
    })
}

/// Organizations get accounts `US-0nn`, persons `P-0nn`, so an account and a contact never
/// claim the same F&O customer key.
fn customers(groups: Vec<GroupSeed>) -> impl Strategy<Value = Vec<CustomerSeed>> {
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    proptest::collection::btree_map(
        0u16..key_space(),
        (
            any::<bool>(),
            text(100),
            text(25),
            0..ids.len(),
            proptest::option::of(0i64..100_000),
            any::<bool>(),
            fno_currency(),
        ),
        0..max_rows(),
    )
    .prop_map(move |m| {
        m.into_iter()
            .map(
                |(n, (person, name, last, g, credit, email, currency))| CustomerSeed {
                    account: if person {
                        format!("P-{n:03}")
                    } else {
                        format!("US-{n:03}")
                    },
                    party_type: if person { "Person" } else { "Organization" }.into(),
                    name: (!person).then(|| name.clone()),
                    first_name: person.then(|| name.chars().take(25).collect()),
                    last_name: person.then(|| last.clone()),
                    group: ids[g].clone(),
                    currency,
                    credit_limit: credit,
                    email: email.then(|| format!("c{n}@example.com")),
                },
            )
            .collect()
    })
}

fn company(id: &'static str, index: usize) -> impl Strategy<Value = CompanySeed> {
    (text(60), groups()).prop_flat_map(move |(name, groups)| {
        let vendor_currencies = proptest::collection::vec(fno_currency(), 12);
        (customers(groups.clone()), vendor_currencies).prop_map(
            move |(customers, vendor_currencies)| CompanySeed {
                id: id.to_string(),
                // Company names must be unique, or linking fails (a behaviour of its own).
                name: format!("{name} {index}"),
                // Reference data for the other maps, derived from the generated groups and
                // customers: terms of payment on even-numbered groups, a vendor group per
                // customer group and a vendor per organization.
                payment_terms: vec![GroupSeed {
                    id: "Net30".into(),
                    description: "Net 30 days".into(),
                    payment_term: None,
                }],
                customer_groups: groups
                    .iter()
                    .map(|g| GroupSeed {
                        payment_term: g
                            .id
                            .ends_with(['0', '2', '4', '6', '8'])
                            .then(|| "Net30".into()),
                        ..g.clone()
                    })
                    .collect(),
                vendor_groups: groups
                    .iter()
                    .map(|g| GroupSeed {
                        id: format!("V{}", g.id),
                        description: g.description.clone(),
                        payment_term: None,
                    })
                    .collect(),
                vendors: customers
                    .iter()
                    .filter(|c| c.party_type == "Organization")
                    .zip(vendor_currencies)
                    .map(|(c, currency)| VendorSeed {
                        account: format!("V-{}", c.account),
                        name: c.name.clone().unwrap_or_default(),
                        group: format!("V{}", c.group),
                        currency,
                    })
                    .collect(),
                customers,
                generate: Default::default(),
            },
        )
    })
}

/// Dataverse rows with no company. Accounts use `US-0nn` or `CRM-Ann`, contacts `P-0nn` or
/// `CRM-Pnn`; a row eligible for dual-write has a customer group. Dataverse has USD (its
/// base currency) and some of EUR and CAD; an account's currency is one of them.
fn dataverse() -> impl Strategy<Value = DvSeed> {
    let currencies =
        proptest::sample::subsequence(vec![("EUR", "Euro"), ("CAD", "Canadian Dollar")], 0..=2)
            .prop_map(|cs| {
                cs.into_iter()
                    .map(|(c, n)| currency(c, n))
                    .collect::<Vec<_>>()
            });
    (groups(), currencies).prop_flat_map(|(groups, currencies)| {
        let n = groups.len();
        let codes: Vec<String> = std::iter::once("USD".to_string())
            .chain(currencies.iter().map(|c| c.code.clone()))
            .collect();
        let nc = codes.len();
        let accounts = proptest::collection::btree_map(
            (any::<bool>(), 0u16..key_space()),
            (
                text(100),
                prop_oneof![Just(3i64), Just(3), Just(1), Just(11)],
                0..n,
                proptest::option::of(0i64..100_000),
                any::<bool>(),
                proptest::option::of(0..nc),
            ),
            0..max_rows(),
        );
        let contacts = proptest::collection::btree_map(
            (any::<bool>(), 0u16..key_space()),
            (
                proptest::option::of(text(25)),
                text(25),
                0..n,
                any::<bool>(),
                any::<bool>(),
            ),
            0..max_rows(),
        );
        (Just(groups), Just(currencies), accounts, contacts).prop_map(
            move |(groups, currencies, accounts, contacts)| DvSeed {
                currencies,
                accounts: accounts
                    .into_iter()
                    .map(
                        |((crm, k), (name, code, g, credit, numbered, cur))| DvAccountSeed {
                            accountnumber: (numbered || code == 3).then(|| {
                                if crm {
                                    format!("CRM-A{k:02}")
                                } else {
                                    format!("US-{k:03}")
                                }
                            }),
                            name,
                            customertypecode: code,
                            group: Some(groups[g].id.clone()),
                            currency: cur.map(|i| codes[i].clone()),
                            email: None,
                            creditlimit: credit,
                        },
                    )
                    .collect(),
                contacts: contacts
                    .into_iter()
                    .map(
                        |((crm, k), (first, last, g, sellable, email))| DvContactSeed {
                            contactpersonid: Some(if crm {
                                format!("CRM-P{k:02}")
                            } else {
                                format!("P-{k:03}")
                            }),
                            firstname: first,
                            lastname: last,
                            group: Some(groups[g].id.clone()),
                            email: email.then(|| format!("p{k}@example.com")),
                            sellable,
                        },
                    )
                    .collect(),
                customer_groups: groups,
                generate: Default::default(),
            },
        )
    })
}

/// The scenario files name USMF, USRT and DEMF, so the generated F&O has those companies.
fn seed_data() -> impl Strategy<Value = SeedData> {
    (
        company("USMF", 1),
        company("USRT", 2),
        company("DEMF", 3),
        fno_currencies(),
        dataverse(),
    )
        .prop_map(|(a, b, c, currencies, dataverse)| SeedData {
            fno: FnoSeed {
                companies: vec![a, b, c],
                currencies,
            },
            dataverse,
            rows: Default::default(),
        })
}

fn check_scenario(id: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{id}.toml"));
    let mut scenario = Scenario::load(&path).expect("scenario parses");
    // Counts, rows and legs are written for the demo data set; generated data is judged by
    // the invariants.
    for step in &mut scenario.steps {
        step.expect.counts = None;
        step.expect.rows = None;
        step.expect.legs = None;
    }
    // A new RNG seed every run, so that runs together cover more cases; a failure names
    // the seed (PROPTEST_RNG_SEED replays it) and is kept in proptest-regressions/, which
    // every later run tries first.
    let rng_seed = rng_seed();
    let config = Config {
        cases: cases(),
        // A broken runtime's failures (.ci/mutants) are not regressions of the real one.
        failure_persistence: if cfg!(feature = "mutants") {
            None
        } else {
            Some(Box::new(FileFailurePersistence::Direct(
                "proptest-regressions/properties.txt",
            )))
        },
        max_shrink_iters: 2048,
        ..Config::default()
    };
    let seed_bytes: Vec<u8> = rng_seed
        .to_le_bytes()
        .iter()
        .copied()
        .cycle()
        .take(32)
        .collect();
    let rng = TestRng::from_seed(config.rng_algorithm, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&(seed_data(), 0u64..1000), |(data, seed)| {
        let run = |transport| {
            runner::run(
                &scenario,
                &Options {
                    seed,
                    data: data.clone(),
                    transport,
                },
            )
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))
        };
        let first = run(TransportKind::InProcess)?;
        for o in &first.invariants {
            prop_assert!(o.passed, "{} {}: {}", id, o.name, o.detail);
        }
        let second = run(TransportKind::InProcess)?;
        prop_assert_eq!(
            &first.end_state,
            &second.end_state,
            "same seed twice differs"
        );
        let http = run(TransportKind::Http)?;
        prop_assert_eq!(dwsim_harness::same_end_state(&http, &first), Ok(()));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{id}: {e}\n(replay this run with PROPTEST_RNG_SEED={rng_seed})");
    }
}

/// `PROPTEST_RNG_SEED` when given, else a seed from the clock.
fn rng_seed() -> u64 {
    std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

#[test]
fn new_new_holds_for_generated_data() {
    check_scenario("new-new");
}

#[test]
fn new_existing_holds_for_generated_data() {
    check_scenario("new-existing");
}

#[test]
fn new_demo_new_holds_for_generated_data() {
    check_scenario("new-demo-new");
}

#[test]
fn new_demo_existing_holds_for_generated_data() {
    check_scenario("new-demo-existing");
}

#[test]
fn existing_new_holds_for_generated_data() {
    check_scenario("existing-new");
}

#[test]
fn existing_existing_holds_for_generated_data() {
    check_scenario("existing-existing");
}
