use super::heatmap::diverging;
use super::*;

#[test]
fn figures_are_svg_with_every_label() {
    let cats = vec!["SPD".to_string(), "GRÜNE & <Co>".to_string()];
    let bars = vec![Bars {
        name: "model".into(),
        values: vec![0.4, 0.6],
        color: color(0),
        intervals: Some(vec![(0.3, 0.5), (0.5, 0.7)]),
        baseline: false,
    }];
    for svg in [
        grouped_columns("t", "share", &cats, &bars).unwrap(),
        grouped_rows(
            "t",
            "H",
            &cats,
            &bars,
            Some(("survey", &[0.5, 0.5])),
            Some(("all", 0.9)),
        )
        .unwrap(),
    ] {
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("SPD") && svg.contains("GRÜNE &amp; &lt;Co&gt;"));
    }
    let h = heatmaps(
        "corr",
        &[Heatmap {
            title: "model".into(),
            labels: cats.clone(),
            values: vec![1.0, -0.5, -0.5, 1.0],
        }],
    )
    .unwrap();
    assert!(h.contains("-0.50") && h.contains("rotate(270") && h.contains("Pearson r"));
    // twelve panels: a grid three wide, not a strip twelve wide
    let twelve: Vec<Heatmap> = (0..12)
        .map(|i| Heatmap {
            title: format!("panel {i}"),
            labels: cats.clone(),
            values: vec![1.0, -0.5, -0.5, 1.0],
        })
        .collect();
    let size = |svg: &str| -> (u32, u32) {
        let attr = |name: &str| {
            svg.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|w| w.split('"').next())
                .and_then(|w| w.parse().ok())
                .unwrap()
        };
        (attr("width"), attr("height"))
    };
    let (two, twelve) = (
        size(&heatmaps("corr", &twelve[..2]).unwrap()),
        size(&heatmaps("corr", &twelve).unwrap()),
    );
    assert_eq!(twelve.0, two.0, "twelve panels as wide as two");
    assert!(
        twelve.1 > 5 * (two.1 - 100),
        "six rows: {twelve:?} vs {two:?}"
    );
    assert_eq!(
        wrap(
            "SmolLM2-135M-Instruct.Q4_1 · logp · fewshot · vote-2099-demowahl",
            30
        ),
        [
            "SmolLM2-135M-Instruct.Q4_1 ·",
            "logp · fewshot ·",
            "vote-2099-demowahl"
        ]
    );
    assert_eq!(wrap("abcdefghijklmnop", 8), ["abcdefg…"]);
    assert_eq!(diverging(0.0), RGBColor(247, 247, 247));
    // empty inputs draw empty frames (and terminate)
    assert!(lines("t", "x", "y", &[], Some(("chance", 0.5))).is_ok());
    assert!(scatter("t", "x", "y", &[]).is_ok());
    assert!(grouped_rows("t", "x", &[], &[], None, None).is_ok());
    assert!(grouped_columns("t", "y", &[], &[]).is_ok());
    assert!(heatmaps("t", &[]).is_ok());
    assert_eq!(diverging(1.0), RGBColor(178, 24, 43));
}

#[test]
fn no_two_series_share_a_colour() {
    let colours: Vec<RGBColor> = (0..60).map(color).collect();
    let distance = |a: &RGBColor, b: &RGBColor| {
        let d = |x: u8, y: u8| (f64::from(x) - f64::from(y)).powi(2);
        (d(a.0, b.0) + d(a.1, b.1) + d(a.2, b.2)).sqrt()
    };
    for (i, a) in colours.iter().enumerate() {
        assert!(
            distance(a, &SURVEY) > 40.0,
            "series {i} looks like the survey"
        );
        for (j, b) in colours.iter().enumerate().skip(i + 1) {
            assert_ne!(a, b, "series {i} and {j}");
            // the palette's colours stay far apart; generated ones stay distinct
            if j < PALETTE.len() {
                assert!(distance(a, b) > 50.0, "series {i} and {j} are too close");
            }
        }
    }
}

#[test]
fn the_scatter_axes_span_the_data_not_zero() {
    assert_eq!(padded_range([0.5].into_iter()), (0.49, 0.51));
    let (lo, hi) = padded_range([0.455, 0.47, 0.485].into_iter());
    assert!((lo - 0.4535).abs() < 1e-12 && (hi - 0.4865).abs() < 1e-12);
    let svg = scatter(
        "t",
        "H",
        "W",
        &[Scatter {
            name: "m".into(),
            color: color(0),
            points: vec![(0.2, 0.455), (0.3, 0.485)],
            fit: None,
        }],
    )
    .unwrap();
    // tick labels come from the data's range: no 0.000 tick on either axis
    assert!(!svg.contains(">0.000<"), "{svg}");
    assert!(svg.contains("0.46"), "{svg}");
}

