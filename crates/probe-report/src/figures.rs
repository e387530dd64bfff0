//! The report's figures as SVG strings (plotters' SVG backend). Text stays `<text>`, so the
//! browser lays it out and the figures are searchable; category labels and legends are drawn
//! on the root area so long names never collide with the mesh.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use probe_metrics::stats::Regression;

/// Series colours: Paul Tol's "muted" scheme (nine colours, distinct under the common forms of
/// colour blindness), then his "vibrant" one; survey data keeps [`SURVEY`] to stand apart.
const PALETTE: [RGBColor; 15] = [
    RGBColor(0xCC, 0x66, 0x77),
    RGBColor(0x33, 0x22, 0x88),
    RGBColor(0xDD, 0xCC, 0x77),
    RGBColor(0x11, 0x77, 0x33),
    RGBColor(0x88, 0xCC, 0xEE),
    RGBColor(0x88, 0x22, 0x55),
    RGBColor(0x44, 0xAA, 0x99),
    RGBColor(0x99, 0x99, 0x33),
    RGBColor(0xAA, 0x44, 0x99),
    RGBColor(0x00, 0x77, 0xBB),
    RGBColor(0x33, 0xBB, 0xEE),
    RGBColor(0x00, 0x99, 0x88),
    RGBColor(0xEE, 0x77, 0x33),
    RGBColor(0xCC, 0x33, 0x11),
    RGBColor(0xEE, 0x33, 0x77),
];
pub const SURVEY: RGBColor = RGBColor(45, 45, 45);
const FONT: &str = "sans-serif";

/// The colour of series `i`: no two series share one (the palette, then hues a golden angle
/// apart at three lightness levels, never repeating).
pub fn color(i: usize) -> RGBColor {
    if let Some(&c) = PALETTE.get(i) {
        return c;
    }
    let k = (i - PALETTE.len()) as f64;
    let hue = (k * 137.507_764) % 360.0;
    let lightness = [0.38, 0.55, 0.70][(i - PALETTE.len()) % 3];
    // a deterministic tiny shift per round keeps hues from ever coinciding
    let hue = (hue + (k / 3.0).floor() * 0.731) % 360.0;
    hsl(hue, 0.55, lightness)
}

fn hsl(hue: f64, saturation: f64, lightness: f64) -> RGBColor {
    let c = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let h = hue / 60.0;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = lightness - c / 2.0;
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    RGBColor(byte(r), byte(g), byte(b))
}

/// Splits a title into lines of at most `max` characters at spaces (a word longer than a
/// line is cut with an ellipsis).
fn wrap(title: &str, max: usize) -> Vec<String> {
    let max = max.max(8);
    let mut lines: Vec<String> = Vec::new();
    for word in title.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= max => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    for line in &mut lines {
        if line.chars().count() > max {
            *line = line.chars().take(max - 1).collect::<String>() + "…";
        }
    }
    lines
}

/// An axis range around the data, padded by 5 % of its span (so that points spanning
/// 0.455–0.485 are not drawn flat on a 0–0.5 axis); a single value gets ±2 % (at least 0.01).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        (lo.abs() * 0.02).max(0.01)
    };
    (lo - pad, hi + pad)
}

pub type Figure = Result<String, String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// One bar series: a name, a value per category (NaN = no bar), its colour.
#[derive(Debug, Clone)]
pub struct Bars {
    pub name: String,
    pub values: Vec<f64>,
    pub color: RGBColor,
    /// Confidence interval per category, drawn as a whisker.
    pub intervals: Option<Vec<(f64, f64)>>,
}

