//! Model-based test of live sync: proptest-state-machine generates sequences of writes on
//! both sides (customer groups, and customers as accounts and contacts, with descriptions and
//! names that differ only in letter case), map actions on the three maps (pause, resume,
//! stop, run), legal entities removed from and added back to the connection, injected faults
//! and clock steps, in three companies; each runs against the servers through
//! `dwsim_harness::model_based::run_case`, which compares every step with the reference
//! model and checks the invariants. A failure is shrunk, written as a replay bundle
//! (`dwsim replay`) and named in the panic message.
//!
//! `PROPTEST_CASES` sets the case count (default 8, up to 30 steps each);
//! `DWSIM_MB_TRANSPORT=http` runs over real HTTP instead of in-process.

use dwsim_harness::model_based::{
    run_case, Bundle, Carrier, Model, Op, ACCOUNTS_MAP, COMPANIES, CONTACTS_MAP, DESCRIPTIONS,
    GROUPS, MAP, NAMES, ORGANISATIONS, PERSONS,
};
use dwsim_model::dualwrite::Side;
use dwsim_model::faults::FaultKind;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{
    Config, FailurePersistence, FileFailurePersistence, TestError, TestRng, TestRunner,
};
use proptest_state_machine::ReferenceStateMachine;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

const MAX_STEPS: usize = 30;

struct LiveSync;

fn pick(items: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    proptest::sample::select(items).prop_map(str::to_string)
}

fn write() -> impl Strategy<Value = (String, String, String)> + Clone {
    (pick(&COMPANIES), pick(&GROUPS), pick(&DESCRIPTIONS))
}

/// A pool map for a map action: mostly the customer groups'.
fn map() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => Just(MAP.to_string()),
        1 => Just(ACCOUNTS_MAP.to_string()),
        1 => Just(CONTACTS_MAP.to_string()),
    ]
}

fn account() -> impl Strategy<Value = String> + Clone {
    prop_oneof![pick(&ORGANISATIONS), pick(&PERSONS)]
}

/// A customer write: company, account, name, group.
fn customer() -> impl Strategy<Value = (String, String, String, String)> + Clone {
    (pick(&COMPANIES), account(), pick(&NAMES), pick(&GROUPS))
}

fn fault() -> BoxedStrategy<Op> {
    let dv = (
        prop_oneof![Just(FaultKind::PluginFailure), Just(FaultKind::Throttling)],
        prop_oneof![
            Just(None),
            Just(Some("msdyn_customergroup".to_string())),
            Just(Some("accounts".to_string())),
            Just(Some("contacts".to_string()))
        ],
    )
        .prop_map(|(kind, table)| (Side::Dataverse, kind, table));
    let fno = prop_oneof![
        Just(None),
        Just(Some("CustomerGroups".to_string())),
        Just(Some("CustomersV3".to_string()))
    ]
    .prop_map(|table| (Side::Fno, FaultKind::InfologWriteFailure, table));
    (prop_oneof![dv, fno], 1u32..3)
        .prop_map(|((side, kind, table), count)| Op::InjectFault {
            side,
            table,
            count,
            kind,
        })
        .boxed()
}

