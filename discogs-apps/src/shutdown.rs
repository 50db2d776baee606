//! Graceful shutdown: one handle that SIGTERM, SIGINT or the program itself triggers, and
//! that every task can poll ([`Shutdown::is_requested`]) or await ([`Shutdown::requested`]).

use tokio::sync::watch;

/// A shutdown flag shared by all tasks of a service. Clones share it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A flag that is not set.
    #[must_use]
    pub fn new() -> Self {
        Self {
            tx: watch::Sender::new(false),
        }
    }

    /// Sets the flag; everything waiting in [`Shutdown::requested`] wakes up.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether shutdown was asked for.
    #[must_use]
    pub fn is_requested(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once shutdown is asked for (at once if it already was).
    pub async fn requested(&self) {
        let mut rx = self.tx.subscribe();
        // An error would mean the sender is gone, which cannot happen while `self` holds it.
        if rx.wait_for(|set| *set).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Spawns a task that triggers the flag on SIGTERM or SIGINT (Ctrl-C). A second
    /// signal after the first exits the process at once with status 130.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn listen_for_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            for round in 0..2 {
                let name = wait_for_signal().await;
                if round == 0 {
                    tracing::info!(signal = name, "🛑 Shutdown requested; finishing the work in hand (send again to exit at once).");
                    this.trigger();
                } else {
                    tracing::warn!(signal = name, "Second signal: exiting now.");
                    std::process::exit(130);
                }
            }
        });
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = term => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    drop(tokio::signal::ctrl_c().await);
    "Ctrl-C"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_waiters() {
        let s = Shutdown::new();
        assert!(!s.is_requested());
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.requested().await }
        });
        s.trigger();
        waiter.await.unwrap();
        assert!(s.is_requested());
        s.requested().await; // already set: returns at once
    }
}
