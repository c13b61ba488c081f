//! What `tracing` writes on the current thread, for tests that assert on audit events.
//!
//! One global subscriber, installed on first use, writes into a per-thread buffer. Scoped
//! subscribers (`tracing::subscriber::set_default`) lose events when a test on another thread
//! registers the same callsites first (the callsite's cached interest says "never"), which made
//! such tests fail now and then when the whole suite ran at once.

use std::cell::RefCell;
use std::io::Write;
use std::sync::Once;

thread_local! {
    static BUFFER: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Captures this thread's events until dropped. Use it with a single-threaded runtime (plain
/// `#[tokio::test]`), so the code under test runs on this thread.
pub(crate) struct Logs(());

/// Starts capturing this thread's events.
pub(crate) fn capture() -> Logs {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing_subscriber::fmt()
            .with_writer(|| ThreadWriter)
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .init();
    });
    BUFFER.with(|buffer| *buffer.borrow_mut() = Some(Vec::new()));
    Logs(())
}

impl Logs {
    /// Everything written so far.
    pub(crate) fn text(&self) -> String {
        BUFFER.with(|buffer| {
            String::from_utf8_lossy(buffer.borrow().as_deref().unwrap_or_default()).into_owned()
        })
    }

    /// Forgets everything written so far.
    pub(crate) fn clear(&self) {
        BUFFER.with(|buffer| {
            if let Some(buffer) = buffer.borrow_mut().as_mut() {
                buffer.clear();
            }
        });
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        BUFFER.with(|buffer| *buffer.borrow_mut() = None);
    }
}

struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        BUFFER.with(|buffer| {
            if let Some(buffer) = buffer.borrow_mut().as_mut() {
                buffer.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The audit events (target `portcullis::audit`) among the lines of `output`.
pub(crate) fn audit_lines(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|line| line.contains("portcullis::audit"))
        .collect()
}

/// Asserts that the event `line` holds every one of `fields` (`name=value` as `tracing` writes
/// it).
pub(crate) fn assert_fields(line: &str, fields: &[&str]) {
    for field in fields {
        assert!(line.contains(field), "no {field} in {line}");
    }
}
