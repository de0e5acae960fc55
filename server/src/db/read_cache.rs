//! A small in-process cache of rows read on every request, kept honest by invalidation.
//!
//! Three things bound how stale an entry can be:
//! - every write that changes a cached row forgets it here (on the writing instance at
//!   once, on the others when the notice arrives);
//! - an entry lives at most `ttl`, for a notice that never arrives;
//! - while notices may be missed (the notification connection is down) the cache holds
//!   nothing and caches nothing: [`ReadCache::set_live`].
//!
//! A read that started before an invalidation must not put back what it read. Every
//! invalidation bumps an epoch first, a reader takes a [`Ticket`] (the epoch) before it
//! reads the database, and [`ReadCache::insert`] refuses a ticket from an older epoch. The
//! check and the insert happen under the same lock the invalidation takes after its bump,
//! so either the invalidation sees the entry or the insert sees the new epoch.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        RwLock,
    },
    time::{Duration, Instant},
};

pub struct ReadCache<K, V> {
    entries: RwLock<HashMap<K, (V, Instant)>>,
    ttl: Duration,
    capacity: usize,
    epoch: AtomicU64,
    live: AtomicBool,
    /// Lookups answered from the cache, and not (the metrics' hit rate).
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The epoch a read started in.
#[derive(Clone, Copy)]
pub struct Ticket(u64);

impl<K: Eq + Hash, V: Clone> ReadCache<K, V> {
    /// An empty cache, not live until [`ReadCache::set_live`].
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        ReadCache {
            entries: RwLock::new(HashMap::new()),
            ttl,
            capacity,
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A fresh entry for `key`, if the cache is live and holds one.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let found = self.find(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn find<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let (value, stored) = entries.get(key)?;
        (stored.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Lookups answered from the cache, and not, since it was made.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Taken before reading the database for an entry to insert.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.epoch.load(Ordering::Acquire))
    }

    /// Keeps `value`, unless an invalidation happened since `ticket` or the cache is not
    /// live. A full cache starts over rather than tracking recency: the rows cached are few
    /// (an organisation's keys and indexes), and a miss costs one point read.
    pub fn insert(&self, ticket: Ticket, key: K, value: V) {
        if !self.live.load(Ordering::Acquire) {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if self.epoch.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Changes the entry for `key` in place, keeping its age (a write this instance made
    /// itself, such as an API key's last use).
    pub fn update<Q>(&self, key: &Q, change: impl FnOnce(&mut V))
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some((value, _)) = entries.get_mut(key) {
            change(value);
        }
    }

    /// Forgets every entry `stale` picks.
    pub fn forget_where(&self, stale: impl Fn(&K, &V) -> bool) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.retain(|key, (value, _)| !stale(key, value));
    }

    /// Live: entries are served and kept. Not live: everything is forgotten and nothing is
    /// kept. Either way the cache starts empty, since notices may have been missed.
    pub fn set_live(&self, live: bool) {
        self.live.store(false, Ordering::Release);
        self.forget_where(|_, _| true);
        self.live.store(live, Ordering::Release);
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_cache(ttl: Duration) -> ReadCache<String, u32> {
        let cache = ReadCache::new(ttl, 3);
        cache.set_live(true);
        cache
    }

    #[test]
    fn a_read_that_started_before_an_invalidation_is_not_kept() {
        let cache = live_cache(Duration::from_secs(60));
        let ticket = cache.ticket();
        cache.forget_where(|key, _| key == "a");
        cache.insert(ticket, "a".into(), 1);
        assert_eq!(cache.get("a"), None);
        cache.insert(cache.ticket(), "a".into(), 2);
        assert_eq!(cache.get("a"), Some(2));
    }

    #[test]
    fn forgetting_removes_only_what_it_picks() {
        let cache = live_cache(Duration::from_secs(60));
        cache.insert(cache.ticket(), "a".into(), 1);
        cache.insert(cache.ticket(), "b".into(), 2);
        cache.forget_where(|_, value| *value == 1);
        assert_eq!((cache.get("a"), cache.get("b")), (None, Some(2)));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = live_cache(Duration::from_millis(20));
        cache.insert(cache.ticket(), "a".into(), 1);
        assert_eq!(cache.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn a_cache_that_is_not_live_holds_nothing() {
        let cache: ReadCache<String, u32> = ReadCache::new(Duration::from_secs(60), 3);
        cache.insert(cache.ticket(), "a".into(), 1);
        assert_eq!(cache.get("a"), None, "not live before set_live(true)");
        cache.set_live(true);
        cache.insert(cache.ticket(), "a".into(), 1);
        cache.set_live(false);
        cache.set_live(true);
        assert_eq!(cache.get("a"), None, "going down forgets everything");
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = live_cache(Duration::from_secs(60));
        for (i, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
            cache.insert(cache.ticket(), key.into(), i as u32);
        }
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get("d"), Some(3));
    }
}
