//! The config in force while the service runs: one shared handle that a reload swaps.
//!
//! Readers take a cheap `Arc<Config>` snapshot and never hold the lock; a reload replaces the whole
//! config at once, so no reader ever sees half of an old config and half of a new one.

use std::sync::{Arc, RwLock};

use super::Config;

/// A shared, swappable config. Cloning the handle is cheap; all clones see the same config.
#[derive(Clone)]
pub struct LiveConfig(Arc<RwLock<Arc<Config>>>);

impl LiveConfig {
    /// A handle holding `config`.
    pub fn new(config: Config) -> LiveConfig {
        LiveConfig(Arc::new(RwLock::new(Arc::new(config))))
    }

    /// The config in force now (a snapshot: a later reload does not change it).
    pub fn get(&self) -> Arc<Config> {
        // A poisoned lock only means a writer panicked mid-swap of one Arc: the value is whole.
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `config` in force for every holder of this handle.
    pub fn set(&self, config: Config) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }
}
