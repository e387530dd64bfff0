//! The voting question of the persona grid: groups, which steering asks whom, the German
//! persona prompts and the survey-group few-shot examples.

use std::collections::BTreeMap;
use std::path::Path;

use probe_data::cells::Cell;
use probe_data::personas::{GridFilter, PersonaSpec};
use probe_eval::prompts::{select_scope_shots, Method, Steering, Templates};
use probe_eval::questions::QuestionSet;
use probe_eval::run::{units, EvalParams};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn parties() -> Vec<String> {
    ["SPD", "CDU/CSU", "GRÜNE", "FDP", "AfD", "DIE LINKE"]
        .map(String::from)
        .to_vec()
}

fn setup(filter: &[&str]) -> (PersonaSpec, Templates, QuestionSet) {
    let spec = PersonaSpec::load(&root().join("data/personas/paper-grid.toml")).unwrap();
    let templates = Templates::load(&root().join("data/eval/vote-prompts.toml")).unwrap();
    let filter: Vec<String> = filter.iter().map(|s| s.to_string()).collect();
    let personas = spec.grid(&GridFilter::parse(&filter).unwrap()).unwrap();
    let set = QuestionSet::vote(
        "vote-test",
        templates.vote_question.as_deref().unwrap(),
        &parties(),
        &personas,
        &spec,
        templates.language.as_deref().unwrap(),
    )
    .unwrap();
    (spec, templates, set)
}

fn survey_cell(attribute: &str, value: &str, reference: Vec<f64>) -> Cell {
    Cell {
        labels: BTreeMap::from([
            ("attribute".to_string(), attribute.to_string()),
            ("value".to_string(), value.to_string()),
        ]),
        options: parties(),
        predicted: None,
        reference: Some(reference),
        weight: Some(100.0),
        ordinal: None,
        origin: None,
    }
}

#[test]
fn population_is_asked_unsteered_and_personas_steered() {
    // 2 genders × 2 years of one age/education/income/employment/ideology/region
    let (_, _, set) = setup(&[
        "age=45-54",
        "education=abitur",
        "income=middle",
        "employment=employed",
        "ideology=centre",
        "region=east",
    ]);
    let q = &set.questions[0];
    assert_eq!(q.options, parties());
    // one population per year (the question names {year}), then the 4 personas
    let populations: Vec<&str> = q
        .groups
        .iter()
        .filter(|g| g.persona.as_ref().unwrap().population)
        .map(|g| g.group.as_str())
        .collect();
    assert_eq!(populations, ["year=2021", "year=tomorrow"]);
    assert_eq!(q.groups.len(), 2 + 4);
    assert!(q.groups.iter().all(|g| g.reference().is_none()));
    let params = EvalParams::default();
    let all = units(&set, &params);
    // per method: none × 2 populations + persona × 4 + fewshot × 4
    assert_eq!(all.len(), 4 * (2 + 4 + 4));
    for u in &all {
        let population = q.groups[u.group].persona.as_ref().unwrap().population;
        assert_eq!(population, u.steering == Steering::None, "{u:?}");
    }
}

#[test]
fn persona_prompts_carry_the_german_description_and_the_year() {
    let (_, t, set) = setup(&[
        "age=45-54",
        "gender=female",
        "education=abitur",
        "income=middle",
        "employment=employed",
        "ideology=centre",
        "region=east",
        "year=2021",
    ]);
    let q = &set.questions[0];
    let persona = q.groups.iter().find(|g| g.attribute == "persona").unwrap();
    let p = t
        .render(Method::Verbalize, Steering::Persona, q, persona, &[], 30)
        .unwrap();
    assert!(
        p.starts_with(
            "Versetzen Sie sich in folgende Person: „Ich bin eine Frau, 45 bis 54 Jahre alt, \
             habe das Abitur und ein mittleres Haushaltseinkommen. Ich bin erwerbstätig, stehe \
             politisch in der Mitte und lebe in Ostdeutschland.“"
        ),
        "{p}"
    );
    assert!(
        p.contains("Frage: Welche Partei wählen Sie bei der Bundestagswahl 2021 mit Ihrer Zweitstimme?\nA. SPD\nB. CDU/CSU\n"),
        "{p}"
    );
    assert!(
        p.contains("wie viel Prozent von Personen wie dieser"),
        "{p}"
    );
    assert!(
        !p.contains('{') || p.contains("{\"A\""),
        "unfilled slot: {p}"
    );
    let population = &q.groups[0];
    let p = t
        .render(Method::Sequence, Steering::None, q, population, &[], 30)
        .unwrap();
    assert!(p.starts_with("Frage: Welche Partei wählen Sie bei der Bundestagswahl 2021"));
    assert!(p.contains("von 30 verschiedenen Wahlberechtigten"), "{p}");
    // few-shot steering without survey groups is refused, not silently unsteered
    assert!(t
        .render(Method::Logp, Steering::Fewshot, q, persona, &[], 30)
        .is_err());
}