impl ReferenceStateMachine for LiveSync {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        (0u64..1000).prop_map(Model::new).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Op> {
        let mut options: Vec<(u32, BoxedStrategy<Op>)> = vec![
            (
                6,
                write()
                    .prop_map(|(company, group, description)| Op::FnoCreate {
                        company,
                        group,
                        description,
                    })
                    .boxed(),
            ),
            (
                6,
                write()
                    .prop_map(|(company, group, description)| Op::DvCreate {
                        company,
                        group,
                        description,
                    })
                    .boxed(),
            ),
            (
                1,
                write()
                    .prop_map(|(company, group, description)| Op::FnoUpdate {
                        company,
                        group,
                        description,
                    })
                    .boxed(),
            ),
            (
                1,
                (pick(&COMPANIES), pick(&GROUPS))
                    .prop_map(|(company, group)| Op::FnoDelete { company, group })
                    .boxed(),
            ),
            (
                1,
                customer()
                    .prop_map(|(company, account, name, group)| Op::FnoCustomerCreate {
                        company,
                        account,
                        name,
                        group,
                    })
                    .boxed(),
            ),
            (
                1,
                customer()
                    .prop_map(|(company, account, name, group)| Op::FnoCustomerUpdate {
                        company,
                        account,
                        name,
                        group,
                    })
                    .boxed(),
            ),
            (
                1,
                (pick(&COMPANIES), account())
                    .prop_map(|(company, account)| Op::FnoCustomerDelete { company, account })
                    .boxed(),
            ),
            (
                2,
                pick(&COMPANIES)
                    .prop_map(|company| Op::RemoveLegalEntity { company })
                    .boxed(),
            ),
            (
                1,
                (pick(&COMPANIES), any::<bool>())
                    .prop_map(|(company, skip_initial_writes)| Op::AddLegalEntity {
                        company,
                        skip_initial_writes,
                    })
                    .boxed(),
            ),
            (4, fault()),
            (2, map().prop_map(|map| Op::Pause { map }).boxed()),
            (2, map().prop_map(|map| Op::Resume { map }).boxed()),
            (2, map().prop_map(|map| Op::Stop { map }).boxed()),
            (
                3,
                (prop_oneof![Just(Side::Dataverse), Just(Side::Fno)], map())
                    .prop_map(|(master, map)| Op::Run { master, map })
                    .boxed(),
            ),
            (
                1,
                (1i64..180)
                    .prop_map(|minutes| Op::AdvanceClock { minutes })
                    .boxed(),
            ),
        ];
        // A stopped map mostly runs again, with either master.
        let stopped = state.stopped_maps();
        if !stopped.is_empty() {
            options.push((
                2,
                (
                    prop_oneof![Just(Side::Dataverse), Just(Side::Fno)],
                    proptest::sample::select(stopped),
                )
                    .prop_map(|(master, map)| Op::Run { master, map })
                    .boxed(),
            ));
        }
        // A company taken out of the connection mostly comes back, with or without initial
        // writes, while there is something to do.
        let out = state.disconnected();
        if !out.is_empty() {
            options.push((
                4,
                (proptest::sample::select(out), any::<bool>())
                    .prop_map(|(company, skip_initial_writes)| Op::AddLegalEntity {
                        company,
                        skip_initial_writes,
                    })
                    .boxed(),
            ));
        }
        // Updates and deletes mostly find their row, and customers mostly refer to a group
        // their company has, so that most writes go through.
        let groups = state.fno_keys();
        if !groups.is_empty() {
            let target = proptest::sample::select(groups.clone());
            options.push((
                4,
                (target.clone(), pick(&DESCRIPTIONS))
                    .prop_map(|((company, group), description)| Op::FnoUpdate {
                        company,
                        group,
                        description,
                    })
                    .boxed(),
            ));
            options.push((
                2,
                target
                    .prop_map(|(company, group)| Op::FnoDelete { company, group })
                    .boxed(),
            ));
            options.push((
                4,
                (proptest::sample::select(groups), account(), pick(&NAMES))
                    .prop_map(|((company, group), account, name)| Op::FnoCustomerCreate {
                        company,
                        account,
                        name,
                        group,
                    })
                    .boxed(),
            ));
        }
        let customers = state.fno_customer_targets();
        if !customers.is_empty() {
            options.push((
                4,
                (proptest::sample::select(customers), pick(&NAMES))
                    .prop_map(|((company, account, group), name)| Op::FnoCustomerUpdate {
                        company,
                        account,
                        name,
                        group,
                    })
                    .boxed(),
            ));
        }
        let keys = state.dv_keys();
        if !keys.is_empty() {
            let target = proptest::sample::select(keys);
            options.push((
                4,
                (target.clone(), pick(&DESCRIPTIONS))
                    .prop_map(|((company, group), description)| Op::DvUpdate {
                        company,
                        group,
                        description,
                    })
                    .boxed(),
            ));
            options.push((
                2,
                target
                    .clone()
                    .prop_map(|(company, group)| Op::DvDelete { company, group })
                    .boxed(),
            ));
            options.push((
                4,
                (target, account(), pick(&NAMES))
                    .prop_map(|((company, group), account, name)| Op::DvCustomerCreate {
                        company,
                        account,
                        name,
                        group,
                    })
                    .boxed(),
            ));
        }
        let customers = state.dv_customer_targets();
        if !customers.is_empty() {
            let target = proptest::sample::select(customers);
            options.push((
                3,
                (target.clone(), pick(&NAMES))
                    .prop_map(|((company, account, group), name)| Op::DvCustomerUpdate {
                        company,
                        account,
                        name,
                        group,
                    })
                    .boxed(),
            ));
        }
        let customers = state.dv_customer_keys();
        if !customers.is_empty() {
            options.push((
                1,
                proptest::sample::select(customers)
                    .prop_map(|(company, account)| Op::DvCustomerDelete { company, account })
                    .boxed(),
            ));
        }
        Union::new_weighted(options).boxed()
    }

