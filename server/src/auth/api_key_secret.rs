//! The API key secret format and its digest.
//!
//! A secret is `sk_live_` (or `sk_test_`), 32 random base62 characters from the OS-seeded
//! CSPRNG (~190 bits), and a 6-character base62 checksum of them (the first 32 bits of
//! SHA-256), so secret scanners can recognise a key and typos fail before any lookup.
//! At rest only HMAC-SHA-256(pepper, secret) is kept, which allows lookup by digest.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
const PREFIXES: [&str; 2] = ["sk_live_", "sk_test_"];

/// A freshly generated secret.
pub fn generate(prefix: &str) -> String {
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..RANDOM_LEN)
        .map(|_| BASE62[rng.gen_range(0..62)] as char)
        .collect();
    format!("{prefix}{body}{}", checksum(&body))
}

fn checksum(body: &str) -> String {
    let hash = Sha256::digest(body.as_bytes());
    let mut value = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

/// Whether a presented value has the shape and checksum of a secret we issue.
pub fn is_well_formed(secret: &str) -> bool {
    let Some(rest) = PREFIXES.iter().find_map(|p| secret.strip_prefix(p)) else {
        return false;
    };
    if rest.len() != RANDOM_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, sum) = rest.split_at(RANDOM_LEN);
    checksum(body) == sum
}

/// The stored digest: hex HMAC-SHA-256 of the secret under the pepper.
pub fn digest(pepper: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper).expect("HMAC takes any key length");
    mac.update(secret.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// What lists show: the prefix and the last four characters.
pub fn mask(secret: &str) -> String {
    let prefix = PREFIXES
        .iter()
        .find(|p| secret.starts_with(**p))
        .copied()
        .unwrap_or("sk_");
    let tail = &secret[secret.len().saturating_sub(4)..];
    format!("{prefix}…{tail}")
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_well_formed_and_distinct() {
        let a = generate("sk_live_");
        let b = generate("sk_test_");
        assert!(is_well_formed(&a), "{a}");
        assert!(is_well_formed(&b), "{b}");
        assert_ne!(a, b);
        assert_eq!(a.len(), 8 + 32 + 6);
    }

    #[test]
    fn a_typo_breaks_the_checksum() {
        let secret = generate("sk_live_");
        let mut chars: Vec<char> = secret.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert!(!is_well_formed(&typo));
        assert!(!is_well_formed("sk_live_short"));
        assert!(!is_well_formed(
            "pk_live_0000000000000000000000000000000000000"
        ));
    }

    #[test]
    fn digest_depends_on_pepper_and_mask_hides_the_secret() {
        let secret = generate("sk_live_");
        assert_ne!(digest(b"one", &secret), digest(b"two", &secret));
        assert_eq!(digest(b"one", &secret), digest(b"one", &secret));
        let masked = mask(&secret);
        assert!(masked.starts_with("sk_live_…"));
        assert!(masked.ends_with(&secret[secret.len() - 4..]));
        assert_eq!(masked.chars().count(), 8 + 1 + 4);
    }
}
