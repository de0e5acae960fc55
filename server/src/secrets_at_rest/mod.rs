//! Secrets at rest: the values the server must read back in clear (connector header values,
//! webhook signing secrets, stored responses replayed for an `Idempotency-Key`) are kept
//! sealed with XChaCha20-Poly1305, under a key derived by HKDF-SHA256 from a master key.
//!
//! The keyring holds the current master key first and any older ones after it: values are
//! sealed with the current key and opened with whichever key they name, so adding a new key
//! leaves everything written before readable. Each value is bound to its place (table,
//! column and row) as associated data, so a sealed value moved to another row does not open.
//!
//! Stored form: `vvs1.<key id>.<base64url(nonce ‖ ciphertext)>`. Beside the keyring: the
//! check values that make a wrong key fail at start (`key_checks`) and the rewriting of
//! stored values under the current key (`resealing`).

pub mod key_checks;
pub mod resealing;

use std::path::Path;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "vvs1";
const NONCE_LEN: usize = 24;
/// A master key shorter than this is refused.
pub const MIN_MASTER_KEY_CHARS: usize = 32;

/// Why a stored value did not open.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OpenError {
    #[error("the value is not sealed")]
    NotSealed,
    #[error("the value was sealed under key {0}, which the keyring does not hold")]
    UnknownKey(String),
    #[error("the value does not open under its key (tampered, or moved from another row)")]
    Corrupt,
}

struct DataKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl DataKey {
    fn derive(master: &str) -> DataKey {
        let hkdf = Hkdf::<Sha256>::new(Some(b"videovector secrets at rest"), master.as_bytes());
        let mut key = [0u8; 32];
        let mut id = [0u8; 4];
        // Both lengths are far below HKDF-SHA256's limit, so expand cannot fail.
        hkdf.expand(b"xchacha20poly1305 v1", &mut key)
            .expect("32 bytes");
        hkdf.expand(b"key id v1", &mut id).expect("4 bytes");
        DataKey {
            id: crate::auth::api_key_secret::hex(&id),
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }
}

/// The master keys in force, current first.
pub struct Keyring {
    keys: Vec<DataKey>,
}

impl Keyring {
    /// A keyring of `masters`, current first; each at least 32 characters.
    pub fn new<S: AsRef<str>>(masters: &[S]) -> anyhow::Result<Keyring> {
        anyhow::ensure!(!masters.is_empty(), "no secrets key is configured");
        for master in masters {
            anyhow::ensure!(
                master.as_ref().chars().count() >= MIN_MASTER_KEY_CHARS,
                "every secrets key must be at least {MIN_MASTER_KEY_CHARS} characters"
            );
        }
        Ok(Keyring {
            keys: masters
                .iter()
                .map(|m| DataKey::derive(m.as_ref()))
                .collect(),
        })
    }

    /// The configured keys (`VIDEOVECTOR_SECRETS_KEY`: comma-separated, current first), or
    /// those in `file`, one per line, current first; the file is created holding one new
    /// random key when absent.
    pub fn load(configured: Option<&str>, file: &Path) -> anyhow::Result<Keyring> {
        let text = match configured {
            Some(value) => value.replace(',', "\n"),
            None => crate::auth::server_secrets::read_or_create(file)?,
        };
        let masters: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        Keyring::new(&masters)
    }

    /// The id of the current key, as sealed values name it.
    pub fn current_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Seals `plaintext` for the place `context` names (e.g. `webhooks.secret:wh_1`).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = key
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            // Encryption fails only past the cipher's length limit (256 GiB).
            .expect("a value under 256 GiB seals");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        format!("{PREFIX}.{}.{}", key.id, URL_SAFE_NO_PAD.encode(blob))
    }

    /// Seals a text value.
    pub fn seal_str(&self, context: &str, plaintext: &str) -> String {
        self.seal(context, plaintext.as_bytes())
    }

    /// Opens a value sealed for `context` under any key of the ring.
    pub fn open(&self, context: &str, stored: &str) -> Result<Vec<u8>, OpenError> {
        let (key_id, blob) = split(stored).ok_or(OpenError::NotSealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| OpenError::UnknownKey(key_id.to_string()))?;
        let blob = URL_SAFE_NO_PAD
            .decode(blob)
            .map_err(|_| OpenError::Corrupt)?;
        if blob.len() < NONCE_LEN {
            return Err(OpenError::Corrupt);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Corrupt)?;
        key.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Corrupt)
    }

    /// Opens a sealed text value.
    pub fn open_str(&self, context: &str, stored: &str) -> Result<String, OpenError> {
        String::from_utf8(self.open(context, stored)?).map_err(|_| OpenError::Corrupt)
    }

    /// The ids of the keys, current first.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    /// Whether the keyring holds the key with this id.
    pub fn holds(&self, key_id: &str) -> bool {
        self.keys.iter().any(|k| k.id == key_id)
    }

    /// Whether `stored` is sealed under the current key (nothing to reseal).
    pub fn is_current(&self, stored: &str) -> bool {
        split(stored).is_some_and(|(id, _)| id == self.current_id())
    }
}

