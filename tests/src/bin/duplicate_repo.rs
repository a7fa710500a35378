//! A feature repo with two entities named `driver`: the registry must refuse
//! it and name both definitions' locations.

#![allow(dead_code, unreachable_pub)]

mod first {
    use feast_runtime::entity;

    #[entity]
    pub struct Driver {
        pub driver_id: i64,
    }
}

mod second {
    use feast_runtime::entity;

    #[entity(name = "driver")]
    pub struct Chauffeur {
        pub chauffeur_id: i64,
    }
}

fn main() -> std::process::ExitCode {
    feast_runtime::cli::main()
}
