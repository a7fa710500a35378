use feast_runtime::entity;

#[entity(join_keys = ["driver_id"], nmae = "driver")]
pub struct Driver {
    pub driver_id: i64,
}

fn main() {}
