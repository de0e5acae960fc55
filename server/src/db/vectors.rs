//! Segment vectors as the database stores them: little-endian f32s, one after another, in
//! a BLOB (SQLite) or `bytea` (PostgreSQL) beside the segment. The database is the source
//! of truth; each instance's search copy holds a quantised copy (`search::vectors`).

/// The stored bytes of `vector`.
pub fn to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored vector; refuses bytes that are not whole f32s or hold a non-finite value.
pub fn from_bytes(bytes: &[u8]) -> Result<Vec<f32>, String> {
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "a stored vector of {} bytes is not f32s",
            bytes.len()
        ));
    }
    let vector: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if vector.iter().any(|x| !x.is_finite()) {
        return Err("a stored vector holds a value that is not finite".into());
    }
    Ok(vector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_and_odd_bytes_are_refused() {
        let v = vec![0.5, -1.25, 3.0e-8];
        assert_eq!(from_bytes(&to_bytes(&v)).unwrap(), v);
        assert!(from_bytes(&[0, 0, 0]).is_err());
        assert!(from_bytes(&to_bytes(&[f32::NAN])).is_err());
        assert_eq!(from_bytes(&[]).unwrap(), Vec::<f32>::new());
    }
}
