//! The report in a real browser: headless Chromium lays `report.html` out at a given width and
//! a script measures it (overflow, type size); screenshots of every section are kept under
//! `target/test-artifacts/`. Skipped with a notice where no Chromium is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::workspace_root;

/// What the page measured.
#[derive(Debug, serde::Deserialize)]
pub struct Layout {
    /// Elements past the page's right edge, or overflowing a box that does not scroll.
    pub problems: Vec<String>,
    /// Boxes whose content needs horizontal scrolling (a table wider than the page).
    pub scrolled: Vec<String>,
    /// Text under the minimum size, in px as rendered (SVG text scaled by its figure).
    pub small_text: Vec<String>,
    /// Text nodes measured (HTML and SVG), and the smallest rendered size among them.
    pub texts: usize,
    pub smallest_px: f64,
    /// Each section's id and rendered height.
    pub sections: Vec<(String, f64)>,
}

/// Measures the page; appended before `</body>` of a copy, never of the report itself.
const CHECK: &str = r#"<script>
(function () {
  const MIN_PX = 10;
  const page = document.documentElement.clientWidth;
  const where = (el) => {
    const s = el.closest('section');
    return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' in ' + (s ? s.id : 'the header');
  };
  const problems = [], scrolled = [], small = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('svg') && el.tagName.toLowerCase() !== 'svg') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const cs = getComputedStyle(el);
    const inScroller = el.parentElement && el.parentElement.closest('.table-wrap');
    if (!inScroller && r.right > page + 0.5) {
      problems.push(where(el) + ' ends at ' + r.right.toFixed(0) + ' px, past the page (' + page + ' px)');
    }
    if (/(auto|scroll)/.test(cs.overflowX)) {
      if (el.scrollWidth > el.clientWidth + 1) scrolled.push(where(el) + ': ' + el.scrollWidth + ' > ' + el.clientWidth + ' px');
    } else if (cs.display !== 'inline' && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
      problems.push(where(el) + ' overflows its box: ' + el.scrollWidth + ' > ' + el.clientWidth + ' px');
    }
  }
  let texts = 0, smallest = Infinity;
  const measure = (size, what) => {
    texts += 1;
    smallest = Math.min(smallest, size);
    if (size < MIN_PX) small.push(size.toFixed(1) + ' px: ' + what);
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const t = walker.currentNode, el = t.parentElement;
    if (!t.textContent.trim() || el.closest('svg') || el.closest('script')) continue;
    measure(parseFloat(getComputedStyle(el).fontSize), where(el) + ' "' + t.textContent.trim().slice(0, 40) + '"');
  }
  for (const t of document.querySelectorAll('svg text')) {
    if (!t.textContent.trim()) continue;
    const m = t.getScreenCTM();
    const scale = Math.hypot(m.a, m.b);
    measure(parseFloat(getComputedStyle(t).fontSize) * scale, where(t) + ' (figure) "' + t.textContent.trim().slice(0, 40) + '"');
  }
  const sections = [...document.querySelectorAll('section')].map((s) => [s.id, s.getBoundingClientRect().height]);
  const out = document.createElement('pre');
  out.id = 'layout-check';
  out.textContent = encodeURIComponent(JSON.stringify({problems, scrolled, small_text: small, texts, smallest_px: smallest, sections}));
  document.body.appendChild(out);
})();
</script>"#;

/// The installed Chromium, or `None` with a notice.
pub fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if found.is_none() {
        eprintln!("notice: no chromium installed (scripts/test.sh installs it with apt where it can); skipping the browser check");
    }
    found
}

fn run(bin: &str, width: u32, height: u32, extra: &[String], page: &Path) -> String {
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--window-size={width},{height}"))
        .args(extra)
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Percent-decoding of the script's `encodeURIComponent` output.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Lays `html` out at `width` px, measures it, and screenshots each section on its own (the
/// others hidden) into `target/test-artifacts/<name>/<section>.png`.
pub fn check_layout(html: &Path, width: u32, name: &str) -> Option<Layout> {
    let bin = chromium()?;
    let text = std::fs::read_to_string(html).unwrap();
    let dir = html.parent().unwrap();
    // the copies sit beside the report, so its relative links still resolve
    let probe_page = dir.join("layout-check.html");
    std::fs::write(
        &probe_page,
        text.replace("</body>", &format!("{CHECK}\n</body>")),
    )
    .unwrap();
    let dom = run(bin, width, 2000, &["--dump-dom".to_string()], &probe_page);
    let encoded = dom
        .split("<pre id=\"layout-check\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .expect("the layout script ran");
    let layout: Layout = serde_json::from_str(&percent_decode(encoded)).unwrap();
    let artifacts: PathBuf = workspace_root().join("target/test-artifacts").join(name);
    std::fs::create_dir_all(&artifacts).unwrap();
    for (id, height) in &layout.sections {
        let page = dir.join(format!("section-{id}.html"));
        let only = format!(
            "<style>nav, section:not(#{id}) {{ display: none !important; }}</style>\n</head>"
        );
        std::fs::write(&page, text.replacen("</head>", &only, 1)).unwrap();
        let png = artifacts.join(format!("{id}.png"));
        // the header above the section, the section, a margin
        let height = (*height as u32 + 700).min(16_000);
        run(
            bin,
            width,
            height,
            &[format!("--screenshot={}", png.display())],
            &page,
        );
        assert!(png.is_file(), "no screenshot of {id}");
        std::fs::remove_file(&page).unwrap();
    }
    std::fs::remove_file(&probe_page).unwrap();
    eprintln!(
        "browser check at {width} px: {} texts (smallest {:.1} px), screenshots in {}",
        layout.texts,
        layout.smallest_px,
        artifacts.display()
    );
    Some(layout)
}
