use super::leaderboard::MAJORITY_QUESTIONS;
use super::*;

const PARTIES: [&str; 3] = ["SPD", "GRÜNE", "AfD"];

fn psi(d: [f64; 3]) -> Value {
    json!({"psi": {"SPD": d[0], "GRÜNE": d[1], "AfD": d[2]}, "rows": 2, "weight": 2.0})
}

/// Classification scores with this balanced accuracy (the report draws only that).
fn scores(balanced_accuracy: f64) -> Value {
    json!({"accuracy": balanced_accuracy, "balanced_accuracy": balanced_accuracy, "auc": 0.5,
           "f1": 0.5, "n": 10})
}

/// A run directory as `probe train` + `probe scale` leave it, with numbers chosen by hand;
/// every file complete under its schema (probe-schema).
fn write_run(dir: &Path) {
    let params = json!({"solver": "newton", "c": 1.0, "folds": 5, "seed": 0, "max_iterations": 1000,
                        "tolerance": 1e-4, "per_layer": true, "shared": true});
    std::fs::write(
        dir.join("probes.json"),
        json!({"format_version": 1, "model": "models/tiny.Q8_0.gguf", "model_hash": "0",
               "cache": "cache", "positions": "last-before-answer", "data_sha256": "0", "tensors": {},
               "report": {
            "params": params, "parties": PARTIES, "hooks": ["blocks.3.hook_resid_post", "blocks.4.hook_resid_post"],
            "positive_replication": [2, 2, 2], "folds": [0, 1, 2, 3, 4], "per_layer": [], "shared": [],
            "max_gradient_norm": 0.0, "unconverged_fits": 0, "fits": 9, "seconds": 1.0,
            "per_layer_seconds": 0.5, "shared_seconds": 0.5,
            "null": {"seeds": [1, 2], "observed": [0.8, 0.6, 0.7], "mean": [0.5, 0.52, 0.49], "sd": [0.03, 0.04, 0.02],
                     "balanced_accuracy": [[0.47, 0.48, 0.47], [0.53, 0.56, 0.51]], "p_value": [0.33, 0.33, 0.33]},
            "summary": [
            {"hook": "blocks.3.hook_resid_post", "per_layer": scores(0.6), "shared": scores(0.55)},
            {"hook": "blocks.4.hook_resid_post", "per_layer": scores(0.7), "shared": scores(0.65)},
            {"hook": "all", "per_layer": null, "shared": scores(0.6)}
        ]}})
        .to_string(),
    )
    .unwrap();
    let vectors = dir.join("vectors");
    std::fs::create_dir_all(&vectors).unwrap();
    let test = |z: f64, p: f64, n: usize| json!({"observed": 0.2, "n": n, "mean": 0.1, "sd": 0.05, "z": z, "p": p});
    std::fs::write(
        vectors.join("vectors.json"),
        json!({"format_version": 1, "model": "models/tiny.Q8_0.gguf", "model_hash": "0", "hidden_size": 8,
               "probes": "run", "probe": "shared", "parties": PARTIES, "probe_sources": ["shared", "shared", "shared"],
               "layers": [3, 4], "neurons": 16, "k": 20, "iqr_c": 1.5, "iqr_thresholds": [0.1, 0.1, 0.1],
               "vectors": [], "chance": [
            {"party": "SPD", "statistic": "s", "random": test(4.0, 0.004, 250), "shuffled": test(3.0, 0.04, 24), "above_chance": true},
            {"party": "GRÜNE", "statistic": "s", "random": test(0.5, 0.3, 250), "shuffled": test(0.1, 0.45, 24), "above_chance": false},
            // an older file: no verdict, a null of 3 that cannot give p < 0.05
            {"party": "AfD", "statistic": "s", "random": test(2.5, 0.01, 250), "shuffled": test(2.0, 0.25, 3), "above_chance": false},
        ]})
        .to_string(),
    )
    .unwrap();
    let scale = dir.join("scale-grid");
    std::fs::create_dir_all(&scale).unwrap();
    let groups = json!({
        "gender": {"female": psi([0.5, 0.3, 0.2]), "male": psi([0.3, 0.2, 0.5])},
        "region": {"east": psi([0.2, 0.1, 0.7]), "west": psi([0.5, 0.3, 0.2])},
    });
    std::fs::write(
        scale.join("psi.json"),
        json!({"parties": PARTIES, "all": psi([0.4, 0.25, 0.35]), "by_group": groups,
               "negative": "clip", "negative_factors": {"count": 3, "of": 48}, "undefined_rows": 1,
               "by_variant": {
                   "a": {"all": psi([0.5, 0.25, 0.25]), "by_group": {"gender": {"female": psi([0.6, 0.3, 0.1]), "male": psi([0.3, 0.2, 0.5])}}},
                   "b": {"all": psi([0.3, 0.25, 0.45]), "by_group": {"gender": {"female": psi([0.4, 0.3, 0.3]), "male": psi([0.3, 0.2, 0.5])}}}},
               "run": {"vectors": "vectors", "persona_spec": "personas.toml",
                       "vector_layers": [3, 4], "select": "joint", "k": 20, "personas": 4, "variants": ["a", "b"],
                       "policy_sensitivity": {
                           "SPD": {"negative_share": 0.1, "psi": {"clip": 0.4, "shift": 0.38, "softmax": 0.36}},
                           "GRÜNE": {"negative_share": 1.0, "psi": {"clip": 0.0, "shift": 0.2, "softmax": 0.3}},
                           "AfD": {"negative_share": 0.0, "psi": {"clip": 0.6, "shift": 0.42, "softmax": 0.34}}}}})
        .to_string(),
    )
    .unwrap();
    // three personas × two variants; persona p3 has one undefined row
    let rows = [
        ("p1", "a", Some([0.5, 0.5, 0.0])),
        ("p1", "b", Some([0.5, 0.0, 0.5])),
        ("p2", "a", Some([1.0, 0.0, 0.0])),
        ("p2", "b", Some([0.0, 1.0, 0.0])),
        ("p3", "a", Some([0.2, 0.4, 0.4])),
        ("p3", "b", None),
        ("p4", "a", Some([0.6, 0.2, 0.2])),
        ("p4", "b", Some([0.2, 0.2, 0.6])),
    ];
    let text: String = rows
        .iter()
        .map(|(p, v, d)| {
            let dist = d.map(|d| json!({"SPD": d[0], "GRÜNE": d[1], "AfD": d[2]}));
            json!({"persona": p, "variant": v, "distribution": dist, "attributes": {},
                   "factors": {"SPD": 1.0, "GRÜNE": 1.0, "AfD": 1.0}, "weight": 1.0})
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(scale.join("rows.jsonl"), text).unwrap();
}

fn reference() -> Reference {
    let cell = |attribute: &str, value: &str, r: Vec<f64>, options: &[&str]| Cell {
        labels: BTreeMap::from([
            ("attribute".to_string(), attribute.to_string()),
            ("value".to_string(), value.to_string()),
        ]),
        options: options.iter().map(|s| s.to_string()).collect(),
        predicted: None,
        reference: Some(r),
        weight: None,
        ordinal: None,
        origin: None,
    };
    // the survey spells the Greens differently and has an extra option
    let opts = ["Bündnis 90/Die Grünen", "SPD", "AfD", "Sonstige"];
    Reference {
        name: "survey".into(),
        cells: vec![
            cell("all", "all", vec![0.2, 0.4, 0.2, 0.2], &opts),
            cell("gender", "female", vec![0.3, 0.3, 0.3, 0.1], &opts),
            cell("gender", "male", vec![0.1, 0.5, 0.3, 0.1], &opts),
            cell("region", "east", vec![0.1, 0.2, 0.6, 0.1], &opts),
            cell("region", "west", vec![0.3, 0.5, 0.1, 0.1], &opts),
        ],
        notes: vec![],
        respondents: [
            ("all", "all", 40),
            ("gender", "female", 22),
            ("gender", "male", 18),
        ]
        .map(|(a, v, n)| ((a.to_string(), v.to_string()), n))
        .into(),
        units: BTreeMap::new(),
    }
}

/// ψ's entropy beside the survey's with intervals and a test: 60 personas of whom the men all
/// lean to one party (less dispersed than the survey's men, who spread evenly), the women as
/// spread as the survey's (not told apart). Intervals resample personas (both prompt variants
/// of one persona together) and respondents.
#[test]
fn psi_entropy_is_tested_against_the_survey_per_group() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path());
    let scale = dir.path().join("scale-grid");
    let mut rows = String::new();
    for p in 0..60 {
        let gender = if p % 2 == 0 { "female" } else { "male" };
        for variant in ["a", "b"] {
            let m = if gender == "male" {
                [0.9, 0.05, 0.05]
            } else {
                let mut m = [0.0; 3];
                m[(p / 2) % 3] = 1.0;
                m
            };
            let adjusted = json!({"SPD": m[0], "GRÜNE": m[1], "AfD": m[2]});
            rows.push_str(
                &(json!({"persona": format!("p{p}"), "variant": variant, "weight": 1.0,
                         "attributes": {"gender": gender}, "factors": adjusted,
                         "adjusted": adjusted, "distribution": adjusted})
                .to_string()
                    + "\n"),
            );
        }
    }
    std::fs::write(scale.join("rows.jsonl"), rows).unwrap();
    let run = load_run(dir.path()).unwrap();
    assert_eq!(
        run.series[0].entropy_units[&("gender".to_string(), "male".to_string())].len(),
        30
    );
    let mut r = reference();
    // 90 survey respondents per gender, evenly over the three parties
    let unit = |k: usize| {
        let mut u = vec![0.0; 3];
        u[k] = 1.0;
        u
    };
    for g in ["female", "male"] {
        r.units.insert(
            ("gender".to_string(), g.to_string()),
            (0..90).map(|i| unit(i % 3)).collect(),
        );
    }
    let report = build(
        &[run],
        &[],
        &r,
        &ReportOptions {
            bootstrap: 400,
            ..ReportOptions::default()
        },
    )
    .unwrap();
    let series = &report.json["entropy"]["series"][0];
    let groups = report.json["entropy"]["groups"].as_array().unwrap();
    let at = |name: &str| {
        groups
            .iter()
            .position(|g| g.as_str().unwrap() == name)
            .unwrap()
    };
    let male = &series["versus_survey"][at("gender=male")];
    let female = &series["versus_survey"][at("gender=female")];
    assert!(male["difference"]["high"].as_f64().unwrap() < 0.0, "{male}");
    assert!(male["p"].as_f64().unwrap() < 0.05, "{male}");
    assert!(female["p"].as_f64().unwrap() > 0.05, "{female}");
    let low = female["difference"]["low"].as_f64().unwrap();
    let high = female["difference"]["high"].as_f64().unwrap();
    assert!(low <= 0.0 && 0.0 <= high, "{female}");
    // a table of its own: one row per model and group, everyone first
    let section = report
        .sections
        .iter()
        .find(|s| s.id == "entropy-survey")
        .unwrap();
    let table = section.table.as_ref().unwrap();
    assert_eq!(table.header[4], "Δ model − survey");
    let male_row = table.rows.iter().find(|r| r[1] == "gender=male").unwrap();
    assert!(male_row[4].starts_with('-'), "{male_row:?}");
    assert!(
        section
            .paragraphs
            .iter()
            .any(|p| p.contains("less dispersed than the survey (p < 0.05) in gender=male;")),
        "{:?}",
        section.paragraphs
    );
    assert!(series["interval"][at("gender=male")]["low"].is_number());
}

