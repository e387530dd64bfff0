//! The default data files, built in: `probe` reads `data/templates/probe-prompts.toml` and the
//! other defaults from the working directory when they are there (a checkout, or the user's own
//! edited copy), and otherwise uses the copy compiled into the binary, so an installed `probe`
//! works from any directory. A path that is not one of these defaults is never substituted.

use std::path::Path;

/// (path relative to the repository root, as the flags' defaults name it; contents).
pub const EMBEDDED: [(&str, &str); 5] = [
    (
        "data/templates/probe-prompts.toml",
        include_str!("../../../data/templates/probe-prompts.toml"),
    ),
    (
        "data/personas/paper-grid.toml",
        include_str!("../../../data/personas/paper-grid.toml"),
    ),
    (
        "data/personas/prompts.toml",
        include_str!("../../../data/personas/prompts.toml"),
    ),
    (
        "data/eval/prompts.toml",
        include_str!("../../../data/eval/prompts.toml"),
    ),
    (
        "data/eval/vote-prompts.toml",
        include_str!("../../../data/eval/vote-prompts.toml"),
    ),
];

/// The built-in copy of a default data file, when `path` names one exactly (as given: a
/// relative `data/...` path) and no such file exists on disk.
pub fn embedded(path: &Path) -> Option<&'static str> {
    if path.exists() {
        return None;
    }
    EMBEDDED
        .iter()
        .find(|(name, _)| Path::new(name) == path)
        .map(|(_, text)| *text)
}

/// Whether `path` can be read: it exists, or it is a built-in default.
pub fn available(path: &Path) -> bool {
    path.exists() || embedded(path).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_defaults_are_substituted_and_only_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        let here = std::env::current_dir().unwrap();
        // the repository's own copy exists from the crate's directory? No: tests run in
        // crates/probe-data, where data/ is absent, so the built-in copy answers
        assert!(here.ends_with("probe-data"), "{}", here.display());
        let text = embedded(Path::new("data/templates/probe-prompts.toml")).unwrap();
        let on_disk =
            std::fs::read_to_string(here.join("../../data/templates/probe-prompts.toml")).unwrap();
        assert_eq!(text, on_disk);
        assert!(embedded(Path::new("data/templates/other.toml")).is_none());
        assert!(embedded(&dir.path().join("data/personas/prompts.toml")).is_none());
        assert!(available(Path::new("data/eval/prompts.toml")));
        // a file that exists is read from disk, never replaced
        assert!(embedded(Path::new("Cargo.toml")).is_none());
    }
}
