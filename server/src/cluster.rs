//! Following the other instances on one PostgreSQL database through LISTEN/NOTIFY.
//!
//! One connection of its own listens on [`CHANNEL`]; every notice (see
//! [`crate::db::notifications`]) makes this instance forget the cached rows it names and
//! wakes the search copy, which commits at once when a caller waits for the change. While
//! the connection is down, notices may be missed: the caches hold nothing and the search
//! copy polls the change log, until a new connection listens again (each attempt a second
//! apart). On SQLite there is one instance and nothing to follow.

use std::{str::FromStr, sync::Arc, time::Duration};

use sea_orm::sqlx::{
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
    ConnectOptions,
};
use tokio_util::sync::CancellationToken;

use crate::{
    db::{
        backend::Backend,
        notifications::{Notice, CHANNEL},
        point_reads::PointReads,
    },
    search::Indexer,
};

/// The listening connection's `application_name`, as `pg_stat_activity` shows it.
pub const LISTENER_APPLICATION_NAME: &str = "videovector-listener";
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Starts following notices when `backend` is PostgreSQL; stops at `shutdown`. The
/// first connection is made before this returns, so an instance that starts serving
/// already follows the others (if it cannot, it keeps trying in the background).
pub async fn follow(
    backend: &Backend,
    database_url: &str,
    reads: Arc<PointReads>,
    indexer: Arc<Indexer>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if !backend.is_postgres() {
        return Ok(());
    }
    let options = PgConnectOptions::from_str(database_url)?
        .application_name(LISTENER_APPLICATION_NAME)
        .disable_statement_logging();
    let follower = Follower {
        options,
        reads,
        indexer,
    };
    let first = follower.listen().await;
    if first.is_ok() {
        follower.up();
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = follower.run(first) => {}
            _ = shutdown.cancelled() => {}
        }
        follower.down();
    });
    Ok(())
}

struct Follower {
    options: PgConnectOptions,
    reads: Arc<PointReads>,
    indexer: Arc<Indexer>,
}

impl Follower {
    async fn run(&self, first: Result<PgListener, sea_orm::sqlx::Error>) {
        let mut attempt = Some(first);
        loop {
            let listening = match attempt.take() {
                Some(first) => first,
                None => self.listen().await,
            };
            match listening {
                Ok(mut listener) => {
                    self.up();
                    let lost = loop {
                        match listener.try_recv().await {
                            Ok(Some(message)) => self.apply(message.payload()),
                            Ok(None) => break "the connection closed".to_string(),
                            Err(e) => break e.to_string(),
                        }
                    };
                    self.down();
                    tracing::warn!(reason = %lost, "lost the notification connection; caches are off until it is back");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for notifications; retrying");
                }
            }
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }

    async fn listen(&self) -> Result<PgListener, sea_orm::sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(self.options.clone())
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        // Reconnecting is this module's job: it has to happen with the caches off.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }

    /// Listening: from now on no notice is missed, so what is cached can be trusted again
    /// (starting empty, since notices before this moment were).
    fn up(&self) {
        self.reads.set_live(true);
        self.indexer.set_followed(true);
    }

    fn down(&self) {
        self.reads.set_live(false);
        self.indexer.set_followed(false);
    }

    fn apply(&self, payload: &str) {
        let Some(notice) = Notice::parse(payload) else {
            tracing::debug!(payload, "ignoring a notice this version does not know");
            return;
        };
        self.reads.forget(&notice);
        if let Notice::Segments { seq, flush, .. } = notice {
            if flush {
                self.indexer.want(seq);
            } else {
                self.indexer.notify();
            }
        }
    }
}
