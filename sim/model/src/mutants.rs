//! Deliberately broken runtimes, for showing that the test suite catches each breakage
//! (`.ci/mutants`). Only a build with the `mutants` feature can break anything: it reads
//! the mutant to apply from `DWSIM_MUTANT`. In every other build [`active`] is a constant
//! `false` and the branches it guards compile away.

/// The mutants, each a rule of `domain/dual-write.md` the runtime stops keeping.
pub const ALL: [&str; 5] = [
    // Initial sync ignores the chosen master: Dataverse always wins conflicts.
    "master-ignored",
    // Live sync ignores whether a row's company is in the connection.
    "company-membership-ignored",
    // Resume replays the paused queue newest first.
    "queue-replayed-in-reverse",
    // Both sides' source filters pass every row.
    "source-filter-ignored",
    // Lookups resolve by key in any company, not the row's own.
    "lookup-company-ignored",
];

/// Whether the mutant `name` is applied.
#[cfg(feature = "mutants")]
pub fn active(name: &str) -> bool {
    debug_assert!(ALL.contains(&name), "unknown mutant {name}");
    std::env::var("DWSIM_MUTANT").is_ok_and(|m| m == name)
}

/// Whether the mutant `name` is applied: never, without the `mutants` feature.
#[cfg(not(feature = "mutants"))]
#[inline(always)]
pub fn active(_name: &str) -> bool {
    false
}