fn legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    entries: &[(String, RGBColor)],
) -> Result<(), String> {
    for (i, (name, c)) in entries.iter().enumerate() {
        let y = y + 18 * i as i32;
        root.draw(&Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()))
            .map_err(err)?;
        root.draw(&Text::new(
            name.clone(),
            (x + 18, y),
            TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(err)?;
    }
    Ok(())
}

fn legend_width(entries: &[(String, RGBColor)]) -> u32 {
    let longest = entries
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    (40 + 7 * longest as u32).clamp(80, 560)
}

fn upper(values: impl Iterator<Item = f64>) -> f64 {
    let m = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
    if m <= 0.0 {
        1.0
    } else {
        m * 1.12
    }
}

/// Vertical bars grouped by category (party distributions: parties × {models, survey}).
pub fn grouped_columns(title: &str, y_desc: &str, categories: &[String], bars: &[Bars]) -> Figure {
    let n = categories.len().max(1);
    let k = bars.len().max(1);
    let entries: Vec<(String, RGBColor)> = bars.iter().map(|b| (b.name.clone(), b.color)).collect();
    let legend_w = legend_width(&entries);
    let width = (90 + n as u32 * (k as u32 * 16 + 24)).max(520) + legend_w;
    let height = 400;
    let y_max = upper(bars.iter().flat_map(|b| b.values.iter().copied()));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 17))
            .margin(12)
            .margin_right(legend_w + 12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n as f64, 0f64..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .max_light_lines(2)
            .light_line_style(RGBColor(236, 236, 236))
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(y_desc)
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(err)?;
        let slot = 0.8 / k as f64;
        for (s, b) in bars.iter().enumerate() {
            let c = b.color;
            chart
                .draw_series(
                    b.values
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(i, &v)| {
                            let x0 = i as f64 + 0.1 + s as f64 * slot;
                            Rectangle::new([(x0, 0.0), (x0 + slot * 0.9, v)], c.filled())
                        }),
                )
                .map_err(err)?;
        }
        for (i, name) in categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            root.draw(&Text::new(
                name.clone(),
                (px, py + 8),
                TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(err)?;
        }
        legend(&root, (width as i32 - legend_w as i32, 50), &entries)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Horizontal bars grouped by category with optional whiskers, survey ticks per category
/// and a vertical reference line (entropy per group, the TV leaderboard).
pub fn grouped_rows(
    title: &str,
    x_desc: &str,
    categories: &[String],
    bars: &[Bars],
    survey_marks: Option<(&str, &[f64])>,
    vline: Option<(&str, f64)>,
) -> Figure {
    let n = categories.len().max(1);
    let k = bars.len().max(1);
    let mut entries: Vec<(String, RGBColor)> =
        bars.iter().map(|b| (b.name.clone(), b.color)).collect();
    if let Some((name, _)) = survey_marks {
        entries.push((name.to_string(), SURVEY));
    }
    if let Some((name, _)) = vline {
        entries.push((name.to_string(), SURVEY));
    }
    let legend_w = legend_width(&entries);
    let label_w = (categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(4) as u32
        * 7
        + 16)
        .clamp(60, 320);
    let row_h = (k as u32 * 12 + 10).max(22);
    let height = (110 + n as u32 * row_h).max(220);
    let width = 560 + label_w + legend_w;
    let x_max = upper(
        bars.iter()
            .flat_map(|b| {
                b.values.iter().copied().chain(
                    b.intervals
                        .iter()
                        .flat_map(|iv| iv.iter().map(|(_, hi)| *hi)),
                )
            })
            .chain(survey_marks.iter().flat_map(|(_, m)| m.iter().copied()))
            .chain(vline.map(|(_, v)| v)),
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 17))
            .margin(12)
            .margin_right(legend_w + 12)
            .x_label_area_size(44)
            .y_label_area_size(label_w)
            .build_cartesian_2d(0f64..x_max, 0f64..n as f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .max_light_lines(2)
            .light_line_style(RGBColor(236, 236, 236))
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(x_desc)
            .x_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(err)?;
        // first category on top
        let row = |i: usize| (n - 1 - i) as f64;
        let slot = 0.8 / k as f64;
        for (s, b) in bars.iter().enumerate() {
            let c = b.color;
            let y0 = |i: usize| row(i) + 0.9 - (s as f64 + 1.0) * slot;
            chart
                .draw_series(
                    b.values
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(i, &v)| {
                            Rectangle::new([(0.0, y0(i)), (v, y0(i) + slot * 0.85)], c.filled())
                        }),
                )
                .map_err(err)?;
            if let Some(intervals) = &b.intervals {
                for (i, &(lo, hi)) in intervals.iter().enumerate() {
                    if !(lo.is_finite() && hi.is_finite()) {
                        continue;
                    }
                    let y = y0(i) + slot * 0.425;
                    let h = slot * 0.3;
                    chart
                        .draw_series([
                            PathElement::new(vec![(lo, y), (hi, y)], BLACK.stroke_width(1)),
                            PathElement::new(vec![(lo, y - h), (lo, y + h)], BLACK.stroke_width(1)),
                            PathElement::new(vec![(hi, y - h), (hi, y + h)], BLACK.stroke_width(1)),
                        ])
                        .map_err(err)?;
                }
            }
        }
        if let Some((_, marks)) = survey_marks {
            for (i, &m) in marks.iter().enumerate() {
                if m.is_finite() {
                    chart
                        .draw_series([PathElement::new(
                            vec![(m, row(i) + 0.05), (m, row(i) + 0.95)],
                            SURVEY.stroke_width(3),
                        )])
                        .map_err(err)?;
                }
            }
        }
        if let Some((_, v)) = vline {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(v, 0.0), (v, n as f64)],
                    6,
                    4,
                    SURVEY.stroke_width(2),
                ))
                .map_err(err)?;
        }
        for (i, name) in categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(0.0, row(i) + 0.5));
            root.draw(&Text::new(
                name.clone(),
                (px - 8, py),
                TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(err)?;
        }
        legend(&root, (width as i32 - legend_w as i32, 50), &entries)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One scatter series with its fitted line.
#[derive(Debug, Clone)]
pub struct Scatter {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
    pub fit: Option<Regression>,
}

/// Points per series with each series' regression line over the series' x range.
pub fn scatter(title: &str, x_desc: &str, y_desc: &str, series: &[Scatter]) -> Figure {
    let entries: Vec<(String, RGBColor)> = series
        .iter()
        .map(|s| {
            let fit = s
                .fit
                .map(|f| format!(" (slope {:.3}, r {:.2})", f.slope, f.r))
                .unwrap_or_default();
            (format!("{}{fit}", s.name), s.color)
        })
        .collect();
    let legend_w = legend_width(&entries);
    let (width, height) = (620 + legend_w, 440);
    // both axes scaled to the data: the sensitivity points' spread is the finding
    let (x_lo, x_hi) = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let (y_lo, y_hi) = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 17))
            .margin(12)
            .margin_right(legend_w + 12)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .max_light_lines(2)
            .light_line_style(RGBColor(236, 236, 236))
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| format!("{v:.3}"))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .draw()
            .map_err(err)?;
        for s in series {
            let c = s.color;
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|&p| Circle::new(p, 2, c.mix(0.45).filled())),
                )
                .map_err(err)?;
            if let Some(f) = s.fit {
                let lo = s.points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
                let hi = s
                    .points
                    .iter()
                    .map(|p| p.0)
                    .fold(f64::NEG_INFINITY, f64::max);
                chart
                    .draw_series(LineSeries::new(
                        [lo, hi].map(|x| (x, (f.intercept + f.slope * x).clamp(y_lo, y_hi))),
                        c.stroke_width(3),
                    ))
                    .map_err(err)?;
            }
        }
        legend(&root, (width as i32 - legend_w as i32, 50), &entries)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A named, coloured polyline.
