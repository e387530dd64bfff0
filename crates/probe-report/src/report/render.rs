//! Writing a built report: `report.md`, the self-contained `report.html`, `report.json` and
//! one file per figure.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{Report, ReportError, Result};
use crate::figures::{Format, Printer, PNG_DPI};

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:16px;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}\
.table-wrap{max-width:100%;overflow-x:auto;margin:1em 0}\
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right;vertical-align:top}\
td{white-space:nowrap}td:first-child,th:first-child{text-align:left}td:first-child{white-space:normal;min-width:10em;max-width:26em}\
th{background:#f3f3f3;max-width:14em}\
figure{margin:1em 0;overflow-x:auto}figure svg{max-width:100%;height:auto;display:block}\
.notes{color:#555;font-size:.9em}.how{font-size:.9em;color:#333;background:#f6f8fa;border-left:3px solid #888;padding:.4em .8em}\
.files{font-size:.9em;color:#555;margin:.2em 0}.banner{background:#fff4d6;border:1px solid #d9a93a;border-radius:4px;padding:.6em 1em}";

impl Report {
    /// Files to write, relative to the output directory: report.md, report.html, report.json
    /// and figures/<id>.svg.
    pub fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        self.files_as(&[Format::Svg])
            .expect("SVG figures need no rendering")
    }

    /// [`Report::files`] with each figure in every one of `formats` (`figures/<id>.svg`,
    /// `.png` at 300 dpi, `.pdf`); the HTML links the files under each figure.
    pub fn files_as(&self, formats: &[Format]) -> Result<Vec<(PathBuf, Vec<u8>)>> {
        let printer = if formats.iter().any(|f| *f != Format::Svg) {
            Some(Printer::new().map_err(|reason| ReportError::Figure {
                figure: "png/pdf",
                reason,
            })?)
        } else {
            None
        };
        let mut files = Vec::new();
        let mut md = format!("# {}\n\n", self.title);
        let mut html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            html_escape(&self.title),
            html_escape(&self.title)
        );
        for note in &self.notes {
            let _ = writeln!(md, "> **Note:** {}\n", md_escape(note));
            let _ = writeln!(
                html,
                "<p class=\"banner\"><b>Note:</b> {}</p>",
                html_escape(note)
            );
        }
        {
            let (name, notes) = &self.reference;
            let _ = writeln!(md, "Survey reference: **{}**.", md_escape(name));
            let _ = writeln!(
                html,
                "<p>Survey reference: <b>{}</b>.</p>",
                html_escape(name)
            );
            for n in notes {
                let _ = writeln!(md, "- {n}");
                let _ = writeln!(html, "<p class=\"notes\">{}</p>", html_escape(n));
            }
            md.push('\n');
        }
        html.push_str("<nav><ul>\n");
        for s in &self.sections {
            let _ = writeln!(
                html,
                "<li><a href=\"#{}\">{}</a></li>",
                s.id,
                html_escape(&s.title)
            );
        }
        html.push_str("</ul></nav>\n");
        for s in &self.sections {
            let _ = writeln!(md, "## {}\n", s.title);
            let _ = writeln!(
                html,
                "<section id=\"{}\">\n<h2>{}</h2>",
                s.id,
                html_escape(&s.title)
            );
            for p in &s.paragraphs {
                let _ = writeln!(md, "{p}\n");
                let _ = writeln!(html, "<p>{}</p>", html_escape(p));
            }
            if let Some(svg) = &s.figure {
                let rel = |format: Format| {
                    PathBuf::from("figures").join(format!("{}.{}", s.id, format.extension()))
                };
                let shown = if formats.contains(&Format::Svg) {
                    Format::Svg
                } else {
                    Format::Png
                };
                let _ = writeln!(md, "![{}]({})\n", s.title, rel(shown).display());
                let _ = writeln!(html, "<figure id=\"figure-{}\">\n{svg}\n</figure>", s.id);
                let mut links = Vec::new();
                for &format in formats {
                    let bytes = match (format, &printer) {
                        (Format::Svg, _) => Ok(svg.clone().into_bytes()),
                        (Format::Png, Some(p)) => p.png(svg),
                        (Format::Pdf, Some(p)) => p.pdf(svg),
                        (_, None) => unreachable!("a printer exists for PNG and PDF"),
                    }
                    .map_err(|reason| ReportError::Figure {
                        figure: s.id,
                        reason,
                    })?;
                    let label = match format {
                        Format::Svg => "SVG".to_string(),
                        Format::Png => format!("PNG, {PNG_DPI:.0} dpi"),
                        Format::Pdf => "PDF".to_string(),
                    };
                    links.push(format!("<a href=\"{}\">{label}</a>", rel(format).display()));
                    files.push((rel(format), bytes));
                }
                let _ = writeln!(
                    html,
                    "<p class=\"files\">This figure as {}.</p>",
                    links.join(" · ")
                );
                if let Some(how) = &s.how_to_read {
                    let _ = writeln!(md, "*How to read this:* {how}\n");
                    let _ = writeln!(
                        html,
                        "<p class=\"how\"><b>How to read this:</b> {}</p>",
                        html_escape(how)
                    );
                }
            }
            if let Some(t) = &s.table {
                if !t.rows.is_empty() {
                    let _ = writeln!(
                        md,
                        "| {} |",
                        t.header
                            .iter()
                            .map(|h| md_escape(h))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                    let _ = writeln!(md, "|{}", " --- |".repeat(t.header.len()));
                    // wide tables scroll inside their box instead of running off the page
                    html.push_str("<div class=\"table-wrap\">\n<table>\n<tr>");
                    for h in &t.header {
                        let _ = write!(html, "<th>{}</th>", html_escape(h));
                    }
                    html.push_str("</tr>\n");
                    for r in &t.rows {
                        let _ = writeln!(
                            md,
                            "| {} |",
                            r.iter()
                                .map(|c| md_escape(c))
                                .collect::<Vec<_>>()
                                .join(" | ")
                        );
                        html.push_str("<tr>");
                        for c in r {
                            let _ = write!(html, "<td>{}</td>", html_escape(c));
                        }
                        html.push_str("</tr>\n");
                    }
                    html.push_str("</table>\n</div>\n");
                    md.push('\n');
                }
            }
            html.push_str("</section>\n");
        }
        html.push_str("</body>\n</html>\n");
        files.push(("report.md".into(), md.into_bytes()));
        files.push(("report.html".into(), html.into_bytes()));
        files.push((
            "report.json".into(),
            serde_json::to_vec_pretty(&self.json).expect("report JSON is serializable"),
        ));
        Ok(files)
    }
}