/// ψ that pools the 2021 vote and a vote "tomorrow" is compared with the 2021 survey only
/// through its year=2021 scope; a ψ of one year through every scope.
#[test]
fn a_psi_pooling_years_is_compared_only_by_year() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path());
    let psi_path = dir.path().join("scale-grid/psi.json");
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&psi_path).unwrap()).unwrap();
    doc["by_group"]["year"] =
        json!({"2021": psi([0.4, 0.3, 0.3]), "tomorrow": psi([0.2, 0.2, 0.6])});
    std::fs::write(&psi_path, doc.to_string()).unwrap();
    let run = load_run(dir.path()).unwrap();
    assert_eq!(run.series[0].years, ["2021", "tomorrow"]);
    let mut r = reference();
    let mut year = r.cells[0].clone();
    year.labels.insert("attribute".into(), "year".into());
    year.labels.insert("value".into(), "2021".into());
    r.cells.push(year);
    let report = build(
        &[run],
        &[],
        &r,
        &ReportOptions {
            bootstrap: 50,
            ..ReportOptions::default()
        },
    )
    .unwrap();
    let board = report.json["leaderboard"].as_array().unwrap();
    let latent = board
        .iter()
        .find(|e| e["name"].as_str().unwrap().contains("latent"))
        .unwrap();
    assert_eq!(latent["groups"], 1, "{latent}");
    let dists = report
        .sections
        .iter()
        .find(|s| s.id == "distributions")
        .unwrap();
    assert!(
        dists
            .paragraphs
            .iter()
            .any(|p| p.contains("year = 2021, tomorrow")),
        "{:?}",
        dists.paragraphs
    );
}

