//! The duration syntax of configuration files and the CLI: `500ms`, `30s`, `15m`, `1h30m`, `90d`,
//! `2w`.
//!
//! Not part of the API: the `portcullis` command compiles this same file into itself
//! (`#[path]`), so the library and the command read durations alike.

use std::time::Duration;

/// Parses a duration such as `500ms`, `30s`, `15m`, `1h30m`, `90d` or `2w`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (use e.g. 30s, 15m, 1h30m, 90d)");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_len = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len() - digits);
        let (number, unit) = (&rest[..digits], &rest[digits..digits + unit_len]);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let seconds_per = match unit {
            "ms" => {
                total = total.saturating_add(Duration::from_millis(number));
                rest = &rest[digits + unit_len..];
                continue;
            }
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(bad()),
        };
        let seconds = number.checked_mul(seconds_per).ok_or_else(bad)?;
        total = total.saturating_add(Duration::from_secs(seconds));
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
}
