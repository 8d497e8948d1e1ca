//! Where the trainer's sentences come from: [`Sentences`], read front to back once per epoch,
//! either from token ids held in memory ([`Corpus`]) or from text files read as training goes
//! ([`super::text_corpus::TextStream`]).

use crate::error::{NceError, Result};

/// A corpus as the trainer reads it: its sentences of token ids, in order, once per epoch.
pub trait Sentences: Send {
    /// Tokens per epoch (rare words already dropped).
    fn tokens(&self) -> u64;

    /// Starts over at the first sentence.
    fn rewind(&mut self) -> Result<()>;

    /// The next sentence's ids (never empty), or `None` at the end of the corpus.
    fn next_sentence(&mut self) -> Result<Option<&[u32]>>;
}

/// Token ids held in memory with their sentence boundaries.
pub struct Corpus {
    ids: Vec<u32>,
    /// Exclusive end of each sentence, increasing; the last is `ids.len()`.
    sentence_ends: Vec<usize>,
    /// The next sentence [`Sentences::next_sentence`] returns.
    next: usize,
}

impl Corpus {
    /// `sentence_of_token[k]` is the sentence index of token `k` (non-decreasing). Ids must be
    /// below `vocabulary`.
    pub fn new(ids: &[i32], sentence_of_token: &[i32], vocabulary: usize) -> Result<Self> {
        if ids.len() != sentence_of_token.len() {
            return Err(NceError::invalid(
                "sentences",
                format!(
                    "must have one entry per token ({}), got {}",
                    ids.len(),
                    sentence_of_token.len()
                ),
            ));
        }
        let mut sentence_ends = Vec::new();
        for k in 1..sentence_of_token.len() {
            match sentence_of_token[k].cmp(&sentence_of_token[k - 1]) {
                std::cmp::Ordering::Less => {
                    return Err(NceError::invalid(
                        "sentences",
                        format!(
                            "must be non-decreasing, got {} after {} at token {k}",
                            sentence_of_token[k],
                            sentence_of_token[k - 1]
                        ),
                    ))
                }
                std::cmp::Ordering::Greater => sentence_ends.push(k),
                std::cmp::Ordering::Equal => {}
            }
        }
        if !ids.is_empty() {
            sentence_ends.push(ids.len());
        }
        let mut converted = Vec::with_capacity(ids.len());
        for (k, &id) in ids.iter().enumerate() {
            if id < 0 || id as usize >= vocabulary {
                return Err(NceError::out_of_range(
                    "ids",
                    format!("token {k} has id {id}, outside the vocabulary [0, {vocabulary})"),
                ));
            }
            converted.push(id as u32);
        }
        Ok(Corpus {
            ids: converted,
            sentence_ends,
            next: 0,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl Sentences for Corpus {
    fn tokens(&self) -> u64 {
        self.ids.len() as u64
    }

    fn rewind(&mut self) -> Result<()> {
        self.next = 0;
        Ok(())
    }

    fn next_sentence(&mut self) -> Result<Option<&[u32]>> {
        let Some(&end) = self.sentence_ends.get(self.next) else {
            return Ok(None);
        };
        let start = match self.next {
            0 => 0,
            k => self.sentence_ends[k - 1],
        };
        self.next += 1;
        Ok(Some(&self.ids[start..end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_come_back_in_order_and_again_after_a_rewind() {
        let mut corpus = Corpus::new(&[4, 1, 2, 3, 0], &[0, 0, 2, 2, 5], 5).unwrap();
        for _ in 0..2 {
            let mut seen = Vec::new();
            while let Some(sentence) = corpus.next_sentence().unwrap() {
                seen.push(sentence.to_vec());
            }
            assert_eq!(seen, vec![vec![4, 1], vec![2, 3], vec![0]]);
            corpus.rewind().unwrap();
        }
        assert_eq!(corpus.tokens(), 5);
    }

    #[test]
    fn bad_corpora_are_refused() {
        assert!(Corpus::new(&[0, 5], &[0, 0], 5).is_err());
        assert!(Corpus::new(&[0, -1], &[0, 0], 5).is_err());
        assert!(Corpus::new(&[0, 1], &[1, 0], 5).is_err());
        assert!(Corpus::new(&[0, 1], &[0], 5).is_err());
    }
}
