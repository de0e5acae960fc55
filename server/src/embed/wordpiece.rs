//! BERT's uncased tokenizer, as all-MiniLM-L6-v2 was trained with it: lower-case, strip
//! accents, split on white space and punctuation (and around each CJK character), then
//! split each word into the longest vocabulary pieces, continuations marked `##`. A word
//! with no such split, or longer than 100 characters, is `[UNK]`.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;
use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

/// Words longer than this are unknown (as in BERT).
const MAX_WORD_CHARS: usize = 100;

/// A WordPiece vocabulary: token text to id, in `vocab.txt`'s order.
pub struct WordPiece {
    /// Looked up once or more per word: a fast hash (the keys are the vocabulary's own).
    ids: HashMap<String, u32, FxBuildHasher>,
    unknown: u32,
}

impl WordPiece {
    /// From `vocab.txt`: one token per line, the line number its id.
    pub fn from_vocab(text: &str) -> Result<Self, String> {
        let ids: HashMap<String, u32, FxBuildHasher> = text
            .lines()
            .enumerate()
            .map(|(id, token)| (token.to_string(), id as u32))
            .collect();
        let unknown = *ids.get("[UNK]").ok_or("the vocabulary has no [UNK]")?;
        Ok(WordPiece { ids, unknown })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// A token's id, if the vocabulary holds it.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// The ids of `text`'s pieces, `[UNK]` included, without `[CLS]` and `[SEP]`.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        if text.is_ascii() {
            // Most captions: no accents to strip, one byte per character, so the words are
            // cut and lowered in place of the Unicode pass (a third of the embedder's time).
            let mut word = String::new();
            for piece in text.split([' ', '\t', '\n', '\r']) {
                for part in split_ascii_punctuation(piece) {
                    word.clear();
                    word.extend(
                        part.chars()
                            .filter(|c| !c.is_ascii_control())
                            .map(|c| c.to_ascii_lowercase()),
                    );
                    if !word.is_empty() {
                        self.pieces(&word, &mut out);
                    }
                }
            }
            return out;
        }
        for word in words(text) {
            self.pieces(&word, &mut out);
        }
        out
    }

    fn pieces(&self, word: &str, out: &mut Vec<u32>) {
        // The common case: the whole word is a token.
        if let Some(id) = self.ids.get(word) {
            out.push(*id);
            return;
        }
        // Where characters start, and the end: the places a piece may be cut.
        let cuts: Vec<usize> = word
            .char_indices()
            .map(|(at, _)| at)
            .chain([word.len()])
            .collect();
        if cuts.len() - 1 > MAX_WORD_CHARS {
            out.push(self.unknown);
            return;
        }
        let first = out.len();
        let mut continued = String::with_capacity(word.len() + 2);
        let mut start = 0;
        while start + 1 < cuts.len() {
            // The longest piece from `start` the vocabulary holds.
            let found = (start + 1..cuts.len()).rev().find_map(|end| {
                let piece = &word[cuts[start]..cuts[end]];
                let id = if start == 0 {
                    self.ids.get(piece)
                } else {
                    continued.clear();
                    continued.push_str("##");
                    continued.push_str(piece);
                    self.ids.get(continued.as_str())
                };
                id.map(|id| (*id, end))
            });
            match found {
                Some((id, end)) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(first);
                    out.push(self.unknown);
                    return;
                }
            }
        }
    }
}

/// `word` cut before and after each ASCII punctuation mark, the marks kept as words.
fn split_ascii_punctuation(word: &str) -> impl Iterator<Item = &str> {
    let mut rest = word;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = match rest.find(|c: char| c.is_ascii_punctuation()) {
            Some(0) => 1,
            Some(at) => at,
            None => rest.len(),
        };
        let (part, tail) = rest.split_at(end);
        rest = tail;
        Some(part)
    })
}

/// BERT's basic tokenization: the words and punctuation marks of `text`, lower-cased and
/// without accents; control characters dropped.
pub fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    for c in text.nfd() {
        if is_combining_mark(c) || c == '\0' || c == '\u{fffd}' || is_control(c) {
            continue;
        }
        if c.is_whitespace() {
            flush(&mut word, &mut words);
        } else if is_punctuation(c) || is_cjk(c) {
            flush(&mut word, &mut words);
            words.push(c.to_string());
        } else {
            word.extend(c.to_lowercase());
        }
    }
    flush(&mut word, &mut words);
    words
}

fn is_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// ASCII symbols count as punctuation (as in BERT), and so do Unicode's punctuation marks
/// (by the blocks that hold them outside ASCII).
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c as u32,
            0x00A1 | 0x00A7 | 0x00AB | 0x00B6 | 0x00B7 | 0x00BB | 0x00BF
            | 0x2010..=0x2027 | 0x2030..=0x205E | 0x3001..=0x3003 | 0x3008..=0x3011
            | 0x3014..=0x301F | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20 | 0xFF3B..=0xFF40
            | 0xFF5B..=0xFF65)
}

/// CJK ideographs, which BERT splits one per word.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> WordPiece {
        WordPiece::from_vocab(
            "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\nstation\nfloat\n##ed\n##s\n,\n.\ncafe\n",
        )
        .unwrap()
    }

    #[test]
    fn words_are_lowered_unaccented_and_split_at_punctuation() {
        assert_eq!(
            words("  The Café, floated.\u{0}Naïve 東京 "),
            ["the", "cafe", ",", "floated", ".", "naive", "東", "京"]
        );
        assert!(words("\u{7}\u{fffd}").is_empty());
    }

    /// The ASCII fast path cuts and lowers exactly as the Unicode pass does.
    #[test]
    fn ascii_text_is_tokenized_as_the_unicode_pass_would() {
        let v = vocab();
        for text in [
            "The stations floated, CAFE.",
            "  station.station,,the\tfloated\u{7}s\u{b}the ",
            "x-y:z floatx",
            "",
        ] {
            let unicode: Vec<u32> = words(text)
                .iter()
                .flat_map(|w| {
                    let mut out = Vec::new();
                    v.pieces(w, &mut out);
                    out
                })
                .collect();
            assert_eq!(v.tokenize(text), unicode, "{text:?}");
        }
    }

    #[test]
    fn pieces_are_the_longest_in_the_vocabulary() {
        let v = vocab();
        // the=4 station=5 float=6 ##ed=7 ##s=8 ,=9 .=10 cafe=11
        assert_eq!(
            v.tokenize("The stations floated, Café."),
            [4, 5, 8, 6, 7, 9, 11, 10]
        );
        // No split covers the word: one [UNK], not a partial split.
        assert_eq!(v.tokenize("floatx station"), [1, 5]);
        assert_eq!(v.tokenize(&"s".repeat(101)), [1]);
    }
}
