//! The functional core of dwsim. One [`World`] owns everything a dual-write setup touches:
//! the virtual clock, the seeded id generator, the Entra tenant, the LCS project, F&O and
//! Dataverse environments, and the dual-write runtime between them. Plain structs and sync
//! functions returning [`SimResult`]: no HTTP, no async, no locks, no wall clock.

pub mod catalogue;
pub mod clock;
pub mod config;
pub mod context;
pub mod dataverse;
pub mod dualwrite;
pub mod entra;
pub mod error;
pub mod faults;
pub mod fno;
pub mod ids;
pub mod invariants;
pub mod lcs;
pub mod limits;
pub mod power_platform;
pub mod schema;
pub mod seed;
pub mod store;
pub mod world;

pub use catalogue::Catalogue;
pub use error::{ErrorKind, SimError, SimResult};
pub use seed::SeedData;
pub use store::Row;
pub use world::endstate::{self, EndState};
pub use world::{Start, World, WorldSpec};
