//! BERT's uncased tokenizer, as all-MiniLM-L6-v2 was trained with it: lower-case, strip
//! accents, split on white space and punctuation (and around each CJK character), then
//! split each word into the longest vocabulary pieces, continuations marked `##`. A word
//! with no such split, or longer than 100 characters, is `[UNK]`.

use std::collections::HashMap;

use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

/// Words longer than this are unknown (as in BERT).
const MAX_WORD_CHARS: usize = 100;

/// A WordPiece vocabulary: token text to id, in `vocab.txt`'s order.
pub struct WordPiece {
    ids: HashMap<String, u32>,
    unknown: u32,
}

impl WordPiece {
    /// From `vocab.txt`: one token per line, the line number its id.
    pub fn from_vocab(text: &str) -> Result<Self, String> {
        let ids: HashMap<String, u32> = text
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
        for word in words(text) {
            self.pieces(&word, &mut out);
        }
        out
    }

    fn pieces(&self, word: &str, out: &mut Vec<u32>) {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > MAX_WORD_CHARS {
            out.push(self.unknown);
            return;
        }
        let first = out.len();
        let mut start = 0;
        let mut piece = String::with_capacity(word.len() + 2);
        while start < chars.len() {
            let mut end = chars.len();
            let found = loop {
                if end == start {
                    break None;
                }
                piece.clear();
                if start > 0 {
                    piece.push_str("##");
                }
                piece.extend(&chars[start..end]);
                if let Some(id) = self.ids.get(piece.as_str()) {
                    break Some(*id);
                }
                end -= 1;
            };
            match found {
                Some(id) => {
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
