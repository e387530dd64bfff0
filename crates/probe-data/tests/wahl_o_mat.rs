//! The Wahl-o-Mat loader on every shared election (any layout year), the project's fictional
//! demo election, and malformed inputs.

use std::path::{Path, PathBuf};

use probe_data::wahl_o_mat::{Election, Position, DEFAULT_PARTIES};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared_elections() -> Option<PathBuf> {
    let dir = root().join("../shared/data/wahl-o-mat");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("notice: {} is absent; skipping", dir.display());
        None
    }
}

#[test]
fn every_shared_election_loads_with_the_default_six_parties() {
    let Some(dir) = shared_elections() else {
        return;
    };
    for id in [
        "2017-deutschland",
        "2019-europa",
        "2024-europa",
        "2025-deutschland",
    ] {
        let e = Election::load(&dir.join(id)).unwrap();
        assert_eq!(e.statements.len(), 38, "{id}");
        let parties = e.select_parties(&[]).unwrap();
        let names: Vec<String> = parties.iter().map(|p| Election::display_name(p)).collect();
        assert_eq!(
            names,
            DEFAULT_PARTIES
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            "{id}"
        );
        let by_statement = e.opinions_by_statement(&parties);
        assert_eq!(by_statement.len(), 38);
        assert!(
            by_statement.values().all(|ops| ops.len() == 6),
            "{id}: every party answers every statement"
        );
        let agree = e
            .opinions
            .iter()
            .filter(|o| o.position == Position::Agree)
            .count();
        assert!(agree > 0 && agree < e.opinions.len());
    }
}

#[test]
fn aliases_and_unknown_parties() {
    let Some(dir) = shared_elections() else {
        return;
    };
    let e = Election::load(&dir.join("2019-europa")).unwrap();
    let picked = e
        .select_parties(&["cdu".into(), "Die Linke".into(), "Volt".into()])
        .unwrap();
    assert_eq!(
        picked.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        vec!["CDU / CSU", "DIE LINKE", "Volt"]
    );
    let err = e
        .select_parties(&["Piratenpartei Deutschland X".into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown party `Piratenpartei Deutschland X`") && err.contains("PIRATEN"),
        "{err}"
    );
}

#[test]
fn the_fictional_demo_election_loads() {
    let e = Election::load(&root().join("data/demo/wahl-o-mat/2099-demowahl")).unwrap();
    assert_eq!(e.parties.len(), 6);
    assert_eq!(e.statements.len(), 12);
    let all: Vec<String> = e.parties.iter().map(|p| p.name.clone()).collect();
    let parties = e.select_parties(&all).unwrap();
    assert_eq!(e.opinions_by_statement(&parties).len(), 12);
    // The default six are real parties: the fictional election says it lacks them.
    assert!(e
        .select_parties(&[])
        .unwrap_err()
        .to_string()
        .contains("unknown party `CDU/CSU`"));
    // Justifications must not name the party (the probe would read the name, not the opinion).
    for o in &e.opinions {
        let p = e.parties.iter().find(|p| p.id == o.party).unwrap();
        let c = o.comment.as_deref().unwrap();
        assert!(
            !c.contains(&p.name) && !c.contains(p.longname.as_deref().unwrap()),
            "{c}"
        );
    }
}

fn copy_demo(to: &Path) {
    let from = root().join("data/demo/wahl-o-mat/2099-demowahl");
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
}

fn edit(dir: &Path, file: &str, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(file);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

#[test]
fn malformed_elections_are_clear_errors() {
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "refers to party 99",
            Box::new(|d: &Path| edit(d, "opinion.json", |v| v[0]["party"] = 99.into())),
        ),
        (
            "refers to statement 77",
            Box::new(|d: &Path| edit(d, "opinion.json", |v| v[3]["statement"] = 77.into())),
        ),
        (
            "answer code 5",
            Box::new(|d: &Path| edit(d, "opinion.json", |v| v[1]["answer"] = 5.into())),
        ),
        (
            "unknown message `Vielleicht`",
            Box::new(|d: &Path| edit(d, "answer.json", |v| v[2]["message"] = "Vielleicht".into())),
        ),
        (
            "refers to comment 4242",
            Box::new(|d: &Path| edit(d, "opinion.json", |v| v[2]["comment"] = 4242.into())),
        ),
        (
            "not a valid Wahl-o-Mat party.json",
            Box::new(|d: &Path| std::fs::write(d.join("party.json"), "[{\"id\": 0,").unwrap()),
        ),
        (
            "statement.json",
            Box::new(|d: &Path| std::fs::remove_file(d.join("statement.json")).unwrap()),
        ),
        (
            "statement 1 has an empty text",
            Box::new(|d: &Path| edit(d, "statement.json", |v| v[1]["text"] = " ".into())),
        ),
        (
            "statement id 0 appears twice",
            Box::new(|d: &Path| edit(d, "statement.json", |v| v[1]["id"] = v[0]["id"].clone())),
        ),
        (
            "party id 0 appears twice",
            Box::new(|d: &Path| edit(d, "party.json", |v| v[1]["id"] = v[0]["id"].clone())),
        ),
        (
            "has no opinion on statement",
            Box::new(|d: &Path| {
                edit(d, "opinion.json", |v| {
                    v.as_array_mut().unwrap().remove(5);
                })
            }),
        ),
    ];
    for (expected, damage) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("broken");
        copy_demo(&dir);
        damage(&dir);
        let err = Election::load(&dir).unwrap_err().to_string();
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    }
}

