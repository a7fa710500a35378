//! Entities: the keys features are looked up by.

use feast_runtime::entity;

/// A driver of the ride-hailing service.
#[entity]
pub struct Driver {
    pub driver_id: i64,
}
