use feast_example_driver_stats::entities::Driver;
use feast_runtime::prelude::*;

#[batch_feature_view(entities = [Driver])]
pub fn conv(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

fn main() {}