#[test]
fn aligns_reference_through_aliases_and_renormalizes() {
    let r = reference();
    let options: Vec<String> = PARTIES.iter().map(|s| s.to_string()).collect();
    let (d, kept) = align_reference(&r.cells[0], &options).unwrap();
    assert!((kept - 0.8).abs() < 1e-12);
    let want = [0.5, 0.25, 0.25]; // SPD .4, GRÜNE .2, AfD .2 over .8
    d.iter()
        .zip(want)
        .for_each(|(a, b)| assert!((a - b).abs() < 1e-12));
    let fdp = vec!["FDP".to_string(), "SPD".to_string()];
    assert!(align_reference(&r.cells[0], &fdp).is_none());
}

#[test]
fn report_numbers_match_hand_computation_and_every_figure_is_drawn() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path());
    let run = load_run(dir.path()).unwrap();
    assert_eq!(run.model, "tiny.Q8_0");
    assert_eq!(run.probes.as_ref().unwrap().layers, [3, 4]);
    let s = &run.series[0];
    // the paper's points, one per group with every variant (region has none per variant):
    // women: ψ_{a,g} (.6,.3,.1), ψ_{b,g} (.4,.3,.3), barycenter (.5,.3,.2), W 0.1 each;
    // x = H_norm(ψ_g) of the pooled ψ_g (.5,.3,.2); men: identical variants, W 0
    let hn = |d: &[f64]| -d.iter().map(|p| p * p.ln()).sum::<f64>() / 3f64.ln();
    assert_eq!(s.sensitivity_unit, "group");
    assert_eq!(s.sensitivity.len(), 2);
    assert!((s.sensitivity[0].0 - hn(&[0.5, 0.3, 0.2])).abs() < 1e-12);
    assert!((s.sensitivity[0].1 - 0.1).abs() < 1e-12);
    assert!(
        (s.sensitivity[1].0 - hn(&[0.3, 0.2, 0.5])).abs() < 1e-12
            && s.sensitivity[1].1.abs() < 1e-12
    );
    // the second view, per persona: p3 has a single defined variant, so no point
    let sp = &s.sensitivity_persona;
    assert_eq!(sp.len(), 3);
    // p1: barycenter (.5,.25,.25), TV of each variant to it = .25; H_norm = H(.5,.25,.25)/ln 3
    let h = hn(&[0.5, 0.25, 0.25]);
    assert!((sp[0].0 - h).abs() < 1e-12 && (sp[0].1 - 0.25).abs() < 1e-12);
    // p2: barycenter (.5,.5,0), TV 0.5
    assert!((sp[1].1 - 0.5).abs() < 1e-12);

    let options = ReportOptions {
        bootstrap: 200,
        ..ReportOptions::default()
    };
    let report = build(&[run], &[], &reference(), &options).unwrap();
    let ids: Vec<&str> = report
        .sections
        .iter()
        .filter(|s| s.figure.is_some())
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, FIGURES);
    // leaderboard: TV per matched scope, survey renormalized over SPD, GRÜNE, AfD
    let tv = |p: [f64; 3], r: [f64; 3]| {
        let t: f64 = r.iter().sum();
        0.5 * p.iter().zip(r).map(|(a, b)| (a - b / t).abs()).sum::<f64>()
    };
    let want = [
        tv([0.4, 0.25, 0.35], [0.4, 0.2, 0.2]),
        tv([0.5, 0.3, 0.2], [0.3, 0.3, 0.3]),
        tv([0.3, 0.2, 0.5], [0.5, 0.1, 0.3]),
        tv([0.2, 0.1, 0.7], [0.2, 0.1, 0.6]),
        tv([0.5, 0.3, 0.2], [0.5, 0.3, 0.1]),
    ];
    let mean = want.iter().sum::<f64>() / 5.0;
    let board = report.json["leaderboard"].as_array().unwrap();
    let model = board
        .iter()
        .find(|e| e["name"].as_str().unwrap().contains("latent"))
        .unwrap();
    assert_eq!(model["groups"], 5);
    assert!((model["tv"].as_f64().unwrap() - mean).abs() < 1e-12);
    let uniform = board
        .iter()
        .find(|e| e["name"] == "baseline: uniform")
        .unwrap();
    assert!(uniform["tv"].as_f64().unwrap() > 0.0);
    // per-variant W: ψ_a and ψ_b are each 0.1 TV from their mean
    let variants = report.sections.iter().find(|s| s.id == "variants").unwrap();
    assert_eq!(variants.table.as_ref().unwrap().rows[0][2], "0.100");
    // chance levels: probe accuracy vs shuffled labels, selections vs random and shuffled
    let chance = report.sections.iter().find(|s| s.id == "chance").unwrap();
    assert_eq!(chance.table.as_ref().unwrap().rows.len(), 3);
    assert!(
        chance
            .paragraphs
            .iter()
            .any(|p| p.contains("Not above chance: GRÜNE.")),
        "{:?}",
        chance.paragraphs
    );
    // a null too small to decide is "undetermined", never "no"
    assert!(
        chance
            .paragraphs
            .iter()
            .any(|p| p.contains("Undetermined: AfD.")),
        "{:?}",
        chance.paragraphs
    );
    let rows = &chance.table.as_ref().unwrap().rows;
    assert_eq!(rows[0][8], "above chance");
    assert_eq!(rows[1][8], "not above chance");
    assert_eq!(rows[2][8], "undetermined (p ≥ 1/(n+1) = 0.250 with n = 3)");
    // two shuffled seeds cannot decide the probe's accuracy either
    assert!(
        rows[0][4].starts_with("undetermined (p ≥ 1/(n+1) = 0.333"),
        "{}",
        rows[0][4]
    );
    assert_eq!(chance.table.as_ref().unwrap().rows[0][3], "0.500 ± 0.030");
    // negative factors: GRÜNE negative in every row → a warning; ψ per policy in the table
    let neg = report
        .sections
        .iter()
        .find(|s| s.id == "negative-factors")
        .unwrap();
    assert_eq!(neg.table.as_ref().unwrap().rows.len(), 3);
    assert!(neg
        .paragraphs
        .iter()
        .any(|p| p.contains("GRÜNE") && p.contains("100 %")));
    assert_eq!(report.json["negative_factors"][1]["psi"]["shift"], 0.2);
    // ψ names its value-vector layers and rows
    let dists = report
        .sections
        .iter()
        .find(|s| s.id == "distributions")
        .unwrap();
    assert!(
        dists.paragraphs.iter().any(|p| p.contains("layers 3–4")),
        "{:?}",
        dists.paragraphs
    );
    // co-variation across groups: 4 groups shared → a distance row; named for what it is
    assert_eq!(report.json["group_covariation"][0]["groups"], 4);
    assert!(report.json.get("correlation").is_none());
    let files = report.files();
    let md = &files
        .iter()
        .find(|(p, _)| p.ends_with("report.md"))
        .unwrap()
        .1;
    let md = String::from_utf8(md.clone()).unwrap();
    assert!(!md.contains("Correlation structure"), "{md}");
    assert!(md.contains("compositional"));
    let html = &files
        .iter()
        .find(|(p, _)| p.ends_with("report.html"))
        .unwrap()
        .1;
    let html = String::from_utf8(html.clone()).unwrap();
    assert_eq!(html.matches("<svg").count(), 6);
    // self-contained: nothing fetched (the SVG namespace URI is an identifier, not a fetch)
    assert!(!html.contains("<script") && !html.contains("href=\"http") && !html.contains("src="));
    assert!(files
        .iter()
        .any(|(p, _)| p.ends_with("figures/group-covariation.svg")));
}

