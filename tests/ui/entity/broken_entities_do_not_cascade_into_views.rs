//! An entity with a mistake reports that mistake only: a view that names it
//! does not add "is not a feast entity".

use feast_example_driver_stats::sources::DriverStatsSource;
use feast_runtime::prelude::*;

#[entity]
pub struct Card {
    pub card_id: f64,
}

#[batch_feature_view(entities = [Card], source = DriverStatsSource, schema = [conv_rate: Float32])]
pub fn card_stats(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

fn main() {}
