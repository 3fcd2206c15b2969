//! The functional core of dwsim. A [`World`] holds every product a dual-write setup
//! touches — the Entra tenant, the LCS project, Power Platform, F&O and Dataverse
//! environments — plus the dual-write runtime between them, the virtual clock, the seeded
//! id stream and the settings it runs under. Plain structs and sync functions returning
//! [`SimResult`]: no HTTP, no async, no wall clock. The one use of threads is inside a call:
//! initial sync prepares a batch of rows on the machine's cores and writes them in order
//! (see `dualwrite::initial_sync`), so callers see a plain function with the same outcome.
//!
//! Each product's rules sit on its own type and take a small context ([`context::Cx`],
//! [`dataverse::WriteContext`]) rather than the world. Dual-write, the one concern that
//! spans products, is [`dualwrite::DualWrite`]: a handle over one connection and the two
//! stores it joins, the only place a transaction crosses products. The world builds the
//! handles and delegates to them; nothing below it knows the world. Dependencies point one
//! way (a module only uses those below it):
//!
//! ```text
//!                                world
//!        ┌──────────┬─────────────┼──────────────┬───────────────┐
//!     config       lcs     power_platform      entra
//!        │          │             │                              │
//!        ├──────────┼─────────────┴─── dualwrite ────────────────┘
//!        │          │              ┌──────┼──────────┐
//!      limits    context       dataverse   fno     faults
//!                                  └──────┬──┘
//!           catalogue · schema · seed · store · row · ids · clock · error
//! ```

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
pub mod lcs;
pub mod limits;
pub mod mutants;
pub mod power_platform;
pub mod row;
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
