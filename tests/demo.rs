//! Runs `examples/demo.rs` and every `curl` line it prints, checking each gets the status the
//! demo says it will (the number after `#`); then reloads its configuration with SIGHUP, and
//! starts it a second time on the same database. After the printed lines, `/metrics` counts
//! them in `portcullis_decisions_total`, and `/metrics` and `/healthz` answer this host only.
//! Without curl it prints `SKIPPED` and passes, unless `PORTCULLIS_REQUIRE_SERVICES=1` (CI),
//! where it fails.

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

struct Demo {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(dir: &Path) -> Self {
        // `cargo test` builds examples next to the test binaries: target/<profile>/examples/.
        let exe = std::env::current_exe().expect("test binary path");
        let binary: PathBuf = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target dir")
            .join("examples")
            .join("demo");
        assert!(
            binary.exists(),
            "build the demo first: {}",
            binary.display()
        );
        let mut child = Command::new(binary)
            .env("PORTCULLIS_DEMO_ADDR", "127.0.0.1:0")
            .env("PORTCULLIS_DEMO_DIR", dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("demo starts");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Self { child, lines }
    }

    /// Reads lines until one contains `marker`; returns them all.
    fn read_until(&mut self, marker: &str) -> Vec<String> {
        let mut seen = Vec::new();
        for line in self.lines.by_ref() {
            let line = line.expect("demo output");
            let done = line.contains(marker);
            seen.push(line);
            if done {
                return seen;
            }
        }
        panic!("demo exited before printing {marker:?}: {seen:?}");
    }
}

/// Whether curl is here; prints `SKIPPED` (or fails under `PORTCULLIS_REQUIRE_SERVICES=1`)
/// when it is not.
fn curl_available() -> bool {
    if Command::new("curl").arg("--version").output().is_ok() {
        return true;
    }
    // CI sets PORTCULLIS_REQUIRE_SERVICES=1: there a check that never ran must not pass.
    if std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("curl is not installed, and PORTCULLIS_REQUIRE_SERVICES=1");
    }
    println!("SKIPPED: curl is not installed");
    false
}

/// A directory of the demo's own for this test.
fn demo_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-demo-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The base URL the demo printed.
fn base_url(lines: &[String]) -> String {
    lines
        .iter()
        .find(|line| line.starts_with("portcullis demo listening on"))
        .expect("the demo says where it listens")
        .split_whitespace()
        .nth(4)
        .expect("base url")
        .to_owned()
}

/// The body of `GET url`.
fn body(url: &str) -> String {
    let output = Command::new("curl")
        .args(["-s", "--fail", url])
        .output()
        .expect("curl runs");
    assert!(output.status.success(), "GET {url}: {output:?}");
    String::from_utf8(output.stdout).expect("UTF-8 body")
}

fn status(curl_args: &str) -> u16 {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "curl -s -o /dev/null -w '%{{http_code}}' {curl_args}"
        ))
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&output.stdout)
        .parse()
        .expect("status")
}

/// Runs each printed `curl -i …   # NNN …` line and checks its status; returns each line with
/// the status it got.
fn check_curl_lines(lines: &[String]) -> Vec<(String, u16)> {
    let curls: Vec<&String> = lines.iter().filter(|l| l.starts_with("curl ")).collect();
    assert!(curls.len() >= 8, "demo printed {lines:?}");
    curls
        .iter()
        .map(|line| {
            let (command, comment) = line.split_once('#').expect("status comment");
            let expected: u16 = comment
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .expect("status number after #");
            let got = status(command.trim().trim_start_matches("curl -i "));
            assert_eq!(got, expected, "{line}");
            ((*line).clone(), got)
        })
        .collect()
}

/// Asserts that the demo printed, and `check_curl_lines` ran, a line with every part of `parts`,
/// and that it got `expected`.
fn ran(results: &[(String, u16)], parts: &[&str], expected: u16) {
    let (line, got) = results
        .iter()
        .find(|(line, _)| parts.iter().all(|part| line.contains(part)))
        .unwrap_or_else(|| panic!("no curl line with {parts:?}: {results:?}"));
    assert_eq!(*got, expected, "{line}");
}

/// Issue #20: an API key as the Basic password (`-u demo:pc_…`) gets 200 on the route that takes
/// no passwords, and demo's password there gets 403.
fn ran_the_key_as_password_lines(results: &[(String, u16)]) {
    ran(results, &["-u demo:pc_", "/api/reports", "# 200"], 200);
    let password = results
        .iter()
        .find(|(line, _)| line.contains("-u demo:") && line.contains("/me   # 200"))
        .map(|(line, _)| {
            line.split("-u demo:")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .expect("demo's password")
                .to_owned()
        })
        .expect("a line with demo's password");
    assert!(!password.starts_with("pc_"), "{password}");
    let with_password = format!("-u demo:{password} ");
    ran(
        results,
        &[with_password.as_str(), "/api/reports", "# 403"],
        403,
    );
}