pub type Line = (String, RGBColor, Vec<(f64, f64)>);

/// Lines over a numeric x (probe accuracy per layer) with a dashed horizontal reference.
pub fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Line],
    hline: Option<(&str, f64)>,
) -> Figure {
    let mut entries: Vec<(String, RGBColor)> =
        series.iter().map(|(n, c, _)| (n.clone(), *c)).collect();
    if let Some((name, _)) = hline {
        entries.push((name.to_string(), SURVEY));
    }
    let legend_w = legend_width(&entries);
    let (width, height) = (600 + legend_w, 400);
    let xs = || series.iter().flat_map(|(_, _, p)| p.iter().map(|q| q.0));
    let x_min = xs().fold(f64::INFINITY, f64::min);
    let x_max = xs().fold(f64::NEG_INFINITY, f64::max);
    let (x_min, x_max) = if x_min.is_finite() && x_max > x_min {
        (x_min - 0.5, x_max + 0.5)
    } else if x_min.is_finite() {
        (x_min - 1.0, x_min + 1.0)
    } else {
        (0.0, 1.0) // nothing to draw: an empty frame, never an unbounded axis
    };
    let ys = || series.iter().flat_map(|(_, _, p)| p.iter().map(|q| q.1));
    let y_lo = ys().chain(hline.map(|h| h.1)).fold(1.0, f64::min);
    let y_lo = (y_lo - 0.05).max(0.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 17))
            .margin(12)
            .margin_right(legend_w + 12)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(x_min..x_max, y_lo..1.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .max_light_lines(2)
            .light_line_style(RGBColor(236, 236, 236))
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(err)?;
        for (_, c, points) in series {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
                .map_err(err)?;
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(err)?;
        }
        if let Some((_, y)) = hline {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x_min, y), (x_max, y)],
                    6,
                    4,
                    SURVEY.stroke_width(1),
                ))
                .map_err(err)?;
        }
        legend(&root, (width as i32 - legend_w as i32, 50), &entries)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Diverging blue–white–red for correlations in [−1, 1].
