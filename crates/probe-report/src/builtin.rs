//! Election results that ship with `probe` as survey references.

use std::collections::BTreeMap;

use probe_data::cells::Cell;

/// An official result: party shares in percent, "Sonstige" holding the rest.
#[derive(Debug, Clone, Copy)]
pub struct Election {
    pub id: &'static str,
    pub description: &'static str,
    pub shares: &'static [(&'static str, f64)],
}

/// Bundestag election of 26 September 2021, second votes (Zweitstimmen), final result of the
/// Federal Returning Officer (Bundeswahlleiter), rounded to 0.1 %.
pub const BTW2021: Election = Election {
    id: "btw2021",
    description: "Bundestag election 2021, second votes (Bundeswahlleiter, final result)",
    shares: &[
        ("SPD", 25.7),
        ("CDU/CSU", 24.1),
        ("GRÜNE", 14.8),
        ("FDP", 11.5),
        ("AfD", 10.3),
        ("DIE LINKE", 4.9),
        ("Sonstige", 8.7),
    ],
};

pub const ELECTIONS: [Election; 1] = [BTW2021];

pub fn find(id: &str) -> Option<Election> {
    ELECTIONS.iter().copied().find(|e| e.id == id)
}

impl Election {
    /// The result as reference cells: everyone (`attribute=all,value=all`) and the personas of
    /// that election year (`attribute=year,value=<year>`), the scopes `probe scale` writes.
    pub fn cells(&self) -> Vec<Cell> {
        let year = self.id.trim_start_matches(|c: char| c.is_alphabetic());
        let options: Vec<String> = self.shares.iter().map(|(p, _)| p.to_string()).collect();
        let total: f64 = self.shares.iter().map(|(_, s)| s).sum();
        let reference: Vec<f64> = self.shares.iter().map(|(_, s)| s / total).collect();
        [("all", "all"), ("year", year)]
            .into_iter()
            .map(|(attribute, value)| Cell {
                labels: BTreeMap::from([
                    ("dataset".to_string(), self.id.to_string()),
                    ("attribute".to_string(), attribute.to_string()),
                    ("value".to_string(), value.to_string()),
                ]),
                options: options.clone(),
                predicted: None,
                reference: Some(reference.clone()),
                weight: None,
                ordinal: None,
                origin: None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btw2021_sums_to_100_percent() {
        let total: f64 = BTW2021.shares.iter().map(|(_, s)| s).sum();
        assert!((total - 100.0).abs() < 1e-9, "{total}");
        let cells = BTW2021.cells();
        assert_eq!(cells[1].labels["value"], "2021");
        assert!((cells[0].reference.as_ref().unwrap()[0] - 0.257).abs() < 1e-12);
    }
}