/// The places sealed values live in, named the same way by their writers and by
/// [`crate::secrets_at_rest::resealing`].
pub mod places {
    pub fn connector_headers(connector_id: &str) -> String {
        format!("connectors.headers:{connector_id}")
    }

    pub fn api_key_tenant_key(key_id: &str) -> String {
        format!("api_keys.tenant_key:{key_id}")
    }

    pub fn webhook_secret(webhook_id: &str) -> String {
        format!("webhooks.secret:{webhook_id}")
    }

    pub fn idempotent_response(scope_key: &str) -> String {
        format!("idempotency_records.body:{scope_key}")
    }

    pub fn embedder_api_key(index_uid: &str) -> String {
        format!("indexes.embedder_secret:{index_uid}")
    }

    pub fn pending_embedder_api_key(index_uid: &str) -> String {
        format!("indexes.pending_embedder_secret:{index_uid}")
    }

    pub fn key_check(key_id: &str) -> String {
        format!("secrets_key_checks.sealed:{key_id}")
    }
}

/// Whether a stored value has the sealed form (under any key).
pub fn is_sealed(stored: &str) -> bool {
    split(stored).is_some()
}

fn split(stored: &str) -> Option<(&str, &str)> {
    let rest = stored.strip_prefix(PREFIX)?.strip_prefix('.')?;
    let (id, blob) = rest.split_once('.')?;
    (id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some((id, blob))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "an old master key of at least 32 characters";
    const NEW: &str = "a new master key also of 32 characters or more";

    #[test]
    fn a_sealed_value_opens_only_in_its_place() {
        let ring = Keyring::new(&[OLD]).unwrap();
        let sealed = ring.seal_str("webhooks.secret:wh_1", "whsec_abc");
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(
            ring.open_str("webhooks.secret:wh_1", &sealed).unwrap(),
            "whsec_abc"
        );
        assert_eq!(
            ring.open_str("webhooks.secret:wh_2", &sealed),
            Err(OpenError::Corrupt)
        );
        // Two seals of one value differ (a fresh nonce each time).
        assert_ne!(sealed, ring.seal_str("webhooks.secret:wh_1", "whsec_abc"));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            ring.open_str("webhooks.secret:wh_1", &tampered),
            Err(OpenError::Corrupt)
        );
        assert_eq!(ring.open_str("x", "whsec_abc"), Err(OpenError::NotSealed));
    }

    #[test]
    fn values_sealed_under_an_old_key_open_once_a_new_key_is_added() {
        let before = Keyring::new(&[OLD]).unwrap();
        let sealed = before.seal_str("c", "secret");
        let rotated = Keyring::new(&[NEW, OLD]).unwrap();
        assert_eq!(rotated.open_str("c", &sealed).unwrap(), "secret");
        assert!(!rotated.is_current(&sealed));
        let resealed = rotated.seal_str("c", "secret");
        assert!(rotated.is_current(&resealed));
        // Once the old key is dropped, only what was resealed opens.
        let only_new = Keyring::new(&[NEW]).unwrap();
        assert_eq!(only_new.open_str("c", &resealed).unwrap(), "secret");
        assert_eq!(
            only_new.open_str("c", &sealed),
            Err(OpenError::UnknownKey(before.current_id().to_string()))
        );
    }

    #[test]
    fn short_or_missing_keys_are_refused() {
        assert!(Keyring::new(&["short"]).is_err());
        assert!(Keyring::new::<&str>(&[]).is_err());
    }

    #[test]
    fn the_generated_file_holds_the_current_key_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets_key");
        let generated = Keyring::load(None, &file).unwrap();
        let again = Keyring::load(None, &file).unwrap();
        assert_eq!(generated.current_id(), again.current_id());
        let sealed = generated.seal_str("c", "v");
        let old = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("{NEW}\n{old}\n")).unwrap();
        let rotated = Keyring::load(None, &file).unwrap();
        assert_ne!(rotated.current_id(), generated.current_id());
        assert_eq!(rotated.open_str("c", &sealed).unwrap(), "v");
        let configured = Keyring::load(Some(&format!("{NEW},{old}")), &file).unwrap();
        assert_eq!(configured.current_id(), rotated.current_id());
        assert_eq!(configured.open_str("c", &sealed).unwrap(), "v");
    }
}