fn diverging(v: f64) -> RGBColor {
    let t = v.clamp(-1.0, 1.0);
    let lerp = |a: u8, b: u8, s: f64| (a as f64 + (b as f64 - a as f64) * s).round() as u8;
    let (white, blue, red) = ((247, 247, 247), (33, 102, 172), (178, 24, 43));
    let (to, s) = if t < 0.0 { (blue, -t) } else { (red, t) };
    RGBColor(
        lerp(white.0, to.0, s),
        lerp(white.1, to.1, s),
        lerp(white.2, to.2, s),
    )
}

/// One heatmap panel: a title, item labels and a row-major square matrix.
#[derive(Debug, Clone)]
pub struct Heatmap {
    pub title: String,
    pub labels: Vec<String>,
    pub values: Vec<f64>,
}

/// Side-by-side correlation heatmaps with the values printed in the cells.
pub fn heatmaps(title: &str, panels: &[Heatmap]) -> Figure {
    let n = panels
        .iter()
        .map(|p| p.labels.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let cell = 38u32;
    let label_w = (panels
        .iter()
        .flat_map(|p| p.labels.iter().map(|l| l.chars().count()))
        .max()
        .unwrap_or(4) as u32
        * 7
        + 14)
        .clamp(50, 240);
    let panel_w = label_w + n as u32 * cell + 30;
    // a grid (one strip of a dozen panels would be shrunk to illegible text at page width),
    // with one colour bar for all
    // two a row: a model's matrix beside the survey's over the same groups
    let cols = panels.len().clamp(1, 2) as u32;
    let rows = panels.len().div_ceil(2).max(1) as u32;
    let panel_h = 46 + label_w + n as u32 * cell + 16;
    let title_chars = ((panel_w - 10) / 7) as usize;
    let bar_h = 56;
    let width = (panel_w * cols).max(420);
    let height = 40 + panel_h * rows + bar_h;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        root.draw(&Text::new(
            title.to_string(),
            (width as i32 / 2, 8),
            TextStyle::from((FONT, 17).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(err)?;
        for (p, panel) in panels.iter().enumerate() {
            let m = panel.labels.len();
            let (col, row) = (p as u32 % cols, p as u32 / cols);
            let top = 40 + row * panel_h;
            let x0 = (col * panel_w + label_w) as i32;
            let y0 = (top + 46 + label_w) as i32;
            // long series names wrap onto a second line instead of running into a neighbour
            let mut lines = wrap(&panel.title, title_chars);
            if lines.len() > 2 {
                let rest = lines[1..].join(" ");
                lines = vec![
                    lines[0].clone(),
                    wrap(&rest, title_chars - 1)[0].clone() + "…",
                ];
            }
            for (k, line) in lines.iter().enumerate() {
                root.draw(&Text::new(
                    line.clone(),
                    (
                        (col * panel_w + panel_w / 2) as i32,
                        top as i32 + 17 * k as i32,
                    ),
                    TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
                ))
                .map_err(err)?;
            }
            for i in 0..m {
                for j in 0..m {
                    let v = panel.values[i * m + j];
                    let (cx, cy) = (x0 + (j as u32 * cell) as i32, y0 + (i as u32 * cell) as i32);
                    let fill = if v.is_finite() {
                        diverging(v)
                    } else {
                        RGBColor(200, 200, 200)
                    };
                    root.draw(&Rectangle::new(
                        [(cx, cy), (cx + cell as i32 - 1, cy + cell as i32 - 1)],
                        fill.filled(),
                    ))
                    .map_err(err)?;
                    let text = if v.is_finite() {
                        format!("{v:.2}")
                    } else {
                        "–".into()
                    };
                    let ink = if v.abs() > 0.6 { WHITE } else { BLACK };
                    root.draw(&Text::new(
                        text,
                        (cx + cell as i32 / 2, cy + cell as i32 / 2),
                        TextStyle::from((FONT, 10).into_font())
                            .color(&ink)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    ))
                    .map_err(err)?;
                }
                let label = &panel.labels[i];
                root.draw(&Text::new(
                    label.clone(),
                    (x0 - 6, y0 + (i as u32 * cell + cell / 2) as i32),
                    TextStyle::from((FONT, 12).into_font())
                        .pos(Pos::new(HPos::Right, VPos::Center)),
                ))
                .map_err(err)?;
                // column labels, rotated to read bottom-up above the columns
                root.draw(&Text::new(
                    label.clone(),
                    (x0 + (i as u32 * cell + cell / 2) as i32, y0 - 6),
                    TextStyle::from((FONT, 12).into_font().transform(FontTransform::Rotate270))
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                ))
                .map_err(err)?;
            }
        }
        // the shared colour bar: Pearson r from −1 to 1
        let (bar_w, steps) = (300i32, 60i32);
        let (bx, by) = (width as i32 / 2 - bar_w / 2, (height - bar_h) as i32 + 8);
        for k in 0..steps {
            let v = -1.0 + 2.0 * (f64::from(k) + 0.5) / f64::from(steps);
            let x = bx + k * bar_w / steps;
            root.draw(&Rectangle::new(
                [(x, by), (x + bar_w / steps + 1, by + 14)],
                diverging(v).filled(),
            ))
            .map_err(err)?;
        }
        for (v, label) in [(-1.0, "−1"), (0.0, "0"), (1.0, "1")] {
            root.draw(&Text::new(
                label.to_string(),
                (bx + ((v + 1.0) / 2.0 * f64::from(bar_w)) as i32, by + 18),
                TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(err)?;
        }
        root.draw(&Text::new(
            "Pearson r".to_string(),
            (bx - 8, by + 7),
            TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_svg_with_every_label() {
        let cats = vec!["SPD".to_string(), "GRÜNE & <Co>".to_string()];
        let bars = vec![Bars {
            name: "model".into(),
            values: vec![0.4, 0.6],
            color: color(0),
            intervals: Some(vec![(0.3, 0.5), (0.5, 0.7)]),
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
}
