//! Correlation heatmaps in a grid with one shared colour bar.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::*;

/// Diverging blue–white–red for correlations in [−1, 1].
pub(super) fn diverging(v: f64) -> RGBColor {
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
    let label_w = (panels
        .iter()
        .flat_map(|p| p.labels.iter().map(|l| l.chars().count()))
        .max()
        .unwrap_or(4) as u32
        * CHAR_W
        + 14)
        .clamp(50, 240);
    // a grid (one strip of a dozen panels would be shrunk to illegible text at page width),
    // with one colour bar for all; two a row, a model's matrix beside the survey's over the
    // same groups, unless two would not fit the page
    let cell_for = |cols: u32| ((MAX_WIDTH / cols).saturating_sub(label_w + 30) / n as u32).min(48);
    let cols = if panels.len() >= 2 && cell_for(2) >= 40 {
        2
    } else {
        1
    };
    // many options: narrower cells, down to where a value ("−0.45") still fits its cell
    let cell = cell_for(cols).max(36);
    // 16 and 14 are 12.9 px and 11.3 px in the SVG
    let value_size = if cell >= 42 { 16 } else { 14 };
    let rows = panels.len().div_ceil(cols as usize).max(1) as u32;
    let panel_w = label_w + n as u32 * cell + 30;
    let panel_h = 46 + label_w + n as u32 * cell + 16;
    let title_chars = ((panel_w - 10) / CHAR_W) as usize;
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
            text_style(TITLE).pos(Pos::new(HPos::Center, VPos::Top)),
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
                        top as i32 + LINE_H * k as i32,
                    ),
                    text_style(TEXT).pos(Pos::new(HPos::Center, VPos::Top)),
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
                        text_style(value_size)
                            .color(&ink)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    ))
                    .map_err(err)?;
                }
                let label = &panel.labels[i];
                root.draw(&Text::new(
                    label.clone(),
                    (x0 - 6, y0 + (i as u32 * cell + cell / 2) as i32),
                    text_style(TEXT).pos(Pos::new(HPos::Right, VPos::Center)),
                ))
                .map_err(err)?;
                // column labels, rotated to read bottom-up above the columns
                root.draw(&Text::new(
                    label.clone(),
                    (x0 + (i as u32 * cell + cell / 2) as i32, y0 - 6),
                    TextStyle::from((FONT, TEXT).into_font().transform(FontTransform::Rotate270))
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
                text_style(TEXT).pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(err)?;
        }
        root.draw(&Text::new(
            "Pearson r".to_string(),
            (bx - 8, by + 7),
            text_style(TEXT).pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
