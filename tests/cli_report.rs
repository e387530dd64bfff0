//! The demo study's report as a reader gets it: every figure as SVG, 300-dpi PNG and PDF, the
//! n behind every figure, parse failures and clipping listed, the coin toy kept out of the
//! survey ranking, and the page laid out in headless Chromium at 1400 px without overflow or
//! text under 10 px (screenshots of every section under target/test-artifacts/demo-report/).

mod support;

use support::browser::check_layout;
use support::*;

/// The pixels per metre a PNG's pHYs chunk records (x, y), if it has one.
fn png_pixels_per_metre(png: &[u8]) -> Option<(u32, u32)> {
    let at = png.windows(4).position(|w| w == b"pHYs")? + 4;
    let word = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (png.get(at + 8) == Some(&1)).then(|| (word(at), word(at + 4)))
}

#[test]
fn the_demo_studys_report_is_publishable() {
    if smollm2_gguf().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = workspace_root();
    let demo = std::fs::read_to_string(root.join("examples/demo.toml")).unwrap();
    assert!(demo.contains("out = \"out/study-demo\""));
    let experiment = tmp.path().join("demo.toml");
    let out = tmp.path().join("study");
    std::fs::write(
        &experiment,
        demo.replace(
            "out = \"out/study-demo\"",
            &format!("out = \"{}\"", out.display()),
        ),
    )
    .unwrap();
    let run = probe()
        .current_dir(&root)
        .args(["study", experiment.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let report = out.join("report");
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();

    // the fictional data is said at the top
    let top = &html[..html.find("<nav>").unwrap()];
    assert!(top.contains("class=\"banner\"") && top.contains("Fictional data"));

    // every figure in three formats; the PNG at 300 dpi
    let figures: Vec<&str> = html
        .split("<figure id=\"figure-")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert!(figures.len() >= 8, "{figures:?}");
    for id in &figures {
        for ext in ["svg", "png", "pdf"] {
            let path = report.join(format!("figures/{id}.{ext}"));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            match ext {
                "png" => assert_eq!(png_pixels_per_metre(&bytes), Some((11_811, 11_811)), "{id}"),
                "pdf" => assert!(bytes.starts_with(b"%PDF-"), "{id}"),
                _ => assert!(bytes.starts_with(b"<svg"), "{id}"),
            }
        }
        assert!(
            html.contains(&format!("href=\"figures/{id}.pdf\"")),
            "the page links {id}.pdf"
        );
    }

    // each figure names the n behind it, and says how to read it
    // the figure's text, lines joined by spaces (legends wrap long names)
    let figure_text = |id: &str| {
        let svg = std::fs::read_to_string(report.join(format!("figures/{id}.svg"))).unwrap();
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                Some(
                    t.split_once('>')?
                        .1
                        .split("</text>")
                        .next()?
                        .trim()
                        .to_string(),
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (id, n) in [
        ("distributions", "n = 1356 respondents"),
        ("distributions", "n = 100 rows (persona × variant)"),
        ("entropy", "survey n = "),
        ("entropy-tasks", " questions)"),
        ("sensitivity", "groups)"),
        ("leaderboard", "(14 groups)"),
        ("task-leaderboard", " questions)"),
        ("probe-accuracy", "144 prompts, 3 folds"),
        ("group-covariation", "groups)"),
    ] {
        let text = figure_text(id);
        assert!(text.contains(n), "figure {id} lacks {n:?}: {text}");
    }
    assert_eq!(
        html.matches("<b>How to read this:</b>").count(),
        figures.len()
    );

    // the coin toy is ranked only in its own task, never against the survey
    let survey_board = json["leaderboard"].as_array().unwrap();
    assert!(survey_board
        .iter()
        .all(|e| !e["name"].as_str().unwrap().contains("coin")));
    assert!(json["task_leaderboard"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["task"] == "coin"));
    assert!(json["entropy"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| !g.as_str().unwrap().contains("coin")));

    // parse failures and clipping are listed
    assert!(html.contains("id=\"eval-tally\"") && html.contains("parse failure rate"));
    assert!(
        html.contains("scaling factors (") && html.contains("were negative; the `clip` policy")
    );

    // in a browser at 1400 px: nothing overflows, nothing scrolls, no text under 10 px
    if let Some(layout) = check_layout(&report.join("report.html"), 1400, "demo-report") {
        assert!(layout.problems.is_empty(), "{:#?}", layout.problems);
        assert!(layout.scrolled.is_empty(), "{:#?}", layout.scrolled);
        assert!(layout.small_text.is_empty(), "{:#?}", layout.small_text);
        assert!(layout.texts > 500, "{} texts measured", layout.texts);
        let sections: Vec<&str> = layout.sections.iter().map(|(id, _)| id.as_str()).collect();
        for id in &figures {
            assert!(sections.contains(id), "{id} not among {sections:?}");
            assert!(root
                .join(format!("target/test-artifacts/demo-report/{id}.png"))
                .is_file());
        }
    }
}

/// The browser check itself finds what it is for: an element past the page, a box its content
/// overflows, text under 10 px in HTML and in a figure scaled down.
#[test]
fn the_browser_check_finds_overflow_and_small_text() {
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("report.html");
    std::fs::write(
        &page,
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">
<section id="wide"><div style="width:1800px;height:20px;background:#ccc">too wide</div></section>
<section id="boxed"><div style="width:200px;overflow:visible;white-space:nowrap">a long line of text that runs out of its two-hundred-pixel box</div></section>
<section id="tiny"><p style="font-size:8px">tiny print</p>
<svg width="2000" height="100" viewBox="0 0 2000 100" style="max-width:100%;height:auto"><text x="10" y="50" font-size="14">shrunk with its figure</text></svg></section>
</body></html>"#,
    )
    .unwrap();
    let Some(layout) = check_layout(&page, 1000, "browser-check-self-test") else {
        return;
    };
    let all = |v: &[String]| v.join("\n");
    assert!(
        all(&layout.problems).contains("past the page"),
        "{:#?}",
        layout
    );
    assert!(
        all(&layout.problems).contains("overflows its box"),
        "{:#?}",
        layout
    );
    assert!(
        all(&layout.small_text).contains("tiny print"),
        "{:#?}",
        layout
    );
    // 14 px in a 2000-px figure shown 1000 px wide is 7 px
    assert!(
        all(&layout.small_text).contains("shrunk with its figure"),
        "{:#?}",
        layout
    );
    assert_eq!(layout.sections.len(), 3);
}
