//! The personas of `scale` and `eval --vote`: a spec's grid, filtered, or explicit personas
//! from a JSONL file.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use probe_data::personas::{GridFilter, Persona, PersonaSpec};

/// Which personas to run. The default is the paper's whole grid (built in).
#[derive(Debug, Clone)]
pub struct PersonaSelection {
    /// Persona spec (TOML): attributes, values and the persona description.
    pub spec: PathBuf,
    /// Explicit personas (JSONL with optional survey weights) instead of the spec's grid.
    pub personas: Option<PathBuf>,
    /// Keep only some values of the grid: `["year=tomorrow", "age=18-24,25-34"]`.
    pub filter: Vec<String>,
}

impl Default for PersonaSelection {
    fn default() -> Self {
        PersonaSelection {
            spec: PathBuf::from("data/personas/paper-grid.toml"),
            personas: None,
            filter: Vec::new(),
        }
    }
}

impl PersonaSelection {
    pub fn load_spec(&self) -> Result<PersonaSpec> {
        Ok(PersonaSpec::load(&self.spec)?)
    }

    /// The grid personas the filter keeps, or those of the JSONL file.
    pub fn select(&self, spec: &PersonaSpec) -> Result<Vec<Persona>> {
        let filter = GridFilter::parse(&self.filter).map_err(|e| anyhow!("--where {e}"))?;
        match &self.personas {
            Some(path) => {
                if !filter.is_empty() {
                    bail!("--where filters the grid; it cannot be combined with --personas");
                }
                Ok(spec.read_jsonl(path)?)
            }
            None => spec
                .grid(&filter)
                .map_err(|e| anyhow!("{}: {e}", self.spec.display())),
        }
    }
}
