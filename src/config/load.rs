//! Loading: TOML text to a [`Config`], and where in the text each error is (file, line, column).

use super::*;

/// The text a [`Config`] was parsed from, kept so that errors found when it is built (a key file
/// that cannot be read, a builder's refusal) are placed in the file as parse errors are.
#[derive(Clone, Default)]
pub(super) struct Source {
    text: Arc<str>,
    file: Option<PathBuf>,
}

impl Source {
    /// `error` located at its key, when it names one and has no location yet.
    pub(super) fn locate_error(&self, error: ConfigError) -> ConfigError {
        Spans {
            text: &self.text,
            file: self.file.clone(),
        }
        .locate_error(error)
    }
}

/// By hand: the text may hold password hashes, which `Debug` never shows.
impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

pub(super) struct Spans<'a> {
    pub(super) text: &'a str,
    pub(super) file: Option<PathBuf>,
}

impl Spans<'_> {
    pub(super) fn locate(&self, span: Option<std::ops::Range<usize>>) -> Location {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Location {
            file: self.file.clone(),
            line,
            column,
        }
    }

    /// Places an error that names a key but no location at that key in the file, so checks
    /// made on plain values (the `[jwt]` settings, whole tables) are located too.
    pub(super) fn locate_error(&self, error: ConfigError) -> ConfigError {
        match (error.location(), error.key()) {
            (None, Some(key)) => {
                let span = self.key_span(key);
                error.with_location(self.locate(span))
            }
            _ => error,
        }
    }

    /// Where `key` (`jwt.issuers[0].algorithm`) is written: its value, or for a table its name.
    /// A key that is not written (a required one left out) falls back to the deepest table that
    /// is, which is where it should be added.
    pub(super) fn key_span(&self, key: &str) -> Option<std::ops::Range<usize>> {
        use toml::de::DeValue;
        let document = toml::de::DeTable::parse(self.text).ok()?;
        let mut table = Some(document.get_ref());
        let mut span = None;
        'segments: for segment in key.split('.') {
            let mut parts = segment.split('[');
            let name = parts.next().unwrap_or_default();
            let Some((name, mut value)) = table.and_then(|t| t.get_key_value(name)) else {
                break;
            };
            span = Some(match value.get_ref() {
                DeValue::Table(_) => name.span(),
                _ => value.span(),
            });
            for index in parts {
                let item = index
                    .trim_end_matches(']')
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| match value.get_ref() {
                        DeValue::Array(items) => items.get(i),
                        _ => None,
                    });
                let Some(item) = item else { break 'segments };
                value = item;
                span = Some(item.span());
            }
            table = match value.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        span
    }

    pub(super) fn error<T>(
        &self,
        value: &Spanned<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(message)
            .with_key(key)
            .with_location(self.locate(Some(value.span())))
    }
}

impl Config {
    pub(super) fn parse(text: &str, file: Option<PathBuf>) -> Result<Self, ConfigError> {
        let at = |span: Option<std::ops::Range<usize>>| {
            Spans {
                text,
                file: file.clone(),
            }
            .locate(span)
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| {
            ConfigError::new(e.message().trim().to_owned()).with_location(at(e.span()))
        })?;
        let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            // A `Spanned` value adds a private field to the path; the key is the value's.
            let key = e
                .path()
                .to_string()
                .replace(".$__serde_spanned_private_value", "");
            let inner = e.into_inner();
            let error =
                ConfigError::new(inner.message().trim().to_owned()).with_location(at(inner.span()));
            if key == "." {
                error
            } else {
                error.with_key(key)
            }
        })?;
        let base_dir = file
            .as_ref()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf);
        let spans = Spans {
            text,
            file: file.clone(),
        };
        let mut config = Validator {
            raw: &raw,
            spans: &spans,
            built: BTreeMap::new(),
            custom_scheme_names: Vec::new(),
        }
        .finish()
        .map_err(|e| spans.locate_error(e))?;
        config.base_dir = base_dir;
        config.source = Source {
            text: text.into(),
            file,
        };
        Ok(config)
    }
}