/// Issue #21: demo lists their own tokens, creates one at the cap, is refused one over it, and
/// revokes one.
fn ran_the_token_lines(results: &[(String, u16)]) {
    ran(results, &["-u demo:", "/tokens   # 200"], 200);
    ran(results, &["-u demo:", "\"laptop\"", "/tokens   # 201"], 201);
    ran(
        results,
        &["-u demo:", "\"forever\"", "/tokens   # 422"],
        422,
    );
    ran(
        results,
        &["-u demo:", "-X DELETE", "/tokens/", "# 204"],
        204,
    );
}

#[test]
fn demo_curl_lines_get_the_statuses_they_promise_and_sighup_reloads() {
    if !curl_available() {
        return;
    }
    let dir = demo_dir("main");

    let mut demo = Demo::start(&dir);
    let lines = demo.read_until("kill -HUP");
    let results = check_curl_lines(&lines);
    for code in [200, 401, 403] {
        assert!(results.iter().any(|(_, got)| *got == code), "{results:?}");
    }
    ran_the_key_as_password_lines(&results);
    ran_the_token_lines(&results);
    ran(&results, &["/healthz   # 200"], 200);
    ran(&results, &["/metrics   # 200"], 200);
    assert!(
        dir.join("demo.db").exists(),
        "users and keys live in a SQLite file"
    );

    // Close /health by editing the configuration, then SIGHUP.
    let config = dir.join("portcullis-demo.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let closed = text.replace(
        "path = \"/health\"\npolicy = \"public\"",
        "path = \"/health\"\npolicy = \"admins\"",
    );
    assert_ne!(text, closed);
    std::fs::write(&config, closed).expect("write config");
    let base = base_url(&lines);
    let pid = demo.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    demo.read_until("configuration reloaded");
    assert_eq!(status(&format!("{base}/health")), 401);

    // A broken edit is refused and the running configuration stays.
    std::fs::write(&config, "[[routes]]\npath = \"/x\"\npolicy = \"nope\"\n")
        .expect("write config");
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let refused = demo.read_until("reload failed");
    assert!(
        refused.last().expect("line").contains("routes[0].policy"),
        "{refused:?}"
    );
    assert_eq!(status(&format!("{base}/health")), 401);
    drop(demo);

    // A second start on the same database: fresh credentials, and they work.
    std::fs::write(&config, text).expect("restore config");
    let mut again = Demo::start(&dir);
    let lines = again.read_until("kill -HUP");
    let results = check_curl_lines(&lines);
    ran_the_key_as_password_lines(&results);
    ran_the_token_lines(&results);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue #19: after the printed curl lines, `/metrics` shows `portcullis_decisions_total` with
/// `scheme`, `outcome` and `reason` labels, counting exactly the requests made: each printed line
/// that got a 2xx (and this `/metrics` request itself, decided before it renders) as `allowed`,
/// each 4xx as `refused`; the two JWT lines as one of each for `scheme="jwt"`.
#[test]
fn demo_metrics_count_the_printed_requests() {
    if !curl_available() {
        return;
    }
    let dir = demo_dir("metrics");
    let mut demo = Demo::start(&dir);
    let lines = demo.read_until("kill -HUP");
    let results = check_curl_lines(&lines);
    let text = body(&format!("{}/metrics", base_url(&lines)));

    let series = decisions(&text);
    assert!(
        !series.is_empty(),
        "no portcullis_decisions_total in:\n{text}"
    );
    for (labels, _) in &series {
        for label in ["scheme", "outcome", "reason"] {
            assert!(labels.iter().any(|(name, _)| name == label), "{labels:?}");
        }
    }
    let sum = |want: &[(&str, &str)]| -> f64 {
        series
            .iter()
            .filter(|(labels, _)| {
                want.iter()
                    .all(|(n, v)| labels.iter().any(|(name, value)| name == n && value == v))
            })
            .map(|(_, count)| count)
            .sum()
    };
    // The Gate lets the over-cap token request (422) through: the token API refuses it.
    let succeeded = results
        .iter()
        .filter(|(_, s)| (200..300).contains(s) || *s == 422)
        .count();
    let refused = results
        .iter()
        .filter(|(_, s)| *s >= 400 && *s != 422)
        .count();
    assert_eq!(
        sum(&[("outcome", "allowed")]),
        (succeeded + 1) as f64,
        "{text}"
    );
    assert_eq!(sum(&[("outcome", "refused")]), refused as f64, "{text}");
    assert_eq!(sum(&[]), (results.len() + 1) as f64, "{text}");
    assert_eq!(
        sum(&[("scheme", "jwt"), ("outcome", "allowed")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        sum(&[("scheme", "jwt"), ("outcome", "refused")]),
        1.0,
        "{text}"
    );
    drop(demo);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `portcullis_decisions_total` series of a Prometheus text exposition: labels and count.
fn decisions(text: &str) -> Vec<(Vec<(String, String)>, f64)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("portcullis_decisions_total{"))
        .map(|rest| {
            let (labels, value) = rest.rsplit_once("} ").expect("labels, then the value");
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once("=\"").expect("name=\"value\"");
                    (name.to_owned(), value.trim_end_matches('"').to_owned())
                })
                .collect();
            (labels, value.trim().parse().expect("a number"))
        })
        .collect()
}

