//! [`GateHandle`]: a Gate that can be replaced while requests are in flight.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::gate::Gate;

/// A shared, swappable [`Gate`]. Each request takes one snapshot ([`GateHandle::gate`]) and uses
/// it from start to end, so a swap is atomic: no request sees half of an old Gate and half of a
/// new one. Cheap to clone; clones share the same slot.
///
/// It knows nothing of where a Gate comes from: [`config::Reloader`](crate::config::Reloader)
/// builds new Gates from a configuration file and swaps them in through a handle.
#[derive(Clone, Debug)]
pub struct GateHandle {
    current: Arc<ArcSwap<Gate>>,
}

impl GateHandle {
    /// A handle serving `gate`.
    pub fn new(gate: Gate) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(gate)),
        }
    }

    /// The Gate serving now.
    pub fn gate(&self) -> Arc<Gate> {
        self.current.load_full()
    }

    /// Replaces the Gate; requests already running finish on the old one.
    pub fn replace(&self, gate: Gate) {
        self.current.store(Arc::new(gate));
    }
}

impl From<Gate> for GateHandle {
    fn from(gate: Gate) -> Self {
        Self::new(gate)
    }
}