#[test]
fn few_shot_examples_are_the_persona_s_own_survey_groups_most_distinct_first() {
    let (spec, t, mut set) = setup(&[
        "age=45-54",
        "gender=female",
        "education=abitur",
        "income=middle",
        "employment=employed",
        "ideology=centre",
        "region=east",
        "year=2021",
    ]);
    let reference = vec![
        survey_cell("all", "all", vec![0.25, 0.25, 0.15, 0.1, 0.15, 0.1]),
        // the persona's groups: TV to everyone 0.30, 0.15, 0.005, and 0.30 again
        survey_cell("region", "east", vec![0.2, 0.15, 0.05, 0.05, 0.35, 0.2]),
        survey_cell("gender", "female", vec![0.3, 0.2, 0.25, 0.1, 0.1, 0.05]),
        survey_cell("age", "45-54", vec![0.25, 0.25, 0.15, 0.1, 0.145, 0.105]),
        survey_cell("ideology", "centre", vec![0.2, 0.15, 0.05, 0.05, 0.35, 0.2]),
        // not the persona's group
        survey_cell("gender", "male", vec![0.1, 0.1, 0.1, 0.1, 0.5, 0.1]),
    ];
    set.set_scopes(&reference, &spec, "de");
    let q = &set.questions[0];
    let persona = q.groups.iter().find(|g| g.attribute == "persona").unwrap();
    let population = set.scopes.iter().find(|s| s.attribute == "all").unwrap();
    let shots = select_scope_shots(q, persona, &set.scopes, Some(&population.distribution), 5);
    let names: Vec<&str> = shots.iter().map(|s| s.group.unwrap()).collect();
    // ties by name: ideology before region, which duplicates it (TV 0 < 0.02) and is skipped
    assert_eq!(
        names,
        [
            "ideology: in der Mitte",
            "gender: eine Frau",
            "age: 45 bis 54 Jahre alt"
        ]
    );
    let p = t
        .render(Method::Logp, Steering::Fewshot, q, persona, &shots, 30)
        .unwrap();
    assert!(
        p.contains("Gruppe „ideology: in der Mitte“: {\"A\": 20, \"B\": 15, \"C\": 5, \"D\": 5, \"E\": 35, \"F\": 20}"),
        "{p}"
    );
    assert!(p.contains("Versetzen Sie sich nun in folgende Person: „Ich bin eine Frau"));
    let p = t
        .render(Method::Sequence, Steering::Fewshot, q, persona, &shots, 20)
        .unwrap();
    let line = p
        .lines()
        .find(|l| l.starts_with("Gruppe „gender: eine Frau“: "))
        .unwrap();
    let seq = line.rsplit(' ').next().unwrap();
    assert_eq!(seq.len(), 20);
    assert_eq!(seq.matches('A').count(), 6);
}

#[test]
fn bad_vote_inputs_are_clear_errors() {
    let spec = PersonaSpec::load(&root().join("data/personas/paper-grid.toml")).unwrap();
    let personas = spec
        .grid(&GridFilter::parse(&["age=18-24".to_string()]).unwrap())
        .unwrap();
    let e = QuestionSet::vote(
        "v",
        "Wen wählen Sie {jahr}?",
        &parties(),
        &personas,
        &spec,
        "de",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`{jahr}`") && e.contains("not an attribute"),
        "{e}"
    );
    let e = QuestionSet::vote("v", "Wen?", &parties()[..1], &personas, &spec, "de")
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 parties"), "{e}");
    let e = QuestionSet::vote("v", "Wen?", &parties(), &personas, &spec, "fr")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no `fr` description"), "{e}");
    let e = QuestionSet::vote("v", "Wen?", &parties(), &[], &spec, "de")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no personas"), "{e}");
}

/// Few-shot examples of the voting question may not show a distribution the cells are scored
/// against: the scored survey itself as their source is refused, so is another source one of
/// whose groups has exactly a scored group's distribution; a genuinely other election is taken
/// and named in the prompt.
#[test]
fn few_shot_examples_that_show_the_scored_target_are_refused() {
    let (spec, _, mut set) = setup(&["age=45-54", "gender=female", "year=2021"]);
    let scored = vec![
        survey_cell("all", "all", vec![0.25, 0.25, 0.15, 0.1, 0.15, 0.1]),
        survey_cell("gender", "female", vec![0.3, 0.2, 0.25, 0.1, 0.1, 0.05]),
        survey_cell("age", "45-54", vec![0.25, 0.25, 0.15, 0.1, 0.145, 0.105]),
    ];
    let e = set
        .set_shot_scopes(&scored, &scored, "survey", &spec, "de", 0.02)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("answer in the prompt") && e.contains("gender=female"),
        "{e}"
    );
    // another election, but its women voted exactly as the scored survey's 45–54-year-olds
    let mut other = vec![
        survey_cell("all", "all", vec![0.3, 0.2, 0.2, 0.1, 0.1, 0.1]),
        survey_cell(
            "gender",
            "female",
            vec![0.25, 0.25, 0.15, 0.1, 0.145, 0.105],
        ),
    ];
    let e = set
        .set_shot_scopes(&other, &scored, "wahl-2017", &spec, "de", 0.02)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gender=female (≈ scored age=45-54, TV 0.000)"),
        "{e}"
    );
    // a rounded, reweighted copy of the scored women's vote (recall from the same election's
    // survey): not identical, TV 0.01 — still the answer in the prompt
    other[1] = survey_cell("gender", "female", vec![0.31, 0.195, 0.245, 0.1, 0.1, 0.05]);
    let e = set
        .set_shot_scopes(&other, &scored, "recall-2021", &spec, "de", 0.02)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gender=female (TV 0.010)"), "{e}");
    // with a tolerance below its distance it passes (the user's explicit call)
    set.set_shot_scopes(&other, &scored, "recall-2021", &spec, "de", 0.005)
        .unwrap();
    other[1] = survey_cell("gender", "female", vec![0.35, 0.2, 0.2, 0.1, 0.1, 0.05]);
    set.set_shot_scopes(&other, &scored, "wahl-2017", &spec, "de", 0.02)
        .unwrap();
    assert!(
        set.scopes
            .iter()
            .all(|s| s.label.starts_with("wahl-2017 – ")),
        "{:?}",
        set.scopes
    );
}
