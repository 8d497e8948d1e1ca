//! word2vec's skip-gram pairs, in text order: each sentence's words are first subsampled (a
//! word of count `c` out of `T` training words is kept with probability
//! `(sqrt(c / (s T)) + 1) · s T / c`, capped at 1), then every kept word is a center whose
//! contexts are the kept words at most `r` positions away in the same sentence, with `r` drawn
//! uniformly from `1..=window` per center (word2vec's "reduced window").

use super::corpus::Sentences;
use crate::error::Result;
use crate::philox::RandomStream;

/// word2vec's keep probability of each id (`subsample = 0`: keep everything).
pub fn keep_probabilities(counts: &[i64], subsample: f64) -> Vec<f64> {
    let total: f64 = counts.iter().map(|&c| c as f64).sum();
    let threshold = subsample * total;
    counts
        .iter()
        .map(|&count| {
            if subsample <= 0.0 || count <= 0 {
                1.0
            } else {
                let count = count as f64;
                (((count / threshold).sqrt() + 1.0) * threshold / count).min(1.0)
            }
        })
        .collect()
}

/// Walks one epoch of the corpus, handing out pairs center by center.
pub struct PairGenerator {
    window: u32,
    keep: Vec<f64>,
    /// Corpus tokens before the current sentence.
    sentence_start: u64,
    /// Tokens of the current sentence (before subsampling).
    sentence_len: u64,
    /// The current sentence after subsampling: (id, position in the sentence).
    kept: Vec<(u32, u32)>,
    /// The next center within `kept`.
    center: usize,
    /// Raw corpus words of this epoch behind us.
    position: u64,
}

impl PairGenerator {
    pub fn new(window: usize, keep: Vec<f64>) -> Self {
        PairGenerator {
            window: window.clamp(1, u32::MAX as usize) as u32,
            keep,
            sentence_start: 0,
            sentence_len: 0,
            kept: Vec::new(),
            center: 0,
            position: 0,
        }
    }

    /// Starts the corpus over (a new epoch); the caller rewinds the sentences.
    pub fn restart(&mut self) {
        self.sentence_start = 0;
        self.sentence_len = 0;
        self.kept.clear();
        self.center = 0;
        self.position = 0;
    }