#[test]
fn a_missing_election_says_how_to_fetch_it() {
    let err = Election::load(Path::new("data/wahl-o-mat/2025-deutschland-missing"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("probe data fetch wahl-o-mat 2025 deutschland-missing"),
        "{err}"
    );
}

#[test]
fn a_party_without_opinions_is_an_error_when_selected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("e");
    copy_demo(&dir);
    edit(&dir, "party.json", |v| {
        v.as_array_mut()
            .unwrap()
            .push(serde_json::json!({"id": 6, "name": "Stille Partei", "longname": null}))
    });
    let e = Election::load(&dir).unwrap();
    let err = e
        .select_parties(&["Stille Partei".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no opinions"), "{err}");
}

mod prompts {
    use super::*;
    use probe_data::probe_prompts::{build_probe_prompts, TemplateSet};

    fn templates() -> TemplateSet {
        TemplateSet::load(&root().join("data/templates/probe-prompts.toml")).unwrap()
    }

    #[test]
    fn ten_or_more_templates_in_german_and_english() {
        let t = templates();
        assert!(t.templates.len() >= 10);
        assert!(
            t.templates.iter().any(|x| x.language == "de")
                && t.templates.iter().any(|x| x.language == "en")
        );
    }

    #[test]
    fn prompts_cover_every_opinion_and_template_and_hide_the_answer() {
        let Some(dir) = shared_elections() else {
            return;
        };
        let e = Election::load(&dir.join("2025-deutschland")).unwrap();
        let parties = e.select_parties(&[]).unwrap();
        let t = templates();
        let all = t.select(&[]).unwrap();
        let prompts = build_probe_prompts(&e, &parties, &all, &t.positions, 0).unwrap();
        assert_eq!(prompts.len(), 38 * 6 * all.len());
        for p in &prompts {
            assert!(!p.prompt.contains("{"), "unfilled placeholder in {}", p.id);
            // The party list names every party, and the justification no longer names it.
            let list_free = p.prompt.replacen(&p.party, "", 1);
            assert!(p.prompt.contains(&p.party));
            assert!(
                !list_free.contains(&p.party) || p.party.len() <= 3,
                "{}: justification still names {}",
                p.id,
                p.party
            );
        }
        // Deterministic.
        assert_eq!(
            prompts,
            build_probe_prompts(&e, &parties, &all, &t.positions, 0).unwrap()
        );
        assert_ne!(
            prompts[0].prompt,
            build_probe_prompts(&e, &parties, &all, &t.positions, 1).unwrap()[0].prompt
        );
    }

    #[test]
    fn bad_template_files_are_errors() {
        let bad = [
            ("[positions.de]\nagree='a'\ndisagree='b'\nneutral='c'\nmasked_party='x'\n[[template]]\nid='a'\nlanguage='de'\ntext='{statement} {position} {parties} {nope}'", "unknown placeholder {nope}"),
            ("[positions.de]\nagree='a'\ndisagree='b'\nneutral='c'\nmasked_party='x'\n[[template]]\nid='a'\nlanguage='fr'\ntext='{statement} {position} {parties}'", "no [positions.fr]"),
            ("[positions.de]\nagree='a'\ndisagree='b'\nneutral='c'\nmasked_party='x'\n[[template]]\nid='a'\nlanguage='de'\ntext='{statement}'", "lacks {position}"),
        ];
        for (text, expected) in bad {
            let err = TemplateSet::parse(text).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }
}

/// The audit (`probe data audit`) finds no party name or self-reference of the six parties
/// left in the masked statements and justifications of any shared election.
#[test]
fn masked_prompts_of_every_shared_election_name_no_party() {
    let Some(dir) = shared_elections() else {
        return;
    };
    let mut leftovers = Vec::new();
    for id in [
        "2017-deutschland",
        "2019-europa",
        "2024-europa",
        "2025-deutschland",
    ] {
        let e = Election::load(&dir.join(id)).unwrap();
        let parties = e.select_parties(&[]).unwrap();
        for l in probe_data::probe_prompts::audit_prompts(&e, &parties, "[Partei]") {
            leftovers.push(format!(
                "{id} {} #{} {}: `{}` ({}) in …{}…",
                l.party, l.statement, l.field, l.text, l.names, l.context
            ));
        }
    }
    assert!(
        leftovers.is_empty(),
        "{} left:\n{}",
        leftovers.len(),
        leftovers.join("\n")
    );
}
