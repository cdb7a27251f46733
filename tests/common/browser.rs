//! Headless Chromium (Debian's `chromium`) for tests of the HTML reports and of `weaver ui`'s
//! pages, without a browser-driver crate: the DevTools protocol on a pipe gives the DOM after
//! parsing and PNGs; the book's screenshots come from `--screenshot`.

use std::path::{Path, PathBuf};

/// Debian's Chromium, or None (the test then says it is skipped).
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|path| path.is_file())
    })
}

/// The Chromium [`dom`] shares; None until a test needs it.
static SHARED: std::sync::Mutex<Option<Driven>> = std::sync::Mutex::new(None);

/// The DOM of the page at `url` once it has loaded, as `--dump-dom` prints it, from one Chromium
/// the test process shares (a Chromium started for each page cost half a second of CPU, ten
/// times a suite). Pages take turns; after a test panicked while holding it, the next test
/// starts a new one. Once read, the page is left for `about:blank`, so that a live page's
/// requests do not outlast its test; the process's exit stops Chromium and removes its profile.
pub fn dom(browser: &Path, url: &str) -> String {
    on_shared_page(browser, url, |_, dom| dom)
}

/// A PNG of the page at `url` in a `width` by `height` window, written to `file` by the
/// Chromium [`dom`] shares (a Chromium of its own took seconds of a loaded test run to start).
pub fn shared_screenshot(browser: &Path, url: &str, (width, height): (u32, u32), file: &Path) {
    use base64::Engine as _;
    let png = on_shared_page(browser, url, |page, _| {
        let window = serde_json::json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false});
        page.send("Emulation.setDeviceMetricsOverride", window);
        let shot = page.send("Page.captureScreenshot", serde_json::json!({"format": "png"}));
        page.send("Emulation.clearDeviceMetricsOverride", serde_json::json!({}));
        base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().expect("the PNG")).expect("base64")
    });
    std::fs::write(file, png).unwrap();
}

/// `f` given the shared Chromium's page, loaded at `url`, and its DOM: see [`dom`].
fn on_shared_page<R>(browser: &Path, url: &str, f: impl FnOnce(&mut Driven, String) -> R) -> R {
    let mut shared = SHARED.lock().unwrap_or_else(|poisoned| {
        let mut left = poisoned.into_inner();
        *left = None;
        left
    });
    SHARED.clear_poison();
    let dom = match shared.as_mut() {
        Some(page) => page.visit(url),
        None => {
            // Registered after the suite's temporary-directory hook, so run before it (atexit
            // runs the last registered first): the profile lives in that directory.
            static STOP_AT_EXIT: std::sync::Once = std::sync::Once::new();
            // SAFETY: registers a function taking no arguments, which only drops the browser.
            STOP_AT_EXIT.call_once(|| unsafe {
                libc::atexit(stop_shared);
            });
            shared.insert(Driven::open(browser, url)).loaded(|_| true)
        }
    };
    let page = shared.as_mut().expect("the shared page");
    let made = f(page, dom);
    page.send("Page.navigate", serde_json::json!({"url": "about:blank"}));
    made
}

extern "C" fn stop_shared() {
    // A test still holding it at exit keeps it: exit must not wait.
    let shared = match SHARED.try_lock() {
        Ok(shared) => Some(shared),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    };
    if let Some(mut shared) = shared {
        shared.take();
    }
}

/// Runs headless Chromium on the page at `url` with `args`; no network but the URL's.
fn headless_url(browser: &Path, profile: &Path, url: &str, args: &[&str]) -> String {
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

/// A PNG of the page at `url`, taken by headless Chromium with `args` (window size, theme,
/// zoom), written to `file`: the book's screenshots.
pub fn screenshot(url: &str, file: &Path, args: &[&str]) {
    let chromium = chromium().expect("Chromium, for the book's screenshots");
    let profile = tempfile::tempdir().unwrap();
    let shot = format!("--screenshot={}", file.display());
    let mut all = vec![shot.as_str(), "--hide-scrollbars"];
    all.extend_from_slice(args);
    headless_url(&chromium, profile.path(), url, &all);
    assert!(std::fs::read(file).expect("chromium wrote the screenshot").starts_with(b"\x89PNG"));
}

/// The text of the element with `id`, from a serialized DOM.
pub fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"{id}\">");
    let start = dom.find(&open).unwrap_or_else(|| panic!("no #{id} in the DOM:\n{dom}")) + open.len();
    &dom[start..start + dom[start..].find('<').unwrap()]
}

/// Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// JSON messages, each ended by a NUL, commands on its fd 3, answers on its fd 4): one page,
/// in which a test types and clicks with script as a user would. Stopped when dropped.
pub struct Driven {
    child: std::process::Child,
    commands: std::fs::File,
    answers: std::io::BufReader<std::fs::File>,
    session: String,
    sent: u64,
    profile: tempfile::TempDir,
}

impl Driven {
    /// Chromium with a fresh profile, showing `url` once it has loaded. A Chromium that stops
    /// as it starts is started once more, and what it said is shown. (The cause seen so far,
    /// pipes given fds 3 and 4, is handled in `start`.)
    pub fn open(browser: &Path, url: &str) -> Driven {
        for attempt in 0..2 {
            let mut driven = Driven::start(browser);
            let target = match driven.try_send("Target.createTarget", serde_json::json!({"url": url})) {
                Ok(target) => target,
                Err(error) if attempt == 0 => {
                    eprintln!(
                        "chromium stopped as it started ({error}): starting it again; it said:\n{}",
                        driven.said()
                    );
                    continue;
                }
                Err(error) => panic!("chromium stopped as it started, twice: {error}; it said:\n{}", driven.said()),
            };
            let attached = driven
                .send("Target.attachToTarget", serde_json::json!({"targetId": target["targetId"], "flatten": true}));
            driven.session = attached["sessionId"].as_str().expect("a session").to_string();
            driven.loaded(|_| true);
            return driven;
        }
        unreachable!("the second attempt returns or panics")
    }

