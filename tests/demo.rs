//! Runs `examples/demo.rs` and every `curl` line it prints, checking each gets the status the
//! demo says it will (the number after `#`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn demo_binary() -> PathBuf {
    // `cargo test` builds examples next to the test binaries: target/<profile>/examples/.
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    profile_dir.join("examples").join("demo")
}

#[test]
fn demo_curl_lines_get_the_statuses_they_promise() {
    if Command::new("curl").arg("--version").output().is_err() {
        println!("SKIPPED: curl is not installed");
        return;
    }
    let binary = demo_binary();
    assert!(binary.exists(), "build the demo first: {}", binary.display());
    let mut child = Command::new(binary)
        .env("PORTCULLIS_DEMO_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let _guard = KillOnDrop(child);

    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("demo output");
        let done = line.starts_with("curl -i ") && line.contains("no credentials");
        if line.starts_with("curl ") {
            lines.push(line);
        }
        if done || Instant::now() > deadline {
            break;
        }
    }
    assert!(lines.len() >= 5, "demo printed {lines:?}");

    let mut statuses = Vec::new();
    for line in &lines {
        let (command, comment) = line.split_once('#').expect("status comment");
        let expected: u16 = comment
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .expect("status number after #");
        let args = command.trim().trim_start_matches("curl -i ");
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("curl -s -o /dev/null -w '%{{http_code}}' {args}"))
            .output()
            .expect("curl runs");
        let got: u16 = String::from_utf8_lossy(&output.stdout)
            .parse()
            .expect("status");
        assert_eq!(got, expected, "{line}");
        statuses.push(got);
    }
    assert!(statuses.contains(&200) && statuses.contains(&401) && statuses.contains(&403));
}
