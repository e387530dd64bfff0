//! The codebook reader on small files, every refusal, and the real ANES 1996 extract when
//! `scripts/setup.sh` has fetched it.

use super::*;

const CODEBOOK: &str = r#"
name = "toy"
title = "A toy survey"
source = "written for this test"
data = "toy.csv"
separator = ","
id = "id"
weight = "w"
missing = ["9"]
persona = "You are {age} and {edu}."

[[demographic]]
column = "age"
kind = "number"
text = "{value} years old"
codes = { "99" = "very old" }

[[demographic]]
column = "edu"
kind = "coded"
codes = { "1" = "went to school", "2" = "went to university" }

[[item]]
column = "scale"
kind = "ordinal"
question = "How much?"
options = [{ code = "1", label = "Little" }, { code = "2", label = "Some" }, { code = "3", label = "Much" }]

[[item]]
column = "vote"
kind = "nominal"
question = "Whom?"
options = [{ code = "a", label = "A" }, { code = "b", label = "B" }]
"#;

const DATA: &str = "id,age,edu,scale,vote,w\n\
                    r1,30,1,2,a,1.5\n\
                    r2,99,2,9,b,0.5\n\
                    r3,41,9,3,a,1\n";

fn write(dir: &Path, codebook: &str, data: &str) -> PathBuf {
    std::fs::write(dir.join("toy.csv"), data).unwrap();
    let path = dir.join("codebook.toml");
    std::fs::write(&path, codebook).unwrap();
    path
}

fn load_err(codebook: &str, data: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    Survey::load(&write(tmp.path(), codebook, data))
        .expect_err("refused")
        .to_string()
}

#[test]
fn reads_answers_weights_missing_values_and_personas() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Survey::load(&write(tmp.path(), CODEBOOK, DATA)).unwrap();
    assert_eq!(s.respondents.len(), 3);
    let r = &s.respondents;
    assert_eq!((r[0].id.as_str(), r[0].weight), ("r1", 1.5));
    assert_eq!(r[0].answers, [Some(1), Some(0)]);
    assert_eq!(r[1].answers, [None, Some(1)], "9 is missing");
    assert_eq!(
        s.persona(&r[0]).unwrap(),
        "You are 30 years old and went to school."
    );
    assert_eq!(
        s.persona(&r[1]).unwrap(),
        "You are very old and went to university."
    );
    assert_eq!(
        s.persona(&r[2]),
        None,
        "a missing demographic gives no persona"
    );
    let scale = &s.codebook.items[0];
    assert_eq!((scale.value(0), scale.value(2)), (Some(0.0), Some(2.0)));
    assert_eq!(
        s.codebook.items[1].value(0),
        None,
        "nominal items have no values"
    );
}

#[test]
fn bad_codebooks_and_data_are_named() {
    let cases: [(&str, &str, &str); 9] = [
        (
            "no column `scale`",
            CODEBOOK,
            "id,age,edu,vote,w\nr1,30,1,a,1\n",
        ),
        (
            "is none of its options' codes",
            CODEBOOK,
            "id,age,edu,scale,vote,w\nr1,30,1,4,a,1\n",
        ),
        (
            "is not a number",
            CODEBOOK,
            "id,age,edu,scale,vote,w\nr1,old,1,1,a,1\n",
        ),
        (
            "is not one of the codebook's codes",
            CODEBOOK,
            "id,age,edu,scale,vote,w\nr1,30,5,1,a,1\n",
        ),
        (
            "weight `-1` is not a number ≥ 0",
            CODEBOOK,
            "id,age,edu,scale,vote,w\nr1,30,1,1,a,-1\n",
        ),
        (
            "5 fields, the header has 6",
            CODEBOOK,
            "id,age,edu,scale,vote,w\nr1,30,1,1,a\n",
        ),
        ("no respondents", CODEBOOK, "id,age,edu,scale,vote,w\n"),
        (
            "has 1 option(s)",
            &CODEBOOK.replace(
                r#"{ code = "a", label = "A" }, { code = "b", label = "B" }"#,
                r#"{ code = "a", label = "A" }"#,
            ),
            DATA,
        ),
        (
            "persona names `{region}`",
            &CODEBOOK.replace("You are {age} and {edu}.", "You live in {region}."),
            DATA,
        ),
    ];
    for (want, codebook, data) in cases {
        let err = load_err(codebook, data);
        assert!(err.contains(want), "want `{want}`, got: {err}");
    }
    let err = load_err(
        &CODEBOOK.replace("kind = \"nominal\"", "kind = \"categorical\""),
        DATA,
    );
    assert!(err.contains("unknown variant `categorical`"), "{err}");
    let err = load_err(&CODEBOOK.replace("title =", "titel ="), DATA);
    assert!(err.contains("unknown field `titel`"), "{err}");
}

