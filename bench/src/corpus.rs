//! Deterministic transcript-like text: a vocabulary of pronounceable words drawn with a Zipf
//! distribution, so a few words are very common and most are rare, as in speech.

use rand::{rngs::StdRng, Rng, SeedableRng};

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ren", "sta", "tion", "por", "ter", "bri", "dge", "har", "bour", "news",
    "en", "tra", "nce", "vo", "te", "ci", "ty", "ma", "yor", "rain", "day",
];

pub struct Corpus {
    vocabulary: Vec<String>,
    cumulative: Vec<f64>,
    rng: StdRng,
}

impl Corpus {
    /// `words` distinct words, Zipf exponent 1.0, seeded so every run sees the same text.
    pub fn new(words: usize, seed: u64) -> Corpus {
        let mut vocabulary = Vec::with_capacity(words);
        let mut i = 0usize;
        while vocabulary.len() < words {
            let mut n = i;
            let mut word = String::new();
            loop {
                word.push_str(SYLLABLES[n % SYLLABLES.len()]);
                n /= SYLLABLES.len();
                if n == 0 {
                    break;
                }
            }
            vocabulary.push(word);
            i += 1;
        }
        let mut total = 0.0;
        let cumulative = (0..words)
            .map(|rank| {
                total += 1.0 / (rank as f64 + 1.0);
                total
            })
            .collect();
        Corpus {
            vocabulary,
            cumulative,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn word(&mut self) -> &str {
        let total = *self.cumulative.last().expect("non-empty vocabulary");
        let x = self.rng.gen_range(0.0..total);
        let rank = self.cumulative.partition_point(|c| *c < x);
        &self.vocabulary[rank.min(self.vocabulary.len() - 1)]
    }

    /// `n` words separated by spaces.
    pub fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| self.word().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A segment's text: 8 to 20 words.
    pub fn sentence(&mut self) -> String {
        let n = self.rng.gen_range(8..=20);
        self.words(n)
    }

    /// A query: 2 to 5 words.
    pub fn query(&mut self) -> String {
        let n = self.rng.gen_range(2..=5);
        self.words(n)
    }
}
