//! Resource ids: a type prefix, then 26 Crockford base32 characters (48 bits of milliseconds,
//! 80 random bits), so ids sort by creation time and never collide in practice.

use rand::RngCore;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new id such as `idx_01j9...`.
pub fn new_id(prefix: &str) -> String {
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u128;
    let mut random = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut random);
    let mut value = millis << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= (*byte as u128) << (8 * (9 - i));
    }
    let mut out = String::with_capacity(prefix.len() + 27);
    out.push_str(prefix);
    out.push('_');
    for i in (0..26).rev() {
        out.push(ALPHABET[((value >> (5 * i)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_unique_and_sortable() {
        let a = new_id("idx");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("idx");
        assert!(a.starts_with("idx_") && a.len() == 30);
        assert_ne!(a, b);
        assert!(a < b);
    }
}
