//! The built-in embedder: a static token table distilled from all-MiniLM-L6-v2 (see
//! `server/model/extract.py` for how, and `server/model/NOTICE` for the licence). A text's
//! vector is the normalised mean of its tokens' rows, function words left out; there is no
//! ML runtime, and a caption line takes microseconds.
//!
//! The table ships inside the binary and is pinned by its SHA-256: a build with another
//! table fails its tests, and [`BuiltIn::load`] refuses a table whose shape does not match
//! its vocabulary.

use std::sync::{Arc, OnceLock};

use super::{stopwords::is_stopword, wordpiece::WordPiece};

/// The table: magic, rows and dimensions (u32 LE each), a scale per row (f32 LE), then the
/// rows as int8.
static TABLE: &[u8] = include_bytes!("../../model/static-table.bin");
static VOCAB: &str = include_str!("../../model/vocab.txt");
const MAGIC: &[u8] = b"VVSTATIC1";

/// The table's SHA-256, as `extract.py` printed it.
pub const TABLE_SHA256: &str = "5754883538dea828cba7b5b2a9425f05e0de4a2c1bc7f63cf1427bb5788c7565";

/// The built-in embedder's name in the API and in stored vectors' provenance.
pub const MODEL: &str = "minilm-l6-static-128";

pub struct BuiltIn {
    vocab: WordPiece,
    dims: usize,
    scales: Vec<f32>,
    rows: Vec<i8>,
    /// Token ids that carry no meaning of their own: left out of the mean.
    skipped: Vec<bool>,
}

impl BuiltIn {
    /// The process's one built-in embedder (the table is parsed once).
    pub fn shared() -> Result<Arc<BuiltIn>, String> {
        static SHARED: OnceLock<Result<Arc<BuiltIn>, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| BuiltIn::load(TABLE, VOCAB).map(Arc::new))
            .clone()
    }

    fn load(table: &[u8], vocab_text: &str) -> Result<BuiltIn, String> {
        let vocab = WordPiece::from_vocab(vocab_text)?;
        let rest = table
            .strip_prefix(MAGIC)
            .ok_or("the embedding table has no header")?;
        let u32_at = |at: usize| -> Result<usize, String> {
            let bytes = rest
                .get(at..at + 4)
                .ok_or("the embedding table is truncated")?;
            Ok(u32::from_le_bytes(bytes.try_into().map_err(|_| "bad header")?) as usize)
        };
        let (count, dims) = (u32_at(0)?, u32_at(4)?);
        if count != vocab.len() || dims == 0 {
            return Err(format!(
                "the embedding table has {count} rows of {dims}; the vocabulary {} tokens",
                vocab.len()
            ));
        }
        let scales_end = 8 + 4 * count;
        let scales = rest
            .get(8..scales_end)
            .ok_or("the embedding table is truncated")?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let bytes = rest.get(scales_end..).unwrap_or_default();
        if bytes.len() != count * dims {
            return Err("the embedding table's rows do not match its header".into());
        }
        let rows: Vec<i8> = bytes.iter().map(|&b| b as i8).collect();
        let mut skipped = vec![false; count];
        for special in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] {
            if let Some(id) = vocab.id(special) {
                skipped[id as usize] = true;
            }
        }
        for (token, id) in vocab_tokens(vocab_text) {
            if is_stopword(token) || token.chars().all(|c| c.is_ascii_punctuation()) {
                skipped[id] = true;
            }
        }
        Ok(BuiltIn {
            vocab,
            dims,
            scales,
            rows,
            skipped,
        })
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// `text`'s unit vector; all zeros when no token carries meaning (an empty or
    /// punctuation-only text), which is similar to nothing.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let mut sum = vec![0f32; self.dims];
        for id in self.vocab.tokenize(text) {
            let id = id as usize;
            if self.skipped[id] {
                continue;
            }
            let scale = self.scales[id];
            let row = &self.rows[id * self.dims..(id + 1) * self.dims];
            for (total, &v) in sum.iter_mut().zip(row) {
                *total += v as f32 * scale;
            }
        }
        normalise(&mut sum);
        sum
    }
}

/// Scales `v` to length one (a zero vector stays zero). The mean's divisor cancels here.
pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

fn vocab_tokens(vocab: &str) -> impl Iterator<Item = (&str, usize)> {
    vocab.lines().enumerate().map(|(id, token)| (token, id))
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn the_shipped_table_is_the_pinned_one() {
        let digest: String = Sha256::digest(TABLE)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, TABLE_SHA256);
        let model = BuiltIn::shared().unwrap();
        assert_eq!(model.dims(), 128);
    }

    /// Paraphrases sharing no word with their captions are nearer to them than to the
    /// other captions (the eval in bench/ measures this at scale).
    #[test]
    fn a_paraphrase_is_nearer_its_caption_than_the_others() {
        let model = BuiltIn::shared().unwrap();
        let captions = [
            "the astronaut floated inside the station",
            "heavy rain floods the streets",
            "the chef chopped onions for the soup",
            "the goalkeeper saved a penalty in the final minute",
        ];
        let queries = [
            "weightless cosmonaut drifting aboard",
            "bad weather in the city",
            "making dinner food",
            "keeper stops a spot kick",
        ];
        let captions: Vec<Vec<f32>> = captions.iter().map(|c| model.embed(c)).collect();
        for (i, query) in queries.iter().enumerate() {
            let q = model.embed(query);
            let nearest = (0..captions.len())
                .max_by(|&a, &b| cosine(&q, &captions[a]).total_cmp(&cosine(&q, &captions[b])))
                .unwrap();
            assert_eq!(nearest, i, "{query}");
        }
    }

    #[test]
    fn vectors_are_unit_length_or_zero_for_texts_without_meaning() {
        let model = BuiltIn::shared().unwrap();
        let v = model.embed("The Café, floated.");
        assert!((cosine(&v, &v) - 1.0).abs() < 1e-4);
        for empty in ["", "   ", "the of and", "?!,.", "\u{0}\u{7}"] {
            assert!(model.embed(empty).iter().all(|x| *x == 0.0), "{empty:?}");
        }
        // Hostile sizes stay bounded: one [UNK] for a huge word, a long text is fine.
        let huge = "x".repeat(100_000);
        assert_eq!(model.embed(&huge).len(), 128);
        assert_eq!(model.embed(&"station ".repeat(20_000)).len(), 128);
    }

    #[test]
    fn a_table_that_does_not_match_its_vocabulary_is_refused() {
        assert!(BuiltIn::load(b"nope", VOCAB).is_err());
        let mut short = TABLE[..TABLE.len() - 1].to_vec();
        assert!(BuiltIn::load(&short, VOCAB).is_err());
        short.truncate(20);
        assert!(BuiltIn::load(&short, VOCAB).is_err());
        assert!(BuiltIn::load(TABLE, "[UNK]\nonly\n").is_err());
    }
}
