//! Scatter plots with fitted lines, and lines over a numeric x.

use plotters::prelude::*;

use super::*;
use probe_metrics::stats::Regression;

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
    let entries: Vec<Entry> = series
        .iter()
        .map(|s| {
            let fit = s
                .fit
                .map(|f| format!(" (slope {:.3}, r {:.2})", f.slope, f.r))
                .unwrap_or_default();
            Entry::new(format!("{}{fit}", s.name), s.color, Mark::Line)
        })
        .collect();
    let (legend_w, legend_h) = legend_size(&entries);
    let (width, height) = ((620 + legend_w).min(MAX_WIDTH), 460.max(legend_h + 80));
    // both axes scaled to the data: the sensitivity points' spread is the finding
    let (x_lo, x_hi) = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let (y_lo, y_hi) = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = plot_area(&root, title, legend_w, (48, 72), x_lo..x_hi, y_lo..y_hi)?;
        mesh(&mut chart)
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
                        .map(|&p| Circle::new(p, 3, c.mix(0.55).filled())),
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
    let mut entries: Vec<Entry> = series
        .iter()
        .map(|(n, c, _)| Entry::new(n.clone(), *c, Mark::Line))
        .collect();
    if let Some((name, _)) = hline {
        entries.push(Entry::new(name, SURVEY, Mark::Dashed));
    }
    let (legend_w, legend_h) = legend_size(&entries);
    let (width, height) = ((600 + legend_w).min(MAX_WIDTH), 420.max(legend_h + 80));
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
        let mut chart = plot_area(&root, title, legend_w, (48, 72), x_min..x_max, y_lo..1.0)?;
        mesh(&mut chart)
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

/// A curve through labelled points (a sweep): one series per model, each point labelled
/// (e.g. its temperature); x linear, y on a log10 scale (positive values), both axes scaled to
/// the data.
pub type Curve = (String, RGBColor, Vec<(f64, f64, String)>);

pub fn log_y_curves(title: &str, x_desc: &str, y_desc: &str, series: &[Curve]) -> Figure {
    let entries: Vec<Entry> = series
        .iter()
        .map(|(n, c, _)| Entry::new(n.clone(), *c, Mark::Line))
        .collect();
    let (legend_w, legend_h) = legend_size(&entries);
    let (width, height) = ((620 + legend_w).min(MAX_WIDTH), 460.max(legend_h + 80));
    let log = |y: f64| y.max(1e-6).log10();
    let (x_lo, x_hi) = padded_range(series.iter().flat_map(|s| s.2.iter().map(|p| p.0)));
    let (y_lo, y_hi) = padded_range(series.iter().flat_map(|s| s.2.iter().map(|p| log(p.1))));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = plot_area(&root, title, legend_w, (48, 72), x_lo..x_hi, y_lo..y_hi)?;
        mesh(&mut chart)
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| format!("{v:.2}"))
            .y_label_formatter(&|v| format!("{:.3}", 10f64.powf(*v)))
            .draw()
            .map_err(err)?;
        for (_, c, points) in series {
            let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.0, log(p.1))).collect();
            chart
                .draw_series(LineSeries::new(xy.iter().copied(), c.stroke_width(2)))
                .map_err(err)?;
            chart
                .draw_series(xy.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .map_err(err)?;
            chart
                .draw_series(
                    points
                        .iter()
                        .zip(&xy)
                        .map(|(p, &at)| Text::new(p.2.clone(), at, text_style(TEXT).color(c))),
                )
                .map_err(err)?;
        }
        legend(&root, (width as i32 - legend_w as i32, 50), &entries)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
