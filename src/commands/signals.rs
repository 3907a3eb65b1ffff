//! SIGTERM, SIGINT and SIGHUP for the long-running commands (`serve`, `demo`, `lab`).

use crate::startup::Running;

/// SIGTERM, SIGINT and SIGHUP, taken over before the service announces itself: whoever reads the
/// address (a supervisor, a test) may signal at once, and the default action would kill the process
/// without flushing the store.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Takes the three signals over from their default actions.
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for SIGTERM or SIGINT (an agent has no config to reload: SIGHUP is ignored).
    pub async fn stopped(&mut self) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => tracing::info!("SIGHUP: an agent's config is its assignment; nothing to reload"),
            }
        }
    }

    /// Waits for SIGTERM/SIGINT, reloading the config on each SIGHUP meanwhile.
    pub async fn wait(&mut self, running: &Running) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => match running.reload().await {
                    Ok(()) => tracing::info!("SIGHUP: config reloaded"),
                    Err(e) => tracing::error!("SIGHUP: the new config was refused, the old one keeps running:\n{e}"),
                },
            }
        }
    }
}
