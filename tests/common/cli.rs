//! The `portcullis` command, run as a user would: one runner for every CLI test file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `portcullis` with `args`, and none of the environment variables that would pick a store or
/// a configuration file for it behind the test's back.
pub(crate) fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command
        .args(args)
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_DB");
    command
}

/// Runs `command` with `stdin` as its input (none: an empty input), and waits for it.
pub(crate) fn run(mut command: Command, stdin: Option<&str>) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("portcullis runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        // A command that fails before reading its input may already be gone.
        if let Err(err) = input.write_all(text.as_bytes()) {
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::BrokenPipe,
                "write stdin: {err}"
            );
        }
    }
    drop(input);
    child.wait_with_output().expect("portcullis exits")
}

/// `portcullis` with `args` and `stdin`: [`command`], then [`run`].
pub(crate) fn portcullis(args: &[&str], stdin: Option<&str>) -> Output {
    run(command(args), stdin)
}

/// Asserts `out` is a success and returns its stdout.
pub(crate) fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// A directory of its own under the system temp dir (`portcullis-cli-NAME-PID`), removed on
/// drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("portcullis-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to the file `name` in the directory, and returns its path.
    pub(crate) fn write(&self, name: &str, text: &str) -> String {
        let file = self.0.join(name);
        std::fs::write(&file, text).expect("write");
        file.to_str().expect("utf8 path").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
