//! `probe-report`: comparisons of model distributions with survey references (`compare`).

pub mod compare;