/// The `font-size` of every `<text>` of an SVG (plotters writes it in px).
fn font_sizes(svg: &str) -> Vec<f64> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let size = t.split("font-size=\"").nth(1)?.split('"').next()?;
            size.trim_end_matches("px").parse().ok()
        })
        .collect()
}

fn width_of(svg: &str) -> u32 {
    svg.split("width=\"")
        .nth(1)
        .and_then(|w| w.split('"').next())
        .and_then(|w| w.parse().ok())
        .unwrap()
}

/// Publication type at the page's width: no figure is wider than the page (so none is scaled
/// down), and no text is smaller than 11 px, however long the names and however many series.
#[test]
fn every_figure_fits_the_page_with_readable_type() {
    let long = "SmolLM2-135M-Instruct.Q4_1 · log-prob, persona prompt · vote-2099-demowahl (n = 4 personas)";
    let cats: Vec<String> = (0..14)
        .map(|i| format!("a long attribute name {i}=some value that goes on"))
        .collect();
    let bars: Vec<Bars> = (0..16)
        .map(|i| Bars::new(format!("{long} {i}"), vec![0.5; 14], color(i)))
        .collect();
    let panels: Vec<Heatmap> = (0..4)
        .map(|i| Heatmap {
            title: format!("{long} {i}"),
            labels: (0..15).map(|j| format!("party {j}")).collect(),
            values: vec![0.25; 225],
        })
        .collect();
    let scatters: Vec<Scatter> = (0..16)
        .map(|i| Scatter {
            name: format!("{long} {i}"),
            color: color(i),
            points: vec![(0.1, 0.2), (0.3, 0.4)],
            fit: None,
        })
        .collect();
    let lines_: Vec<Line> = (0..16)
        .map(|i| {
            (
                format!("{long} {i}"),
                color(i),
                vec![(18.0, 0.6), (27.0, 0.8)],
            )
        })
        .collect();
    for (name, svg) in [
        (
            "columns",
            grouped_columns("t", "share", &cats, &bars).unwrap(),
        ),
        (
            "rows",
            grouped_rows(
                "t",
                "H",
                &cats,
                &bars,
                Some(("survey", &[0.4; 14])),
                Some(("all", 0.9)),
            )
            .unwrap(),
        ),
        ("heatmaps", heatmaps("t", &panels).unwrap()),
        ("scatter", scatter("t", "x", "y", &scatters).unwrap()),
        (
            "lines",
            lines("t", "layer", "acc", &lines_, Some(("chance", 0.5))).unwrap(),
        ),
    ] {
        assert!(
            width_of(&svg) <= MAX_WIDTH,
            "{name}: {} px wide",
            width_of(&svg)
        );
        let sizes = font_sizes(&svg);
        assert!(!sizes.is_empty(), "{name}: no text");
        let smallest = sizes.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(smallest >= 11.0, "{name}: text at {smallest} px");
    }
}

/// Baselines are outlined in their own grey, models filled in theirs: never alike.
#[test]
fn baselines_are_drawn_unlike_models() {
    let cats = vec!["model".to_string(), "baseline: uniform".to_string()];
    let model = Bars::new("models", vec![0.2, f64::NAN], color(1));
    let mut baseline = Bars::new("baseline", vec![f64::NAN, 0.4], BASELINE);
    baseline.baseline = true;
    let svg = grouped_rows("t", "TV", &cats, &[model, baseline], None, None).unwrap();
    let hex = |c: RGBColor| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
    // the model's bar is a plain fill; the baseline's an outline over a faint fill
    let model_fill = format!("opacity=\"1\" fill=\"{}\" stroke=\"none\"", hex(color(1)));
    let baseline_fill = format!("opacity=\"0.18\" fill=\"{}\"", hex(BASELINE));
    let baseline_outline = format!("fill=\"none\" stroke=\"{}\"", hex(BASELINE));
    // the bar and its legend mark, each
    assert_eq!(svg.matches(&model_fill).count(), 2, "{svg}");
    assert_eq!(svg.matches(&baseline_fill).count(), 2, "{svg}");
    assert_eq!(svg.matches(&baseline_outline).count(), 2, "{svg}");
    assert!(!svg.contains(&format!("opacity=\"1\" fill=\"{}\"", hex(BASELINE))));
}
