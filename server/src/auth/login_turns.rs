//! Who verifies a password when, so that a flood of bad logins neither starves good ones
//! nor locks an operator out.
//!
//! - **Verification slots.** An argon2id verification holds about 19 MiB and a core for a
//!   good part of a second: one slot per core, and one more kept for pairs of email and
//!   client that logged in before ("known"), so an operator coming back from where they
//!   logged in last never queues behind strangers.
//! - **Unknown emails cost no slot.** There is no password to check, and a verification of
//!   a dummy hash (so the answer takes as long as a wrong password) let a flood of logins
//!   for made-up emails fill every slot: 300 of them delayed a good login by 8.3 s. Such an
//!   attempt waits instead as long as attempts with a real check take now, queue included
//!   ([`LoginTurns::imitate`]), so its answer still looks like theirs.
//! - **An account under attack takes turns.** Once an email has `threshold` failures in the
//!   window (from anywhere), each further attempt on it from an unknown client waits for the
//!   account's turn and then a backoff that doubles with every failure past the threshold
//!   ([`BACKOFF_BASE`] up to [`BACKOFF_CAP`]) before its verification. A flood against one
//!   account thus holds one slot at a time, whatever the number of addresses it comes from,
//!   and guesses against it slow to one per [`BACKOFF_CAP`] per instance; the operator is
//!   slowed, not locked (and not slowed at all from a known client). Past
//!   [`MAX_WAITING_PER_ACCOUNT`] attempts waiting, new ones from unknown clients are
//!   refused for now rather than held for minutes.
//!
//! The turns are per instance (in memory); the counts behind them are shared through the
//! database.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

/// The first backoff past the threshold.
pub const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// The longest backoff.
pub const BACKOFF_CAP: Duration = Duration::from_secs(4);
/// Above this many idle accounts the map of turns is swept.
const SWEEP_ABOVE: usize = 256;
/// At most this many attempts wait for one account's turn; more are refused for now.
pub const MAX_WAITING_PER_ACCOUNT: usize = 32;

pub struct LoginTurns {
    slots: Arc<Semaphore>,
    known_slot: Arc<Semaphore>,
    accounts: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// How long a real check takes now (waiting for a slot included), smoothed.
    recent: std::sync::Mutex<Option<Duration>>,
}

/// An account's turn, held while its attempt is checked.
pub struct AccountTurn {
    _held: Option<OwnedMutexGuard<()>>,
}

/// A verification slot; dropping it records how long the check took.
pub struct Slot<'a> {
    _permit: OwnedSemaphorePermit,
    asked: Instant,
    turns: &'a LoginTurns,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.turns.record(self.asked.elapsed());
    }
}

/// How long an attempt waits with `over` failures past the threshold already counted.
pub fn backoff(over: i64) -> Duration {
    let doublings = u32::try_from(over.clamp(0, 16)).unwrap_or(16);
    BACKOFF_BASE
        .saturating_mul(1u32 << doublings)
        .min(BACKOFF_CAP)
}

impl LoginTurns {
    /// `slots` verifications at once (one per core), plus one for known clients.
    pub fn new(slots: usize) -> LoginTurns {
        LoginTurns {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            known_slot: Arc::new(Semaphore::new(1)),
            accounts: std::sync::Mutex::new(HashMap::new()),
            recent: std::sync::Mutex::new(None),
        }
    }

    /// Waits for the account's turn when it is under attack: `over`, its failures past the
    /// threshold (`None` when under it); a `known` client does not wait. `None` when too
    /// many attempts wait for this account already: the caller refuses this one for now
    /// rather than hold it for minutes.
    pub async fn account_turn(
        &self,
        account: &str,
        known: bool,
        over: Option<i64>,
    ) -> Option<AccountTurn> {
        match over {
            Some(over) if !known => {
                let turn = self.account(account);
                // The map holds one reference; every other is an attempt holding or awaiting it.
                if Arc::strong_count(&turn) - 1 > MAX_WAITING_PER_ACCOUNT {
                    return None;
                }
                let turn = turn.lock_owned().await;
                tokio::time::sleep(backoff(over)).await;
                Some(AccountTurn { _held: Some(turn) })
            }
            _ => Some(AccountTurn { _held: None }),
        }
    }

    /// Waits for a verification slot (a `known` client may also take the kept one).
    pub async fn slot(&self, known: bool) -> Slot<'_> {
        let asked = Instant::now();
        let permit = if known {
            tokio::select! {
                Ok(slot) = self.known_slot.clone().acquire_owned() => slot,
                Ok(slot) = self.slots.clone().acquire_owned() => slot,
            }
        } else {
            self.slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed")
        };
        Slot {
            _permit: permit,
            asked,
            turns: self,
        }
    }

    /// How long a check takes now, if one was seen.
    pub fn recent(&self) -> Option<Duration> {
        *self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes as long as a check takes now, without a slot; `None` when no check was seen
    /// yet (then the caller checks a dummy in a slot, which sets it).
    pub async fn imitate(&self) -> Option<()> {
        let recent = self.recent()?;
        tokio::time::sleep(recent).await;
        Some(())
    }

    fn record(&self, took: Duration) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        *recent = Some(match *recent {
            None => took,
            Some(before) => (before * 4 + took) / 5,
        });
    }

    fn account(&self, account: &str) -> Arc<Mutex<()>> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        if accounts.len() > SWEEP_ABOVE {
            accounts.retain(|_, turn| Arc::strong_count(turn) > 1);
        }
        accounts.entry(account.to_string()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap() {
        assert_eq!(backoff(0), BACKOFF_BASE);
        assert_eq!(backoff(1), BACKOFF_BASE * 2);
        assert_eq!(backoff(3), BACKOFF_BASE * 8);
        assert_eq!(backoff(4), BACKOFF_CAP);
        assert_eq!(backoff(1_000_000), BACKOFF_CAP);
        assert_eq!(backoff(-5), BACKOFF_BASE);
    }

    #[tokio::test]
    async fn a_known_client_passes_a_full_house() {
        let turns = LoginTurns::new(1);
        let _busy = turns.slot(false).await;
        // The one ordinary slot is taken: a known client still gets the kept one.
        let known = tokio::time::timeout(Duration::from_millis(200), turns.slot(true));
        assert!(known.await.is_ok());
        let stranger = tokio::time::timeout(Duration::from_millis(200), turns.slot(false));
        assert!(stranger.await.is_err());
    }

    #[tokio::test]
    async fn an_account_under_attack_takes_one_turn_at_a_time() {
        let turns = LoginTurns::new(4);
        let first = turns.account_turn("x", false, Some(0)).await.unwrap();
        let second = tokio::time::timeout(
            Duration::from_secs(1),
            turns.account_turn("x", false, Some(0)),
        );
        assert!(second.await.is_err(), "the account's turn is held");
        // Another account, or a known client of this one, does not wait for it.
        let other = tokio::time::timeout(
            Duration::from_millis(100),
            turns.account_turn("y", false, None),
        );
        assert!(other.await.is_ok());
        let known = tokio::time::timeout(
            Duration::from_millis(100),
            turns.account_turn("x", true, Some(9)),
        );
        assert!(known.await.is_ok());
        drop(first);
    }

    #[tokio::test]
    async fn imitation_takes_as_long_as_recent_checks() {
        let turns = LoginTurns::new(1);
        assert!(turns.imitate().await.is_none());
        {
            let _slot = turns.slot(false).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let recent = turns.recent().unwrap();
        assert!(recent >= Duration::from_millis(50), "{recent:?}");
        let started = Instant::now();
        assert!(turns.imitate().await.is_some());
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
