//! `probe-report`: model distributions against survey references — `probe compare`'s joins and
//! metric tables, and `probe report`'s figures and self-contained HTML.

pub mod builtin;
pub mod compare;
pub mod figures;
pub mod report;
