//! [`Reloader`]: a configuration file read again while the Gate it built keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::build::Kept;
use super::{AddedInCode, Config};
use crate::error::ConfigError;
use crate::handle::GateHandle;

/// Builds a Gate from a configuration file into a [`GateHandle`], and later builds the file again
/// and swaps the new Gate in ([`reload`](Self::reload)). On any error the old Gate keeps serving
/// and the error says why (file, line, key).
///
/// The new Gate is built afresh (stores opened again, caches cold), except for the in-memory
/// lockout counters, which it keeps while they stay in memory with the same `memory_capacity`:
/// a reload must not give a password guesser a fresh allowance. Cheap to clone; clones share
/// the handle and the kept counters.
///
/// ```no_run
/// # async fn run() -> Result<(), portcullis::ConfigError> {
/// use portcullis::config::Reloader;
///
/// let reloader = Reloader::from_file("portcullis.toml").await?;
/// let layer = portcullis::GateLayer::new(reloader.handle());
/// // later, e.g. on SIGHUP:
/// reloader.reload().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Reloader {
    handle: GateHandle,
    file: Option<Arc<PathBuf>>,
    /// What the next build reuses; the lock also keeps two reloads from interleaving.
    kept: Arc<tokio::sync::Mutex<Kept>>,
    /// What the first configuration was given in code, added to the file each reload reads.
    added: AddedInCode,
}

impl Reloader {
    /// Reads and builds the configuration file, which [`reload`](Self::reload) reads again.
    pub async fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let reloader = Self::from_config(&Config::from_file(path.as_ref())?).await?;
        Ok(reloader.with_file(path))
    }

    /// Builds `config`; [`reload_config`](Self::reload_config) swaps in later configurations.
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let mut kept = Kept::default();
        let gate = config.build_keeping(&mut kept).await?.gate;
        Ok(Self {
            handle: GateHandle::new(gate),
            file: None,
            kept: Arc::new(tokio::sync::Mutex::new(kept)),
            added: config.added_in_code(),
        })
    }

    /// Reloads into `handle`, whose Gate was built by hand (e.g. with
    /// [`Config::build_services`]); the first reload cannot reach that Gate's memory lockout
    /// counters, so it starts new ones.
    pub fn for_handle(handle: GateHandle) -> Self {
        Self {
            handle,
            file: None,
            kept: Arc::default(),
            added: AddedInCode::default(),
        }
    }

    /// Names the configuration file [`reload`](Self::reload) reads.
    pub fn with_file(mut self, path: impl AsRef<Path>) -> Self {
        self.file = Some(Arc::new(path.as_ref().to_owned()));
        self
    }

    /// The handle the Gates are swapped into: give it to [`GateLayer::new`](crate::GateLayer::new)
    /// or the actix middleware.
    pub fn handle(&self) -> GateHandle {
        self.handle.clone()
    }

    /// Reads the configuration file again and swaps it in. On any error the old Gate keeps
    /// serving and the error says why. What the first configuration was given in code
    /// ([`Config::authenticator`], `Config::with_http_client`, when this Reloader was built
    /// [`from_config`](Self::from_config)) is added to the file read again.
    pub async fn reload(&self) -> Result<(), ConfigError> {
        let Some(path) = &self.file else {
            return Err(ConfigError::new(
                "this Reloader was not given a configuration file",
            ));
        };
        let config = Config::from_file(path.as_path())?.with_added_in_code(&self.added);
        self.reload_config(&config).await?;
        tracing::info!(file = %path.display(), "configuration reloaded");
        Ok(())
    }

    /// Builds `config` and swaps it in, keeping the in-memory lockout counters as
    /// [`reload`](Self::reload) does; for a caller that reads the configuration itself (to take
    /// more from it than the Gate). On any error the old Gate keeps serving.
    pub async fn reload_config(&self, config: &Config) -> Result<(), ConfigError> {
        let mut kept = self.kept.lock().await;
        let gate = config.build_keeping(&mut kept).await?.gate;
        self.handle.replace(gate);
        Ok(())
    }
}
