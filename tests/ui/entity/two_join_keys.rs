use feast_runtime::entity;

#[entity]
pub struct Trip {
    pub driver_id: i64,
    pub rider_id: i64,
}

fn main() {}
