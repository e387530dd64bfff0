//! Grouped bars: vertical (distributions over options) and horizontal (per group, leaderboards).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::*;

/// One bar series: a name, a value per category (NaN = no bar), its colour.
#[derive(Debug, Clone)]
pub struct Bars {
    pub name: String,
    pub values: Vec<f64>,
    pub color: RGBColor,
    /// Confidence interval per category, drawn as a whisker.
    pub intervals: Option<Vec<(f64, f64)>>,
    /// A baseline (uniform, majority): drawn outlined, never like a model.
    pub baseline: bool,
}

impl Bars {
    pub fn new(name: impl Into<String>, values: Vec<f64>, color: RGBColor) -> Self {
        Bars {
            name: name.into(),
            values,
            color,
            intervals: None,
            baseline: false,
        }
    }

    fn entry(&self) -> Entry {
        let mark = if self.baseline {
            Mark::Hollow
        } else {
            Mark::Fill
        };
        Entry::new(self.name.clone(), self.color, mark)
    }

    /// The bar from `from` to `to` in chart coordinates: filled, or outlined for a baseline.
    fn draw<DB: DrawingBackend>(
        &self,
        chart: &mut Plot<DB>,
        from: (f64, f64),
        to: (f64, f64),
    ) -> Result<(), String> {
        let c = self.color;
        if self.baseline {
            chart
                .draw_series([
                    Rectangle::new([from, to], c.mix(0.18).filled()),
                    Rectangle::new([from, to], c.stroke_width(2)),
                ])
                .map_err(err)?;
        } else {
            chart
                .draw_series([Rectangle::new([from, to], c.filled())])
                .map_err(err)?;
        }
        Ok(())
    }
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
    let entries: Vec<Entry> = bars.iter().map(Bars::entry).collect();
    let (legend_w, legend_h) = legend_size(&entries);
    // at most the page's width: the bars narrow, the text never shrinks
    let width = ((90 + n as u32 * (k as u32 * 16 + 24)).max(520) + legend_w).min(MAX_WIDTH);
    let height = 420.max(legend_h + 80);
    let y_max = upper(bars.iter().flat_map(|b| b.values.iter().copied()));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = plot_area(
            &root,
            title,
            legend_w,
            (40, 64),
            0f64..n as f64,
            0f64..y_max,
        )?;
        mesh(&mut chart)
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(y_desc)
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(err)?;
        let slot = 0.8 / k as f64;
        for (s, b) in bars.iter().enumerate() {
            for (i, &v) in b.values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                let x0 = i as f64 + 0.1 + s as f64 * slot;
                b.draw(&mut chart, (x0, 0.0), (x0 + slot * 0.9, v))?;
            }
        }
        for (i, name) in categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            root.draw(&Text::new(
                name.clone(),
                (px, py + 8),
                text_style(TEXT).pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(err)?;
        }
        legend(&root, (width as i32 - legend_w as i32, 50), &entries)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Category labels of horizontal bars wrap onto at most three lines of this many characters.
const LABEL_CHARS: usize = 36;
const LABEL_LINES: usize = 3;

/// Horizontal bars grouped by category with optional whiskers, survey ticks per category
/// and a vertical reference line (entropy per group, the TV leaderboard). Where every
/// category has one bar (a leaderboard: a model or a baseline per row), the bars share one
/// slot instead of leaving the others' slots empty.
pub fn grouped_rows(
    title: &str,
    x_desc: &str,
    categories: &[String],
    bars: &[Bars],
    survey_marks: Option<(&str, &[f64])>,
    vline: Option<(&str, f64)>,
) -> Figure {
    let n = categories.len().max(1);
    let one_slot = (0..categories.len()).all(|i| {
        bars.iter()
            .filter(|b| b.values.get(i).is_some_and(|v| v.is_finite()))
            .count()
            <= 1
    });
    let k = if one_slot { 1 } else { bars.len().max(1) };
    let mut entries: Vec<Entry> = bars.iter().map(Bars::entry).collect();
    if let Some((name, _)) = survey_marks {
        entries.push(Entry::new(name, SURVEY, Mark::Tick));
    }
    if let Some((name, _)) = vline {
        entries.push(Entry::new(name, SURVEY, Mark::Dashed));
    }
    let (legend_w, legend_h) = legend_size(&entries);
    let labels: Vec<Vec<String>> = categories.iter().map(|c| wrap(c, LABEL_CHARS)).collect();
    let label_lines = labels
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(1)
        .min(LABEL_LINES);
    let label_w = (labels
        .iter()
        .flatten()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(4) as u32
        * CHAR_W
        + 16)
        .clamp(60, LABEL_CHARS as u32 * CHAR_W + 16);
    let row_h = (k as u32 * 13 + 10)
        .max(24)
        .max(label_lines as u32 * LINE_H as u32 + 8);
    let height = (120 + n as u32 * row_h).max(240).max(legend_h + 80);
    let width = (560 + label_w + legend_w).min(MAX_WIDTH);
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
        let mut chart = plot_area(
            &root,
            title,
            legend_w,
            (48, label_w),
            0f64..x_max,
            0f64..n as f64,
        )?;
        mesh(&mut chart)
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
            let s = if one_slot { 0 } else { s };
            let y0 = |i: usize| row(i) + 0.9 - (s as f64 + 1.0) * slot;
            for (i, &v) in b.values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
                b.draw(&mut chart, (0.0, y0(i)), (v, y0(i) + slot * 0.85))?;
            }
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
        for (i, lines) in labels.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(0.0, row(i) + 0.5));
            let mut shown: Vec<String> = lines.iter().take(LABEL_LINES).cloned().collect();
            if lines.len() > LABEL_LINES {
                shown[LABEL_LINES - 1].push('…');
            }
            let top = py - (shown.len() as i32 - 1) * LINE_H / 2;
            for (l, line) in shown.into_iter().enumerate() {
                root.draw(&Text::new(
                    line,
                    (px - 8, top + l as i32 * LINE_H),
                    text_style(TEXT).pos(Pos::new(HPos::Right, VPos::Center)),
                ))
                .map_err(err)?;
            }
        }
        legend(&root, (width as i32 - legend_w as i32, 50), &entries)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
