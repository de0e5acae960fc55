//! JWTs recently verified with a key that never changes while the server runs (the
//! built-in issuer's secret, a configured PEM key or shared secret), so a client that sends
//! the same token on every request pays for signature checking and claims parsing once.
//!
//! A hit returns what verifying again would return: the key is the whole token (so the
//! signature is part of it), the key material cannot change, and the time claims are
//! checked again on every hit with the same leeway as a full verification. Tokens from JWKS
//! issuers are not kept, because their key sets are refreshed. The map is bounded: when
//! full, expired entries go, and if none had expired, everything goes.

use std::{collections::HashMap, sync::Mutex};

use videovector_api_spec::Scope;

/// What a valid token says.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub issuer: String,
    pub subject: String,
    pub org_id: String,
    pub scopes: Vec<Scope>,
    pub verified: bool,
}

/// Seconds of clock skew allowed on `exp` and `nbf` (the same for a full verification).
pub const LEEWAY_SECONDS: i64 = 30;

const MAX_ENTRIES: usize = 10_000;

struct Entry {
    verified: VerifiedToken,
    not_before: Option<i64>,
    expires: i64,
}

impl Entry {
    /// The checks jsonwebtoken makes: expired when `exp < now - leeway`, not yet valid
    /// when `nbf > now + leeway`.
    fn valid_at(&self, now: i64) -> bool {
        self.expires >= now - LEEWAY_SECONDS
            && self
                .not_before
                .is_none_or(|nbf| nbf <= now + LEEWAY_SECONDS)
    }
}

#[derive(Default)]
pub struct VerifiedTokens {
    entries: Mutex<HashMap<String, Entry>>,
}

impl VerifiedTokens {
    /// The verified claims of `token`, if it was verified before and is valid at `now`
    /// (seconds since the epoch).
    pub fn get(&self, token: &str, now: i64) -> Option<VerifiedToken> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(token)
            .filter(|entry| entry.valid_at(now))
            .map(|entry| entry.verified.clone())
    }

    /// Keeps a token that passed full verification.
    pub fn insert(
        &self,
        token: &str,
        verified: VerifiedToken,
        not_before: Option<i64>,
        expires: i64,
        now: i64,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, entry| entry.valid_at(now));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            token.to_string(),
            Entry {
                verified,
                not_before,
                expires,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified() -> VerifiedToken {
        VerifiedToken {
            issuer: "iss".into(),
            subject: "sub".into(),
            org_id: "org".into(),
            scopes: vec![],
            verified: false,
        }
    }

    #[test]
    fn a_kept_token_is_refused_once_it_expires_or_before_it_starts() {
        let tokens = VerifiedTokens::default();
        tokens.insert("a.b.c", verified(), Some(1_000), 2_000, 1_000);
        assert!(tokens.get("a.b.c", 1_500).is_some());
        assert!(tokens.get("a.b.c", 2_000 + LEEWAY_SECONDS).is_some());
        assert!(
            tokens.get("a.b.c", 2_001 + LEEWAY_SECONDS).is_none(),
            "expired"
        );
        assert!(
            tokens.get("a.b.c", 999 - LEEWAY_SECONDS).is_none(),
            "not yet valid"
        );
        assert!(tokens.get("a.b.d", 1_500).is_none(), "another token");
    }

    #[test]
    fn the_map_stays_bounded() {
        let tokens = VerifiedTokens::default();
        for i in 0..MAX_ENTRIES + 10 {
            tokens.insert(&format!("t{i}"), verified(), None, 5_000, 1_000);
        }
        let len = tokens.entries.lock().unwrap().len();
        assert!(len <= MAX_ENTRIES, "{len} entries");
        assert!(tokens
            .get(&format!("t{}", MAX_ENTRIES + 9), 1_000)
            .is_some());
    }
}
