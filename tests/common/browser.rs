//! Headless Chromium over WebDriver for the browser tests: starts Debian's `chromedriver` on a
//! free port of 127.0.0.1, opens a session with a throwaway profile, and stops both on drop.
//!
//! Without `chromedriver` (or `chromium`) [`Browser::start`] prints `SKIPPED: …` and returns
//! `None`, unless `PORTCULLIS_REQUIRE_SERVICES=1` (CI, whose `.ci/run` installs both), when it
//! panics: there a test that never ran must not pass.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

/// How long chromedriver may take to listen, and Chromium to open a session.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one wait for the page (an element, a navigation) may take.
pub(crate) const WAIT_TIMEOUT: Duration = Duration::from_secs(15);

/// A running chromedriver with one headless Chromium session.
pub(crate) struct Browser {
    /// The WebDriver session.
    pub(crate) client: Client,
    // Dropped after `client`: stops chromedriver and Chromium, removes the profile.
    _driver: Driver,
}

/// The chromedriver process and the profile directory it runs Chromium with.
struct Driver {
    process: Child,
    port: u16,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or returns `None` (after printing
    /// why) when they are not installed and `PORTCULLIS_REQUIRE_SERVICES` is not `1`.
    pub(crate) async fn start(test: &str) -> Option<Browser> {
        let (driver_path, chromium) = match (find("CHROMEDRIVER", "chromedriver"), chromium()) {
            (Some(driver), Some(chromium)) => (driver, chromium),
            (driver, _) => {
                let missing = if driver.is_none() {
                    "chromedriver"
                } else {
                    "chromium"
                };
                let message = format!(
                    "{missing} is not installed (apt-get install chromium chromium-driver)"
                );
                if std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Ok("1") {
                    panic!("{message}, and PORTCULLIS_REQUIRE_SERVICES=1");
                }
                println!("SKIPPED: {message}");
                return None;
            }
        };
        let port = free_port();
        let process = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", driver_path.display()));
        let profile =
            std::env::temp_dir().join(format!("portcullis-browser-{test}-{}", std::process::id()));
        // The guard first, so that a failure below still stops chromedriver.
        let mut driver = Driver {
            process,
            port,
            profile,
        };
        wait_until_started(&mut driver.process, port);
        let _ = std::fs::remove_dir_all(&driver.profile);
        std::fs::create_dir_all(&driver.profile).expect("profile directory");
        let client = tokio::time::timeout(
            START_TIMEOUT,
            ClientBuilder::rustls()
                .expect("rustls connector")
                .capabilities(capabilities(&chromium, &driver.profile))
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .expect("Chromium session within the timeout")
        .expect("Chromium session");
        Some(Browser {
            client,
            _driver: driver,
        })
    }

    /// Sends a Chrome DevTools Protocol command through chromedriver
    /// (`POST /session/{id}/goog/cdp/execute`) and returns its result.
    pub(crate) async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp {
                cmd: cmd.to_owned(),
                params,
            })
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
    }

    /// Polls `check` (every 100 ms) until it holds; panics naming `what` after [`WAIT_TIMEOUT`].
    pub(crate) async fn wait_until<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        while !check().await {
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT_TIMEOUT:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Chromium's console messages since the last call (`goog:loggingPrefs` asks for all of
    /// them), where a Content-Security-Policy violation is reported.
    pub(crate) async fn console(&self) -> Vec<String> {
        let entries = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("browser log");
        entries
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Driver {
    /// Asks chromedriver to end its sessions (it quits Chromium) and exit, then kills it if it
    /// has not within a few seconds, and removes the profile. Synchronous, so it also runs when a
    /// test panics.
    fn drop(&mut self) {
        shutdown(self.port);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A DevTools command, relayed by chromedriver.
#[derive(Debug)]
struct Cdp {
    cmd: String,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// chromedriver's browser log (`POST /session/{id}/se/log`, type `browser`).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

/// The capabilities for headless Chromium with a profile of its own.
fn capabilities(chromium: &Path, profile: &Path) -> serde_json::Map<String, Value> {
    let caps = json!({
        "browserName": "chrome",
        "goog:loggingPrefs": { "browser": "ALL" },
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                // Root in CI containers: Chromium's sandbox needs user namespaces it may not have.
                "--no-sandbox",
                "--disable-gpu",
                // /dev/shm is small in containers.
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1000,700",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                "--disable-component-update",
            ],
        },
    });
    match caps {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// The program `env` names, else `name` found on `PATH`.
fn find(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// Debian's `chromium` (or `CHROMIUM`), which its `chromium-driver` drives.
fn chromium() -> Option<PathBuf> {
    find("CHROMIUM", "chromium").or_else(|| find("CHROMIUM", "chromium-browser"))
}

/// A port of 127.0.0.1 nobody listens on now (chromedriver cannot be told to take port 0 and
/// say which it got).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Waits (bounded) for chromedriver's "started successfully" line on its stdout, then drains the
/// rest of its stdout in the background so it never blocks on a full pipe.
fn wait_until_started(driver: &mut Child, port: u16) {
    let stdout = driver.stdout.take().expect("piped stdout");
    let (started, is_started) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if line.contains("started successfully") {
                let _ = started.send(Ok(()));
                break;
            }
            if line.contains("bind() failed") || line.contains("Exiting") {
                let _ = started.send(Err(line));
                return;
            }
        }
        for _ in lines {}
    });
    match is_started.recv_timeout(START_TIMEOUT) {
        Ok(Ok(())) => {}
        Ok(Err(line)) => {
            let _ = driver.kill();
            panic!("chromedriver did not start on port {port}: {line}");
        }
        Err(_) => {
            let _ = driver.kill();
            panic!("chromedriver did not start on port {port} within {START_TIMEOUT:?}");
        }
    }
}

/// `GET /shutdown`: chromedriver quits every session's browser and exits. Best effort, bounded.
fn shutdown(port: u16) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let request =
        format!("GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    }
}