/// `/metrics` and `/healthz` answer this host only: the demo's own configuration file, built
/// in-process, lets 127.0.0.1 and ::1 through and refuses any other peer (401); `/health` stays
/// public.
#[tokio::test]
async fn demo_metrics_and_healthz_answer_this_host_only() {
    if !curl_available() {
        return;
    }
    let dir = demo_dir("loopback");
    let mut demo = Demo::start(&dir);
    demo.read_until("kill -HUP");
    let config = dir.join("portcullis-demo.toml");
    let services = portcullis::config::Config::from_file(&config)
        .expect("the demo's configuration")
        .build_services()
        .await
        .expect("builds");
    let gate = services.gate;
    for path in ["/metrics", "/healthz"] {
        for (peer, allowed) in [
            ("127.0.0.1:5000", true),
            ("127.8.9.10:5000", true),
            ("[::1]:5000", true),
            ("192.0.2.7:5000", false),
            ("[2001:db8::7]:5000", false),
        ] {
            let mut request = http::Request::get(path).body(()).expect("request");
            request
                .extensions_mut()
                .insert(portcullis::PeerAddr(peer.parse().expect("address")));
            let (parts, ()) = request.into_parts();
            let decided = gate
                .check(&portcullis::RequestView::from_parts(&parts))
                .await;
            match decided {
                Ok(None) => assert!(allowed, "{path} from {peer} was let through"),
                Ok(Some(principal)) => panic!("{path} from {peer}: {principal:?}"),
                Err(rejection) => {
                    assert!(!allowed, "{path} from {peer}: {rejection:?}");
                    assert_eq!(gate.respond(&rejection).status(), 401, "{path} from {peer}");
                }
            }
        }
    }
    let (parts, ()) = http::Request::get("/health")
        .extension(portcullis::PeerAddr(
            "192.0.2.7:5000".parse().expect("address"),
        ))
        .body(())
        .expect("request")
        .into_parts();
    assert!(
        gate.check(&portcullis::RequestView::from_parts(&parts))
            .await
            .is_ok()
    );
    drop(demo);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The parser the metrics test reads `/metrics` with, on the exposition format
/// `metrics-exporter-prometheus` writes.
#[test]
fn decisions_reads_prometheus_text() {
    let text = "# TYPE portcullis_decisions_total counter\n\
        portcullis_decisions_total{scheme=\"jwt\",outcome=\"allowed\",reason=\"allowed\"} 3\n\
        portcullis_decisions_total{scheme=\"none\",outcome=\"refused\",reason=\"credentials_missing\"} 1\n\
        portcullis_other_total{scheme=\"jwt\"} 9\n";
    let series = decisions(text);
    assert_eq!(series.len(), 2);
    assert_eq!(
        series[0].0,
        [
            ("scheme", "jwt"),
            ("outcome", "allowed"),
            ("reason", "allowed")
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
    assert_eq!(series[0].1, 3.0);
    assert_eq!(
        series[1].0[2],
        ("reason".to_owned(), "credentials_missing".to_owned())
    );
    assert_eq!(series[1].1, 1.0);
}

/// The demo prints the token page's URL, with demo's credentials in it as a browser takes them;
/// it opens the page (curl sends them as Basic, as Chromium does: tests/browser.rs).
#[test]
fn demo_prints_the_token_page_and_it_opens() {
    if !curl_available() {
        return;
    }
    let dir = demo_dir("page");
    let mut demo = Demo::start(&dir);
    let lines = demo.read_until("kill -HUP");
    let line = lines
        .iter()
        .find(|line| line.starts_with("Open "))
        .expect("the page line");
    let url = line.split_whitespace().nth(1).expect("a URL");
    assert!(
        url.starts_with("http://demo:") && url.ends_with("/tokens/ui"),
        "{url}"
    );
    let html = body(url);
    assert!(html.contains("<form id=\"create-form\""), "{html}");
    assert!(
        html.contains("Signed in as <strong>demo</strong>"),
        "{html}"
    );
    drop(demo);
    let _ = std::fs::remove_dir_all(&dir);
}
