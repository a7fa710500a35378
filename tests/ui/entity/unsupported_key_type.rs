use feast_runtime::entity;

#[entity]
pub struct Location {
    pub latitude: f64,
}

fn main() {}
