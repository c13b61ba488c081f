//! [`GateHandle`]: a Gate whose configuration can be replaced while requests are in flight.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Config, Kept};
use crate::error::ConfigError;
use crate::gate::Gate;

/// A shared, swappable [`Gate`]. Each request takes one snapshot ([`GateHandle::gate`]) and uses
/// it from start to end, so a reload is atomic: no request sees half of an old configuration and
/// half of a new one. Cheap to clone; clones share the same slot.
#[derive(Clone, Debug)]
pub struct GateHandle {
    current: Arc<ArcSwap<Gate>>,
    source: Option<Arc<PathBuf>>,
    /// What the next reload reuses; the lock also keeps two reloads from interleaving.
    kept: Arc<tokio::sync::Mutex<Kept>>,
}

impl GateHandle {
    /// A handle serving `gate`.
    pub fn new(gate: Gate) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(gate)),
            source: None,
            kept: Arc::default(),
        }
    }

    /// A handle built from a configuration file, which [`reload`](Self::reload) reads again.
    pub async fn from_config_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let handle = Self::from_config(&Config::from_file(path.as_ref())?).await?;
        Ok(handle.with_config_file(path))
    }

    /// A handle serving the Gate `config` builds; [`reload_config`](Self::reload_config) swaps in
    /// later configurations the way [`reload`](Self::reload) does.
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let mut kept = Kept::default();
        let gate = config.build_keeping(&mut kept).await?.gate;
        Ok(Self {
            kept: Arc::new(tokio::sync::Mutex::new(kept)),
            ..Self::new(gate)
        })
    }

    /// Names the configuration file [`reload`](Self::reload) reads. For a handle whose first Gate
    /// was built by hand (e.g. with [`Config::build_services`]) the first reload cannot reach
    /// that Gate's memory lockout counters, so it starts new ones.
    pub fn with_config_file(mut self, path: impl AsRef<Path>) -> Self {
        self.source = Some(Arc::new(path.as_ref().to_owned()));
        self
    }

    /// The Gate serving now.
    pub fn gate(&self) -> Arc<Gate> {
        self.current.load_full()
    }

    /// Replaces the Gate; requests already running finish on the old one.
    pub fn replace(&self, gate: Gate) {
        self.current.store(Arc::new(gate));
    }

    /// Reads the configuration file again and swaps it in. On any error the old configuration
    /// keeps serving and the error says why.
    ///
    /// The new Gate is built afresh (stores opened again, caches cold), except for the
    /// in-memory lockout counters, which it keeps while they stay in memory with the same
    /// `memory_capacity`: a reload must not give a password guesser a fresh allowance.
    pub async fn reload(&self) -> Result<(), ConfigError> {
        let Some(path) = &self.source else {
            return Err(ConfigError::new(
                "this GateHandle was not made from a configuration file",
            ));
        };
        self.reload_config(&Config::from_file(path.as_path())?)
            .await?;
        tracing::info!(file = %path.display(), "configuration reloaded");
        Ok(())
    }

    /// Builds `config` and swaps it in, keeping the in-memory lockout counters as
    /// [`reload`](Self::reload) does; for a caller that reads the configuration itself (to take
    /// more from it than the Gate). On any error the old configuration keeps serving.
    pub async fn reload_config(&self, config: &Config) -> Result<(), ConfigError> {
        let mut kept = self.kept.lock().await;
        let gate = config.build_keeping(&mut kept).await?.gate;
        self.replace(gate);
        Ok(())
    }
}

impl From<Gate> for GateHandle {
    fn from(gate: Gate) -> Self {
        Self::new(gate)
    }
}
