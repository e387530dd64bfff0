//! What the `probe` binary's end-to-end tests add to `probe-test-support` (re-exported here):
//! the binary itself and the report in a real browser.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub mod browser;

pub use probe_test_support::*;

pub fn probe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_probe"))
}

/// Renders an HTML file in headless Chromium (Debian's `chromium`): fails on any console
/// message or failed load (the report has no scripts, so any is an error), writes a
/// screenshot to `target/test-artifacts/<name>.png` and returns the DOM after load. `None`,
/// with a notice, when no Chromium is installed.
pub fn render_in_chromium(html: &Path, name: &str) -> Option<String> {
    let bin = browser::chromium()?;
    let url = format!("file://{}", html.canonicalize().unwrap().display());
    let artifacts = workspace_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ];
    let check = |out: &Output| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "chromium failed: {stderr}");
        for line in stderr.lines() {
            assert!(
                !line.contains("CONSOLE") && !line.contains("Failed to load"),
                "chromium reports a page error: {line}"
            );
        }
    };
    let shot = Command::new(bin)
        .args(common)
        .arg("--window-size=1280,5000")
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .unwrap();
    check(&shot);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "screenshot {} is {size} bytes",
        png.display()
    );
    let dom = Command::new(bin)
        .args(common)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    check(&dom);
    eprintln!("screenshot: {}", png.display());
    Some(String::from_utf8_lossy(&dom.stdout).into_owned())
}