#[test]
fn persona_cells_pool_by_attribute_value_with_their_weights() {
    // `probe eval --vote` cells: one per persona (no reference), plus the population
    let cell = |steering: &str, persona: Option<&str>, p: Vec<f64>, w: f64| {
        let mut labels = BTreeMap::from(
            [
                ("model", "m"),
                ("method", "logp"),
                ("steering", steering),
                ("question", "vote"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        if let Some(id) = persona {
            labels.insert("persona".into(), id.into());
        }
        Cell {
            labels,
            options: vec!["SPD".into(), "AfD".into()],
            predicted: Some(p),
            reference: None,
            weight: Some(w),
            ordinal: None,
            origin: None,
        }
    };
    let cells = vec![
        cell(
            "persona",
            Some("gender=female;age=18-24"),
            vec![1.0, 0.0],
            1.0,
        ),
        cell(
            "persona",
            Some("gender=female;age=65-74"),
            vec![0.0, 1.0],
            3.0,
        ),
        cell(
            "persona",
            Some("gender=male;age=18-24"),
            vec![0.5, 0.5],
            1.0,
        ),
        cell("none", None, vec![0.6, 0.4], 1.0),
    ];
    let series = series_from_cells(&cells, "m").unwrap();
    let persona = series
        .iter()
        .find(|s| s.labels["steering"] == "persona")
        .unwrap();
    let close = |a: &str, v: &str, want: [f64; 2]| {
        let got = &persona.pooled[&(a.to_string(), v.to_string())];
        assert!(
            got.iter().zip(want).all(|(x, y)| (x - y).abs() < 1e-12),
            "{a}={v}: {got:?}"
        );
    };
    // weighted: female = (1·[1,0] + 3·[0,1]) / 4
    close("gender", "female", [0.25, 0.75]);
    close("age", "18-24", [0.75, 0.25]);
    close("all", "all", [0.3, 0.7]);
    assert!(persona.own.is_empty());
    let none = series
        .iter()
        .find(|s| s.labels["steering"] == "none")
        .unwrap();
    assert_eq!(none.pooled.len(), 1);
    assert_eq!(
        none.pooled[&("all".to_string(), "all".to_string())],
        [0.6, 0.4]
    );
}

#[test]
fn question_level_cells_score_against_their_own_references() {
    // `probe eval` cells: one per (group, question), each with its reference
    let cell = |method: &str, group: &str, q: &str, p: Vec<f64>, r: Vec<f64>| Cell {
        labels: BTreeMap::from(
            [
                ("model", "m"),
                ("method", method),
                ("steering", "none"),
                ("attribute", "SEX"),
                ("group", group),
                ("question", q),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        ),
        options: vec!["yes".into(), "no".into()],
        predicted: Some(p),
        reference: Some(r),
        weight: None,
        ordinal: None,
        origin: None,
    };
    let cells = vec![
        cell("logp", "Male", "q1", vec![0.5, 0.5], vec![0.8, 0.2]),
        cell("logp", "Female", "q1", vec![0.9, 0.1], vec![0.3, 0.7]),
        cell("logp", "Male", "q2", vec![0.8, 0.2], vec![0.8, 0.2]),
        cell("verbalize", "Male", "q1", vec![0.8, 0.2], vec![0.8, 0.2]),
    ];
    let series = series_from_cells(&cells, "m").unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0].own.len(), 3);
    let report = build(
        &[],
        &series,
        &Reference::default(),
        &ReportOptions::default(),
    )
    .unwrap();
    // ranked per task, against their own references, never against the survey
    assert!(report.json["leaderboard"].as_array().is_none_or(|b| b
        .iter()
        .all(|e| e["task"].is_null() && !e["name"].as_str().unwrap().contains("logp"))));
    let board = report.json["task_leaderboard"].as_array().unwrap();
    assert!(board.iter().all(|e| e["task"] == "questions"), "{board:?}");
    let tv = |name: &str| {
        board
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {board:?}"))["tv"]
            .as_f64()
            .unwrap()
    };
    // The benchmark's A: groups' means over their questions, then the mean over groups
    // (Male (0.3 + 0) / 2, Female 0.6), not the flat mean over cells (0.3).
    assert!((tv("m · logp · none") - (0.15 + 0.6) / 2.0).abs() < 1e-12);
    assert!(tv("m · verbalize · none").abs() < 1e-12);
    // calibration ECE beside every TV; no discretization floor for log-p (not sampled)
    let logp = board
        .iter()
        .find(|e| e["name"] == "m · logp · none")
        .unwrap();
    assert!(logp["calibration_ece"].as_f64().is_some(), "{logp}");
    assert!(logp["discretization_floor"].is_null());
    // uniform: Male (0.3 + 0.3) / 2, Female 0.2
    assert!((tv("baseline: uniform (questions)") - 0.25).abs() < 1e-12);
    // the benchmark's majority: each group's own answer (Male yes, Female no):
    // Male (0.2 + 0.2) / 2, Female 0.3
    assert!((tv(MAJORITY_QUESTIONS) - 0.25).abs() < 1e-12);
    // pooled: yes for both (q1: 1.1 vs 0.9): Male 0.2, Female 0.7, under its own name
    assert!((tv("baseline: pooled majority per question") - 0.45).abs() < 1e-12);
    // question-level tasks have their own entropy section, never beside the survey's groups
    assert!(report.json["entropy"].is_null());
    let groups = report.json["entropy_tasks"]["groups"].as_array().unwrap();
    assert!(
        groups.iter().any(|g| g == "questions: SEX=Male"),
        "{groups:?}"
    );
}

#[test]
fn the_report_lists_units_failures_and_parse_failures_per_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let eval = tmp.path().join("run/eval-coin");
    std::fs::create_dir_all(&eval).unwrap();
    std::fs::write(
        eval.join("eval.cells.jsonl"),
        r#"{"dataset": "coin", "group": "all", "method": "sequence", "steering": "none", "options": ["Heads", "Tails"], "predicted": [0.5, 0.5], "question": "coin-20", "reference": [0.2, 0.8]}
"#,
    )
    .unwrap();
    std::fs::write(
        eval.join("summary.json"),
        r#"{"units": 9, "of": 9, "complete": true,
            "this_run": {"units": 9, "seconds": 1.0, "prompt_tokens_per_s": 100.0, "generated_tokens_per_s": 10.0,
                         "tally": {"units": 9, "failed_units": 3, "parse_failures": 9, "attempts": 15,
                                   "invalid_answers": 0, "prompt_tokens": 100, "generated_tokens": 10}},
            "by_setting": [{"attempts": 15, "failed_units": 3, "method": "sequence", "parse_failure_rate": 0.6, "parse_failures": 9, "steering": "none", "units": 9}]}"#,
    )
    .unwrap();
    let run = load_run(&tmp.path().join("run")).unwrap();
    let options = ReportOptions {
        notes: vec!["Fictional data.".into()],
        ..ReportOptions::default()
    };
    let report = build(&[run], &[], &Reference::default(), &options).unwrap();
    let html = report
        .files()
        .into_iter()
        .find(|(p, _)| p.ends_with("report.html"))
        .unwrap()
        .1;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("<p class=\"banner\"><b>Note:</b> Fictional data.</p>"));
    let section = report
        .sections
        .iter()
        .find(|s| s.id == "eval-tally")
        .unwrap();
    let row = &section.table.as_ref().unwrap().rows[0];
    assert_eq!(
        row[1..],
        ["eval-coin", "sequence", "none", "9", "3", "9", "0.600"]
    );
    assert!(section.paragraphs[1].starts_with("3 unit(s) produced no distribution"));
    // the coin toy is ranked as its own task, not against the survey
    assert!(report.json["task_leaderboard"][0]["task"] == "coin");
}

#[test]
fn empty_run_is_an_error_not_an_empty_report() {
    let dir = tempfile::tempdir().unwrap();
    let run = load_run(dir.path()).unwrap();
    let e = build(&[run], &[], &reference(), &ReportOptions::default()).unwrap_err();
    assert!(e.to_string().contains("nothing to report"), "{e}");
    let scale = dir.path().join("scale-x");
    std::fs::create_dir_all(&scale).unwrap();
    std::fs::write(scale.join("psi.json"), "{not json").unwrap();
    let e = load_run(dir.path()).unwrap_err().to_string();
    assert!(e.contains("psi.json") && e.contains("not JSON"), "{e}");
}

#[test]
fn counts_read_as_words() {
    assert_eq!(count(1, "group"), "1 group");
    assert_eq!(count(14, "group"), "14 groups");
    assert_eq!(count(1, "prompts"), "1 prompt");
    assert_eq!(
        count(100, "rows (persona × variant)"),
        "100 rows (persona × variant)"
    );
    assert_eq!(
        count(1, "rows (persona × variant)"),
        "1 row (persona × variant)"
    );
}
