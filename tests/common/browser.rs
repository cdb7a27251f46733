//! Headless Chromium (Debian's `chromium`) for tests of the HTML reports and of `weaver ui`'s
//! pages, without a browser-driver crate: `--dump-dom` gives the DOM after parsing,
//! `--screenshot` a PNG.

use std::path::{Path, PathBuf};

/// Debian's Chromium, or None (the test then says it is skipped).
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|path| path.is_file())
    })
}

/// Runs headless Chromium on `page` with `args` (say `--dump-dom`), offline.
pub fn headless(browser: &Path, profile: &Path, page: &Path, args: &[&str]) -> String {
    headless_url(browser, profile, &format!("file://{}", page.display()), args)
}

/// Runs headless Chromium on the page at `url` with `args`; no network but the URL's.
pub fn headless_url(browser: &Path, profile: &Path, url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("the DOM is UTF-8")
}

/// The text of the element with `id`, from a serialized DOM.
pub fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"{id}\">");
    let start = dom.find(&open).unwrap_or_else(|| panic!("no #{id} in the DOM:\n{dom}")) + open.len();
    &dom[start..start + dom[start..].find('<').unwrap()]
}