    fn start(browser: &Path) -> Driven {
        use std::os::fd::FromRawFd;
        use std::os::unix::process::CommandExt;
        let pipe = || {
            let mut fds = [0; 2];
            // SAFETY: `fds` has room for the two descriptors pipe2 writes.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "a pipe");
            fds
        };
        let (to_chromium, from_chromium) = (pipe(), pipe());
        let profile = tempfile::tempdir().unwrap();
        let mut command = std::process::Command::new(browser);
        command
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-pipe"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(profile.path().join("stderr")).expect("chromium's stderr file"));
        let (read_end, write_end) = (to_chromium[0], from_chromium[1]);
        // The pipes may have been given fds 3 or 4 themselves (a test process opens and closes
        // descriptors on many threads): `dup2(3, 3)` would leave fd 3 close-on-exec, and
        // `dup2(read_end, 3)` would close a write end still at 3. Moving both above 10 first
        // (close-on-exec copies) makes each dup2 a real copy that clears close-on-exec.
        // SAFETY: only fcntl and dup2, which are async-signal-safe, run between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let read_high = libc::fcntl(read_end, libc::F_DUPFD_CLOEXEC, 10);
                let write_high = libc::fcntl(write_end, libc::F_DUPFD_CLOEXEC, 10);
                if read_high < 0 || write_high < 0 || libc::dup2(read_high, 3) < 0 || libc::dup2(write_high, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start chromium");
        // SAFETY: the descriptors are ours (pipe2 above), each wrapped once; the child's copies are its own.
        let (commands, answers) = unsafe {
            libc::close(to_chromium[0]);
            libc::close(from_chromium[1]);
            (std::fs::File::from_raw_fd(to_chromium[1]), std::fs::File::from_raw_fd(from_chromium[0]))
        };
        Driven { child, commands, answers: std::io::BufReader::new(answers), session: String::new(), sent: 0, profile }
    }

    /// The end of what Chromium wrote to its stderr.
    fn said(&self) -> String {
        let said = std::fs::read(self.profile.path().join("stderr")).unwrap_or_default();
        String::from_utf8_lossy(&said[said.len().saturating_sub(4000)..]).into_owned()
    }

    /// Sends a command (to the page, once attached) and waits for its result.
    fn send(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.try_send(method, params).unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// The result of a command, or its error.
    fn try_send(&mut self, method: &str, params: serde_json::Value) -> Result<serde_json::Value, serde_json::Value> {
        use std::io::{BufRead, Write};
        self.sent += 1;
        let mut message = serde_json::json!({"id": self.sent, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = serde_json::json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        let gone = |error: String| serde_json::json!({"message": error});
        self.commands.write_all(&bytes).map_err(|e| gone(format!("writing a command: {e}")))?;
        loop {
            let mut answer = Vec::new();
            self.answers.read_until(0, &mut answer).map_err(|e| gone(format!("reading an answer: {e}")))?;
            if answer.is_empty() {
                return Err(gone(format!("chromium closed its pipe ({:?})", self.child.try_wait())));
            }
            answer.pop();
            let answer: serde_json::Value = serde_json::from_slice(&answer).expect("an answer is JSON");
            if answer["id"] == self.sent {
                return match answer.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(answer["result"].clone()),
                };
            }
        }
    }

    /// The value of a JavaScript expression evaluated in the page.
    pub fn evaluate(&mut self, expression: &str) -> serde_json::Value {
        let params = serde_json::json!({"expression": expression, "returnByValue": true, "awaitPromise": true});
        self.send("Runtime.evaluate", params)["result"]["value"].clone()
    }

    /// The page's cookies as a request sends them back (`name=value; …`), the HttpOnly ones
    /// too, which script cannot read.
    pub fn cookie_header(&mut self) -> String {
        let cookies = self.send("Network.getCookies", serde_json::json!({}))["cookies"].clone();
        let pairs = cookies.as_array().into_iter().flatten();
        pairs
            .map(|c| format!("{}={}", c["name"].as_str().unwrap(), c["value"].as_str().unwrap()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Goes to `url` as a link followed does, and waits until it has loaded there; its DOM.
    pub fn go(&mut self, url: &str) -> String {
        let quoted = serde_json::to_string(url).unwrap();
        self.leave_for(url, |page| {
            page.evaluate(&format!("location.href = {quoted}; true"));
        })
    }

    /// Opens `url` as one typed in the address bar does (a `file://` page after an `http://` one
    /// too, which a page's own navigation may not do), and waits until it has loaded; its DOM.
    pub fn visit(&mut self, url: &str) -> String {
        self.leave_for(url, |page| {
            let navigated = page.send("Page.navigate", serde_json::json!({"url": url}));
            assert!(navigated.get("errorText").is_none(), "{url} cannot be opened: {navigated}");
        })
    }

    /// Marks the page left, has `navigate` go to `url`, and waits until `url` has loaded; its DOM.
    fn leave_for(&mut self, url: &str, navigate: impl FnOnce(&mut Driven)) -> String {
        let quoted = serde_json::to_string(url).unwrap();
        // As the browser writes it (`http://host:80/` is `http://host/`). The page left is marked:
        // going to the URL it is at, the old document would otherwise pass for the new one, and
        // a click right after be cancelled by the navigation.
        let href = self.evaluate(&format!("window.weaverLeft = true; new URL({quoted}).href"));
        navigate(self);
        self.loaded(|at| at == href.as_str().unwrap())
    }

    /// Waits until the page has loaded at a location `wanted` accepts; its DOM.
    pub fn loaded(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        // While a page loads, it may have no context to evaluate in yet.
        let expression = "document.readyState === 'complete' && !window.weaverLeft \
             ? location.href + ' ' + document.documentElement.outerHTML : ''";
        let params = serde_json::json!({"expression": expression, "returnByValue": true});
        loop {
            let page = self.try_send("Runtime.evaluate", params.clone()).map(|r| r["result"]["value"].clone());
            let page = page.ok().and_then(|page| page.as_str().map(str::to_string)).unwrap_or_default();
            let (at, dom) = page.split_once(' ').unwrap_or_default();
            if !at.is_empty() && at != "about:blank" && wanted(at) {
                return dom.to_string();
            }
            assert!(std::time::Instant::now() < deadline, "the page did not load: at {at}: {dom}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
