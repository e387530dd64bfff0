pub mod compare;
pub mod generate;
pub mod inspect;
pub mod run_with_cache;
