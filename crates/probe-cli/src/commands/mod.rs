pub mod compare;
pub mod extract;
pub mod generate;
pub mod inspect;
pub mod run_with_cache;