    /// Raw corpus words of this epoch consumed so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Appends the pairs of whole centers until at least `target` pairs were added or the
    /// epoch ends, and to `window_ends` the length of `centers` after each center's window
    /// (a center without contexts adds nothing). Returns whether the epoch ended; fails only
    /// when reading the corpus does.
    pub fn fill(
        &mut self,
        corpus: &mut dyn Sentences,
        stream: &mut RandomStream,
        target: usize,
        centers: &mut Vec<u32>,
        contexts: &mut Vec<u32>,
        window_ends: &mut Vec<u32>,
    ) -> Result<bool> {
        let added_from = centers.len();
        loop {
            if self.center >= self.kept.len() {
                // The finished sentence counts whole, dropped words included.
                self.position = self.sentence_start + self.sentence_len;
                match corpus.next_sentence()? {
                    None => return Ok(true),
                    Some(ids) => {
                        self.sentence_start += self.sentence_len;
                        self.sentence_len = ids.len() as u64;
                        self.kept.clear();
                        self.center = 0;
                        for (offset, &id) in ids.iter().enumerate() {
                            let keep = self.keep[id as usize];
                            if keep >= 1.0 || stream.next_f64() < keep {
                                self.kept.push((id, offset as u32));
                            }
                        }
                    }
                }
                continue;
            }
            let reach = self.window - stream.uniform_u32(self.window);
            let (id, at) = self.kept[self.center];
            let first = self.center.saturating_sub(reach as usize);
            let last = (self.center + reach as usize).min(self.kept.len() - 1);
            if last > first {
                for k in first..=last {
                    if k != self.center {
                        centers.push(id);
                        contexts.push(self.kept[k].0);
                    }
                }
                window_ends.push(centers.len() as u32);
            }
            self.center += 1;
            self.position = self.sentence_start + at as u64 + 1;
            if centers.len() - added_from >= target {
                return Ok(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::philox::Philox4x32;
    use crate::skipgram::corpus::Corpus;

    fn pairs_of(
        corpus: &mut Corpus,
        window: usize,
        keep: Vec<f64>,
        target: usize,
    ) -> Vec<(u32, u32)> {
        let mut generator = PairGenerator::new(window, keep);
        let mut stream = RandomStream::new(Philox4x32::new(1, 2));
        let (mut centers, mut contexts, mut ends) = (Vec::new(), Vec::new(), Vec::new());
        while !generator
            .fill(
                corpus,
                &mut stream,
                target,
                &mut centers,
                &mut contexts,
                &mut ends,
            )
            .unwrap()
        {}
        assert_eq!(generator.position(), corpus.len() as u64);
        // Each window is one center's run of pairs.
        let mut start = 0;
        for &end in &ends {
            let window = &centers[start..end as usize];
            assert!(!window.is_empty() && window.iter().all(|&c| c == window[0]));
            start = end as usize;
        }
        assert_eq!(start, centers.len());
        centers.into_iter().zip(contexts).collect()
    }

    #[test]
    fn window_one_pairs_neighbours_within_sentences() {
        // Ids equal positions; sentences [0, 1, 2] and [3, 4].
        let mut corpus = Corpus::new(&[0, 1, 2, 3, 4], &[0, 0, 0, 1, 1], 5).unwrap();
        let pairs = pairs_of(&mut corpus, 1, vec![1.0; 5], 3);
        assert_eq!(pairs, vec![(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)]);
    }

    #[test]
    fn reduced_windows_stay_within_the_window_and_use_every_width() {
        let ids: Vec<i32> = (0..2000).collect();
        let mut corpus = Corpus::new(&ids, &vec![0; 2000], 2000).unwrap();
        let pairs = pairs_of(&mut corpus, 4, vec![1.0; 2000], 64);
        let mut widths = [0usize; 5];
        let mut by_center = std::collections::BTreeMap::<u32, u32>::new();
        for &(center, context) in &pairs {
            let distance = center.abs_diff(context);
            assert!((1..=4).contains(&distance));
            let widest = by_center.entry(center).or_default();
            *widest = (*widest).max(distance);
        }
        for &width in by_center.values() {
            widths[width as usize] += 1;
        }
        // Interior centers: each width 1..=4 about a quarter of the time.
        for &count in &widths[1..] {
            assert!((400..600).contains(&count), "{widths:?}");
        }
    }

    #[test]
    fn subsampling_keeps_the_expected_share() {
        let keep = keep_probabilities(&[900, 100], 1e-2);
        // T = 1000, sT = 10: frequent word kept with (sqrt(90) + 1) / 90.
        assert!((keep[0] - ((90f64).sqrt() + 1.0) / 90.0).abs() < 1e-12);
        assert!((keep[1] - ((10f64).sqrt() + 1.0) / 10.0).abs() < 1e-12);
        assert_eq!(keep_probabilities(&[5, 1], 0.0), vec![1.0, 1.0]);
        assert_eq!(keep_probabilities(&[5, 1], 1.0), vec![1.0, 1.0]);
        let ids: Vec<i32> = (0..20000).map(|k| k % 2).collect();
        let mut corpus = Corpus::new(&ids, &vec![0; 20000], 2).unwrap();
        let mut generator = PairGenerator::new(1, vec![0.25, 1.0]);
        let mut stream = RandomStream::new(Philox4x32::new(3, 4));
        let (mut centers, mut contexts, mut ends) = (Vec::new(), Vec::new(), Vec::new());
        while !generator
            .fill(
                &mut corpus,
                &mut stream,
                1000,
                &mut centers,
                &mut contexts,
                &mut ends,
            )
            .unwrap()
        {}
        let zeros = centers.iter().filter(|&&id| id == 0).count() as f64;
        let ones = centers.iter().filter(|&&id| id == 1).count() as f64;
        // With window 1 nearly every kept word is a center twice; the ratio is the keep ratio.
        assert!((zeros / ones - 0.25).abs() < 0.02, "{}", zeros / ones);
    }
}