#[test]
fn splits_are_seeded_disjoint_and_independent_of_row_order() {
    let tmp = tempfile::tempdir().unwrap();
    let rows: String = (1..=200)
        .map(|i| format!("r{i},{},1,1,a,1\n", 20 + i % 50))
        .collect();
    let s = Survey::load(&write(
        tmp.path(),
        CODEBOOK,
        &format!("id,age,edu,scale,vote,w\n{rows}"),
    ))
    .unwrap();
    let split = s.split(7, 0.6, 0.2).unwrap();
    assert_eq!(
        (split.train.len(), split.validation.len(), split.test.len()),
        (120, 40, 40)
    );
    let mut all: Vec<usize> = [&split.train[..], &split.validation, &split.test].concat();
    all.sort_unstable();
    assert_eq!(all, (0..200).collect::<Vec<_>>());
    assert_eq!(s.split(7, 0.6, 0.2).unwrap(), split);
    assert_ne!(s.split(8, 0.6, 0.2).unwrap().train, split.train);
    // the same respondents in another order land in the same parts (by id)
    let reversed: String = rows.lines().rev().map(|l| format!("{l}\n")).collect();
    let s2 = Survey::load(&write(
        tmp.path(),
        CODEBOOK,
        &format!("id,age,edu,scale,vote,w\n{reversed}"),
    ))
    .unwrap();
    let ids = |s: &Survey, part: &[usize]| -> std::collections::BTreeSet<String> {
        part.iter().map(|&i| s.respondents[i].id.clone()).collect()
    };
    assert_eq!(
        ids(&s, &split.train),
        ids(&s2, &s2.split(7, 0.6, 0.2).unwrap().train)
    );
    assert!(s.split(7, 1.0, 0.0).is_err());
    assert!(s.split(7, 0.0, 0.5).is_err());
}

/// The real extract: 944 respondents, 551 expecting to vote Clinton and 393 Dole, party
/// identification counts as statsmodels' data gives them (counted independently with Python's
/// csv module).
#[test]
fn the_anes_1996_extract_loads_with_its_codebook() {
    let codebook =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/surveys/anes96/codebook.toml");
    if !codebook.with_file_name("anes96.csv").exists() {
        eprintln!(
            "notice: data/surveys/anes96/anes96.csv absent (scripts/setup.sh fetches it); skipped"
        );
        return;
    }
    let s = Survey::load(&codebook).unwrap();
    assert_eq!(s.respondents.len(), 944);
    let item = |name: &str| {
        s.codebook
            .items
            .iter()
            .position(|i| i.column == name)
            .unwrap()
    };
    let count = |i: usize, option: usize| {
        s.respondents
            .iter()
            .filter(|r| r.answers[i] == Some(option))
            .count()
    };
    assert_eq!((count(item("vote"), 0), count(item("vote"), 1)), (551, 393));
    let pid: Vec<usize> = (0..7).map(|o| count(item("PID"), o)).collect();
    assert_eq!(pid, [200, 180, 108, 37, 94, 150, 175]);
    assert_eq!(
        s.persona(&s.respondents[0]).unwrap(),
        "You are a 36-year-old American. Your education: high school graduate. Your household's \
         yearly income is less than $3,000. You live in a place with fewer than a thousand \
         inhabitants. It is autumn 1996."
    );
    assert!(s.respondents.iter().all(|r| s.persona(r).is_some()));
}
