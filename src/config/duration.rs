//! Durations as every TOML setting writes them: one type, read once.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use crate::duration::parse_duration;

/// A duration setting: `"500ms"`, `"30s"`, `"15m"`, `"1h30m"`, `"90d"`, `"2w"`. One that does not
/// parse is refused as the file is read, with its key, line and column, like a value of the
/// wrong type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DurationSetting(Duration);

impl DurationSetting {
    pub(crate) fn get(self) -> Duration {
        self.0
    }
}

impl<'de> Deserialize<'de> for DurationSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text).map(Self).map_err(de::Error::custom)
    }
}

/// A lifetime cap: a duration, or `"none"` for no cap.
#[cfg(feature = "jwt")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LifetimeCap(Option<Duration>);

#[cfg(feature = "jwt")]
impl LifetimeCap {
    pub(crate) fn get(self) -> Option<Duration> {
        self.0
    }
}

#[cfg(feature = "jwt")]
impl<'de> Deserialize<'de> for LifetimeCap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim() == "none" {
            return Ok(Self(None));
        }
        parse_duration(&text)
            .map(|d| Self(Some(d)))
            .map_err(de::Error::custom)
    }
}
