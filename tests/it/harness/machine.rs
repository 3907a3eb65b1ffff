//! Who may share the machine. All tests run in one process on `--test-threads` threads; a test
//! whose timings or memory are asserted must not run beside another. Such a test holds the
//! machine [`alone`]; every lab, service or cdnwatch process the harness starts holds a [`shared`]
//! part of it for as long as it lives. A browser or a real Prometheus asserts no timings and
//! shares the machine.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static MACHINE: RwLock<()> = RwLock::const_new(());

/// A test's hold on the machine, released when dropped (also when the test panics).
pub enum Share {
    /// Beside other shared holders, never beside one alone.
    Shared {
        _guard: RwLockReadGuard<'static, ()>,
    },
    /// No other holder at all.
    Alone {
        _guard: RwLockWriteGuard<'static, ()>,
    },
}

/// Waits until no other test holds the machine, then keeps every other test out.
pub async fn alone() -> Share {
    Share::Alone {
        _guard: MACHINE.write().await,
    }
}

/// Waits until no test holds the machine alone.
pub async fn shared() -> Share {
    Share::Shared {
        _guard: MACHINE.read().await,
    }
}

/// [`shared`] for a test outside any runtime (a plain `#[test]`).
pub fn shared_blocking() -> Share {
    Share::Shared {
        _guard: MACHINE.blocking_read(),
    }
}
