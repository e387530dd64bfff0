//! The report's figures as SVG strings (plotters' SVG backend). Text stays `<text>`, so the
//! browser lays it out and the figures are searchable; category labels and legends are drawn
//! on the root area so long names never collide with the mesh.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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
/// Baselines (uniform, majority): grey and outlined ([`Mark::Hollow`]), apart from every model.
pub const BASELINE: RGBColor = RGBColor(119, 119, 119);
const FONT: &str = "sans-serif";
/// Type sizes as plotters takes them; its SVG backend writes `font-size` = size / 1.24, so 17
/// is 13.7 px (10.3 pt) and 22 is 17.7 px. No figure is wider than [`MAX_WIDTH`], the report
/// page's width, so the page never scales one down and the type keeps its size.
const TEXT: u32 = 17;
const TITLE: u32 = 22;
/// The widest a figure is drawn (the report's page is 1,168 px wide inside its margins).
pub const MAX_WIDTH: u32 = 1100;
/// Legend names longer than this wrap onto further lines.
const LEGEND_CHARS: usize = 34;
/// Average advance of a character at [`TEXT`] in the common sans fonts (DejaVu Sans is the
/// widest), for laying out labels before the browser measures them.
const CHAR_W: u32 = 8;
/// Line height of [`TEXT`].
const LINE_H: i32 = 18;

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

/// How a legend entry's series is drawn: the legend shows the same mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A filled bar: a model's value.
    Fill,
    /// An outlined, lightly filled bar: a baseline, never mistaken for a model.
    Hollow,
    /// A short thick vertical tick: the survey's value in the same row.
    Tick,
    /// A dashed line: a reference level (chance, the survey for everyone).
    Dashed,
    /// Points with a line: a scatter series or a line over x.
    Line,
}

/// One legend entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub color: RGBColor,
    pub mark: Mark,
}

impl Entry {
    pub fn new(name: impl Into<String>, color: RGBColor, mark: Mark) -> Self {
        Entry {
            name: name.into(),
            color,
            mark,
        }
    }

    fn lines(&self) -> Vec<String> {
        wrap_words(&self.name, LEGEND_CHARS)
    }
}

/// Splits text into lines of at most `max` characters at spaces; a longer word gets a line of
/// its own (the legend's column is wide enough for [`LEGEND_CHARS`]).
fn wrap_words(text: &str, max: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= max => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Draws the legend at (x, y): one mark per entry, its name wrapped beside it.
fn legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x, mut y): (i32, i32),
    entries: &[Entry],
) -> Result<(), String> {
    for e in entries {
        let c = e.color;
        let mark: Result<(), _> = match e.mark {
            Mark::Fill => root.draw(&Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled())),
            Mark::Hollow => root
                .draw(&Rectangle::new(
                    [(x, y - 6), (x + 14, y + 6)],
                    c.mix(0.18).filled(),
                ))
                .and_then(|_| {
                    root.draw(&Rectangle::new(
                        [(x, y - 6), (x + 14, y + 6)],
                        c.stroke_width(2),
                    ))
                }),
            Mark::Tick => root.draw(&PathElement::new(
                vec![(x + 7, y - 8), (x + 7, y + 8)],
                c.stroke_width(3),
            )),
            Mark::Dashed => root
                .draw(&PathElement::new(
                    vec![(x, y), (x + 5, y)],
                    c.stroke_width(2),
                ))
                .and_then(|_| {
                    root.draw(&PathElement::new(
                        vec![(x + 9, y), (x + 14, y)],
                        c.stroke_width(2),
                    ))
                }),
            Mark::Line => root
                .draw(&PathElement::new(
                    vec![(x, y), (x + 14, y)],
                    c.stroke_width(2),
                ))
                .and_then(|_| root.draw(&Circle::new((x + 7, y), 3, c.filled()))),
        };
        mark.map_err(err)?;
        for line in e.lines() {
            root.draw(&Text::new(
                line,
                (x + 20, y),
                text_style(TEXT).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
            y += LINE_H;
        }
        y += 5;
    }
    Ok(())
}

/// The legend's width and height in px.
fn legend_size(entries: &[Entry]) -> (u32, u32) {
    let longest = entries
        .iter()
        .flat_map(|e| e.lines())
        .map(|l| l.chars().count() as u32)
        .max()
        .unwrap_or(0);
    let lines: usize = entries.iter().map(|e| e.lines().len()).sum();
    let width = if entries.is_empty() {
        0
    } else {
        (36 + CHAR_W * longest).clamp(80, 36 + CHAR_W * LEGEND_CHARS as u32)
    };
    (
        width,
        (lines as i32 * LINE_H + 5 * entries.len() as i32) as u32,
    )
}

/// Axes over f64 ranges, as every figure here has.
type Plot<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The plot area every figure shares: the title above, 12 px margins, the legend's column on
/// the right, axis label areas of `(x, y)` px, and the axes' ranges.
fn plot_area<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    legend_w: u32,
    (x_area, y_area): (u32, u32),
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<Plot<'a, DB>, String> {
    ChartBuilder::on(root)
        .caption(title, (FONT, TITLE))
        .margin(12)
        .margin_right(legend_w + 12)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(x, y)
        .map_err(err)
}

/// The mesh every figure shares (light grid, the report's type for ticks and axis names),
/// for the caller to finish (axis names, tick formats) and draw.
fn mesh<'a, 'b, DB: DrawingBackend>(
    chart: &'b mut Plot<'a, DB>,
) -> plotters::chart::MeshStyle<
    'a,
    'b,
    plotters::coord::types::RangedCoordf64,
    plotters::coord::types::RangedCoordf64,
    DB,
> {
    let mut mesh = chart.configure_mesh();
    mesh.max_light_lines(2)
        .light_line_style(RGBColor(236, 236, 236))
        .label_style((FONT, TEXT))
        .axis_desc_style((FONT, TEXT));
    mesh
}

/// The report's text style at `size` px.
fn text_style(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
}

mod bars;
mod export;
mod heatmap;
#[cfg(test)]
mod tests;
mod xy;

pub use bars::{grouped_columns, grouped_rows, Bars};
pub use export::{Format, Printer, PNG_DPI};
pub use heatmap::{heatmaps, Heatmap};
pub use xy::{lines, log_y_curves, scatter, Curve, Line, Scatter};
