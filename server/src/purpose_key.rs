//! HMAC-SHA-256 under a key derived from a server secret for one purpose: the secret (the
//! API-key pepper) keys several uses, search page tokens and idempotency fingerprints among
//! them, and a tag made for one use is worthless for another.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Tags data for one purpose. Holds the keyed HMAC state, so each tag is a clone, not a new
/// key schedule.
#[derive(Clone)]
pub struct PurposeKey {
    mac: Hmac<Sha256>,
}

impl PurposeKey {
    /// The key HMAC(`secret`, `purpose`).
    pub fn derive(secret: &[u8], purpose: &[u8]) -> PurposeKey {
        let mut derive = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        derive.update(purpose);
        PurposeKey {
            mac: Hmac::<Sha256>::new_from_slice(&derive.finalize().into_bytes())
                .expect("HMAC takes any key length"),
        }
    }

    /// HMAC(key, `data`).
    pub fn tag(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same bytes as deriving and keying by hand, so tags made before this type stay
    /// valid (page tokens in flight, fingerprints of the last 24 hours).
    #[test]
    fn tags_are_hmac_under_the_derived_key() {
        let mut derive = Hmac::<Sha256>::new_from_slice(b"pepper").unwrap();
        derive.update(b"purpose");
        let key = derive.finalize().into_bytes();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(b"data");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        let purpose = PurposeKey::derive(b"pepper", b"purpose");
        assert_eq!(purpose.tag(b"data"), expected);
        assert_eq!(
            purpose.tag(b"data"),
            expected,
            "cloned state, same tag again"
        );
        assert_ne!(
            PurposeKey::derive(b"pepper", b"other").tag(b"data"),
            expected
        );
    }
}
