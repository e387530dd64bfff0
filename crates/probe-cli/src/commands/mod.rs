pub mod compare;
pub mod data;
pub mod extract;
pub mod generate;
pub mod inspect;
pub mod run_with_cache;
pub mod train;