    fn preconditions(state: &Model, op: &Op) -> bool {
        state.allows(op)
    }

    fn apply(mut state: Model, op: &Op) -> Model {
        state.apply(op);
        state
    }
}

type Case = (Model, Vec<Op>, Option<Arc<AtomicUsize>>);

/// A shrunk failure: why, the starting model (its seed), and the steps.
struct Found {
    reason: String,
    model: Model,
    ops: Vec<Op>,
}

/// Runs generated cases; answers the shrunk failure, if any.
fn search(config: Config) -> Option<Found> {
    // A fixed RNG: the same cases every run, so a CI failure replays locally as it is.
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let carrier = Carrier::from_env();
    let result = runner.run(
        &LiveSync::sequential_strategy(1..=MAX_STEPS),
        |(model, ops, seen): Case| {
            let outcome = run_case(model.seed, &ops, carrier, seen.as_deref())
                .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
            match outcome.failure {
                Some(f) => Err(TestCaseError::fail(f)),
                None => Ok(()),
            }
        },
    );
    match result {
        Ok(()) => None,
        Err(TestError::Fail(reason, (model, ops, _))) => {
            let ops = minimise(&model, ops, carrier);
            Some(Found {
                reason: reason.to_string(),
                model,
                ops,
            })
        }
        Err(TestError::Abort(reason)) => panic!("the model-based search aborted: {reason}"),
    }
}

/// proptest-state-machine deletes steps in one pass from the back, before it simplifies
/// them, so a step that only became redundant later stays. Delete steps again until no
/// single deletion keeps the case failing.
fn minimise(model: &Model, mut ops: Vec<Op>, carrier: Carrier) -> Vec<Op> {
    let allowed = |ops: &[Op]| {
        let mut m = model.clone();
        ops.iter().all(|op| {
            let ok = m.allows(op);
            m.apply(op);
            ok
        })
    };
    let fails =
        |ops: &[Op]| run_case(model.seed, ops, carrier, None).map_or(true, |o| o.failure.is_some());
    loop {
        let mut shrunk = false;
        for i in (0..ops.len()).rev() {
            let mut candidate = ops.clone();
            candidate.remove(i);
            if allowed(&candidate) && fails(&candidate) {
                ops = candidate;
                shrunk = true;
            }
        }
        if !shrunk {
            return ops;
        }
    }
}

fn config(persistence: Option<Box<dyn FailurePersistence>>) -> Config {
    Config {
        cases: cases(),
        failure_persistence: persistence,
        max_shrink_iters: 1024,
        ..Config::default()
    }
}

/// Runs the shrunk case once more, recording its transcript, and writes its bundle.
fn bundle(name: &str, model: &Model, ops: &[Op]) -> (Bundle, std::path::PathBuf) {
    let carrier = Carrier::from_env();
    let outcome = run_case(model.seed, ops, carrier, None).expect("the shrunk case runs");
    let bundle = Bundle::new(name, model.seed, ops, carrier, &outcome);
    let path = bundle.write().expect("bundle written");
    (bundle, path)
}

#[test]
fn live_sync_matches_the_reference_model() {
    // The broken runtime's failures would only replay as passes on the real one.
    let persistence: Option<Box<dyn FailurePersistence>> =
        if cfg!(any(feature = "broken-rollback", feature = "mutants")) {
            None
        } else {
            Some(Box::new(FileFailurePersistence::Direct(
                "proptest-regressions/model_based.txt",
            )))
        };
    if let Some(Found { reason, model, ops }) = search(config(persistence)) {
        let (bundle, path) = bundle("live_sync_matches_the_reference_model", &model, &ops);
        let steps: Vec<String> = ops.iter().map(Op::to_string).collect();
        panic!(
            "live sync diverges from the reference model (seed {}): {}\nsteps:\n  {}\nreplay: cargo run -- replay {}",
            model.seed,
            bundle.failure.unwrap_or(reason),
            steps.join("\n  "),
            path.display()
        );
    }
}

