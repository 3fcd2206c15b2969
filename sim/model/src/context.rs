//! The small context a product's rules take instead of the whole world: the virtual
//! clock's now and the seeded id stream. Keeping it this small is what lets `Lcs`,
//! `PowerPlatform` and the environments stand on their own, with the world on top.

use crate::clock::Instant;
use crate::ids::Ids;

/// What an operation needs from the world besides the product's own state.
pub struct Cx<'a> {
    /// The virtual clock's now.
    pub now: Instant,
    /// The world's seeded id stream.
    pub ids: &'a mut Ids,
}
