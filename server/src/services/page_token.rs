//! Opaque, expiring search page tokens: the search state as JSON, with the organisation and
//! an expiry, signed with HMAC-SHA-256 under a key derived from the server pepper (so every
//! instance sharing the pepper accepts them). Nothing is stored.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use subtle::ConstantTimeEq;
use videovector_api_spec::ApiError;
use videovector_api_spec::ErrorCode;

use crate::purpose_key::PurposeKey;

const LIFETIME_SECONDS: i64 = 15 * 60;

/// What a token carries: the state it resumes (whatever its issuer needs), for whom, until
/// when.
#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    org: String,
    exp: i64,
    state: T,
}

pub struct PageTokens {
    key: PurposeKey,
}

fn invalid() -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidPageToken,
        "the page token is not one this API issued to you",
    )
}

impl PageTokens {
    pub fn new(pepper: &[u8]) -> Self {
        PageTokens {
            key: PurposeKey::derive(pepper, b"videovector search page tokens v1"),
        }
    }

    fn sign(&self, payload: &[u8]) -> [u8; 32] {
        self.key.tag(payload)
    }

    pub fn issue<T: Serialize>(&self, org_id: &str, state: &T) -> String {
        let envelope = Envelope {
            org: org_id.to_string(),
            exp: chrono::Utc::now().timestamp() + LIFETIME_SECONDS,
            state,
        };
        let payload = serde_json::to_vec(&envelope).expect("serialisable");
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(self.sign(&payload))
        )
    }

    pub fn open<T: DeserializeOwned>(&self, org_id: &str, token: &str) -> Result<T, ApiError> {
        let (payload, signature) = token.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
        if !bool::from(self.sign(&payload).ct_eq(&signature)) {
            return Err(invalid());
        }
        let envelope: Envelope<T> = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        if envelope.org != org_id {
            return Err(invalid());
        }
        if envelope.exp < chrono::Utc::now().timestamp() {
            return Err(ApiError::bad_request(
                ErrorCode::PageTokenExpired,
                "the page token has expired; run the search again",
            ));
        }
        Ok(envelope.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct State {
        offset: usize,
    }

    fn state() -> State {
        State { offset: 10 }
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering_and_other_orgs() {
        let tokens = PageTokens::new(b"pepper");
        let token = tokens.issue("org_a", &state());
        assert_eq!(tokens.open::<State>("org_a", &token).unwrap().offset, 10);
        assert_eq!(
            tokens
                .open::<State>("org_b", &token)
                .unwrap_err()
                .problem
                .code,
            ErrorCode::InvalidPageToken
        );
        let mut tampered = token.clone().into_bytes();
        tampered[3] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(tokens.open::<State>("org_a", &tampered).is_err());
        assert!(PageTokens::new(b"other")
            .open::<State>("org_a", &token)
            .is_err());
        assert!(tokens.open::<State>("org_a", "garbage").is_err());
    }

    #[test]
    fn expired_tokens_say_so() {
        let tokens = PageTokens::new(b"pepper");
        let envelope = Envelope {
            org: "org_a".into(),
            exp: 0,
            state: state(),
        };
        let payload = serde_json::to_vec(&envelope).unwrap();
        let token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tokens.sign(&payload))
        );
        assert_eq!(
            tokens
                .open::<State>("org_a", &token)
                .unwrap_err()
                .problem
                .code,
            ErrorCode::PageTokenExpired
        );
    }
}