/// A fixed case through faults, a pause and its catch-up (with a delete), a customer, and a
/// legal entity removed and added back replays from its bundle with the same transcript,
/// exchange for exchange.
#[test]
fn a_bundle_replays_identically() {
    // Written as a bundle stores operations.
    let ops: Vec<Op> = serde_json::from_value(serde_json::json!([
        {"op": "injectFault", "side": "Dataverse", "table": "msdyn_customergroups", "count": 1, "kind": "pluginFailure"},
        {"op": "fnoCreate", "company": "USMF", "group": "MB1", "description": "Alpha"},
        {"op": "fnoCreate", "company": "USMF", "group": "MB1", "description": "Alpha"},
        {"op": "pause"},
        {"op": "dvUpdate", "company": "USMF", "group": "MB1", "description": "Beta"},
        {"op": "injectFault", "side": "FinanceAndOperations", "count": 1, "kind": "infologWriteFailure"},
        {"op": "resume"},
        {"op": "advanceClock", "minutes": 90},
        {"op": "stop"},
        {"op": "dvCreate", "company": "DEMF", "group": "MB2", "description": "Gamma"},
        {"op": "run", "master": "Dataverse"},
        {"op": "fnoCustomerCreate", "company": "DEMF", "account": "MBP1", "name": "Contoso", "group": "MB2"},
        {"op": "dvCustomerUpdate", "company": "DEMF", "account": "MBP1", "name": "contoso", "group": "MB2"},
        {"op": "pause"},
        {"op": "dvDelete", "company": "DEMF", "group": "MB2"},
        {"op": "removeLegalEntity", "company": "DEMF"},
        {"op": "resume"},
        {"op": "removeLegalEntity", "company": "DEMF"},
        {"op": "addLegalEntity", "company": "DEMF", "skipInitialWrites": false},
    ]))
    .expect("operations");
    let model = Model::new(7);
    let (bundle, path) = bundle("a_bundle_replays_identically", &model, &ops);
    // It fails only on the broken runtime: the first create keeps its F&O row.
    assert_eq!(
        bundle.failure.is_some(),
        cfg!(feature = "broken-rollback"),
        "{:?}; see {}",
        bundle.failure,
        path.display()
    );
    assert!(bundle.transcript.iter().any(|x| x.status == 500));
    let replay = dwsim_harness::replay::replay(&path, None).expect("replay runs");
    assert!(
        replay.same_transcript(),
        "the replay of {} differs from its transcript",
        path.display()
    );
}

/// With the `broken-rollback` runtime (the originating write survives a failed counterpart
/// write) the search finds a failure, shrinks it to a few steps, and its bundle replays
/// the same failure.
#[cfg(feature = "broken-rollback")]
#[test]
fn finds_and_shrinks_the_broken_rollback() {
    let Some(Found { reason, model, ops }) = search(config(None)) else {
        panic!("the model-based search did not find the broken rollback");
    };
    let (bundle, path) = bundle("finds_and_shrinks_the_broken_rollback", &model, &ops);
    let steps: Vec<String> = ops.iter().map(Op::to_string).collect();
    eprintln!(
        "found (seed {}): {reason}\nshrunk to:\n  {}\nbundle: {}",
        model.seed,
        steps.join("\n  "),
        path.display()
    );
    assert!(ops.len() <= 3, "not shrunk far enough: {steps:?}");
    assert!(
        ops.iter().any(|o| matches!(o, Op::InjectFault { .. })),
        "a rollback bug needs a failing counterpart write: {steps:?}"
    );
    assert!(bundle.failure.is_some(), "the shrunk case no longer fails");
    let replay = dwsim_harness::replay::replay(&path, None).expect("replay runs");
    assert!(
        replay.same_transcript(),
        "the replay differs from {}",
        path.display()
    );
    assert_eq!(replay.outcome.failure, bundle.failure);
}
