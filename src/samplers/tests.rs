//! The sampler reference vectors of docs/semantics.md §13 (recorded from TensorFlow 2.21).

use ndarray::{array, Array2};

use super::*;

fn no_true_classes() -> Array2<i64> {
    Array2::zeros((0, 1))
}

fn fixed(distortion: f32, reserved: i64, shards: i64, shard: i64) -> CandidateSampler {
    let unigrams = vec![5.0, 1.0, 3.0, 0.0, 8.0, 2.0, 4.0, 1.0];
    let mut config = FixedUnigramConfig::from_counts(0, unigrams.clone());
    config.distortion = distortion;
    config.num_reserved_ids = reserved;
    config.num_shards = shards;
    config.shard = shard;
    let (table, _) = fixed_unigram_table_size(&config, &unigrams);
    config.range_max = table;
    CandidateSampler::fixed_unigram(config, Seed::Op(9)).unwrap()
}

fn fixed_unigram_table_size(config: &FixedUnigramConfig, counts: &[f32]) -> (i64, ()) {
    let reserved_here = (0..config.num_reserved_ids)
        .filter(|id| id % config.num_shards == config.shard)
        .count() as i64;
    let counted_here = (0..counts.len() as i64)
        .filter(|i| (reserved_here + i) % config.num_shards == config.shard)
        .count() as i64;
    (reserved_here + counted_here, ())
}

#[test]
fn log_uniform_non_unique_matches_tf_seed_3() {
    let mut sampler = CandidateSampler::log_uniform(20, Seed::Op(3)).unwrap();
    let out = sampler
        .sample(array![[0, 3], [19, 7]].view(), 2, 6, false)
        .unwrap();
    assert_eq!(out.sampled_candidates, vec![0, 10, 0, 6, 2, 9]);
    assert_eq!(
        out.sampled_expected_count,
        vec![1.3660215, 0.17147788, 1.3660215, 0.2631573, 0.56695014, 0.18783277]
    );
    // docs/semantics.md prints these rounded to 8 decimals, so compare at that precision; the recorded
    // TensorFlow file checks them bit for bit.
    let expected = [1.3660215f64, 0.43976068, 0.09615333, 0.2321212];
    for (got, want) in out.true_expected_count.iter().zip(expected) {
        assert!((*got as f64 - want).abs() <= 2e-8, "{got} vs {want}");
    }
}

#[test]
fn log_uniform_unique_skips_repeats_of_the_same_stream() {
    let mut sampler = CandidateSampler::log_uniform(20, Seed::Op(3)).unwrap();
    let out = sampler
        .sample(array![[0, 3], [19, 7]].view(), 2, 6, true)
        .unwrap();
    assert_eq!(out.sampled_candidates, vec![0, 10, 6, 2, 9, 11]);
    assert_eq!(out.num_tries, 8);
}

#[test]
fn uniform_matches_tf_seed_3_with_unique_equal_when_no_repeats() {
    for unique in [false, true] {
        let mut sampler = CandidateSampler::uniform(20, Seed::Op(3)).unwrap();
        let out = sampler
            .sample(array![[0, 3], [19, 7]].view(), 2, 6, unique)
            .unwrap();
        assert_eq!(out.sampled_candidates, vec![15, 0, 3, 8, 17, 14]);
        assert!(out
            .sampled_expected_count
            .iter()
            .all(|&q| q == 0.05f32 * 6.0));
    }
}

#[test]
fn log_uniform_unique_seed_5_uses_inclusion_probability() {
    let mut sampler = CandidateSampler::log_uniform(20, Seed::Op(5)).unwrap();
    let out = sampler
        .sample(array![[0, 3], [19, 7]].view(), 2, 6, true)
        .unwrap();
    assert_eq!(out.sampled_candidates, vec![0, 4, 7, 6, 1, 15]);
    assert_eq!(out.num_tries, 8);
    assert_eq!(
        out.true_expected_count,
        array![[0.87340343f32, 0.45607644], [0.12123945, 0.27067852]]
    );
}

#[test]
fn successive_calls_continue_the_stream() {
    let mut sampler = CandidateSampler::log_uniform(1000, Seed::Attributes(87_654_321, 7)).unwrap();
    let calls: Vec<Vec<i64>> = (0..3)
        .map(|_| {
            sampler
                .sample(no_true_classes().view(), 1, 6, false)
                .unwrap()
                .sampled_candidates
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            vec![411, 0, 23, 316, 1, 28],
            vec![7, 465, 287, 0, 8, 0],
            vec![1, 5, 598, 0, 22, 709]
        ]
    );
}

#[test]
fn global_and_op_seed_attributes() {
    let mut sampler = CandidateSampler::log_uniform(1000, Seed::Attributes(11, 5)).unwrap();
    let out = sampler
        .sample(no_true_classes().view(), 1, 6, false)
        .unwrap();
    assert_eq!(out.sampled_candidates, vec![0, 180, 117, 32, 44, 7]);
}

#[test]
fn fixed_unigram_matches_tf_table() {
    let cases: [(f32, i64, i64, i64, [i64; 5]); 7] = [
        (1.0, 0, 1, 0, [0, 2, 2, 4, 4]),
        (0.75, 0, 1, 0, [1, 2, 2, 4, 4]),
        (0.5, 2, 1, 0, [8, 8, 8, 8, 2]),
        (1.0, 0, 2, 0, [1, 2, 2, 3, 0]),
        (1.0, 0, 2, 1, [3, 2, 2, 2, 0]),
        (1.0, 3, 2, 1, [3, 3, 3, 3, 2]),
        (0.0, 0, 1, 0, [1, 2, 2, 3, 4]),
    ];
    for (distortion, reserved, shards, shard, expected) in cases {
        let mut sampler = fixed(distortion, reserved, shards, shard);
        let out = sampler
            .sample(no_true_classes().view(), 1, 5, false)
            .unwrap();
        assert_eq!(
            out.sampled_candidates,
            expected.to_vec(),
            "distortion {distortion}, reserved {reserved}, shards {shards}, shard {shard}"
        );
    }
}

#[test]
fn fixed_unigram_counter_quirk_with_reserved_ids_and_shards() {
    let mut config = FixedUnigramConfig::from_counts(4, vec![1.0, 7.0, 2.0, 3.0, 5.0, 11.0]);
    config.num_reserved_ids = 2;
    config.num_shards = 2;
    config.shard = 1;
    let sampler = FixedUnigram::new(config).unwrap();
    assert_eq!(sampler.weights(), &[0.0, 1.0, 2.0, 5.0]);
}

#[test]
fn fixed_unigram_zero_distortion_gives_zero_counts_weight_one_but_not_reserved_ids() {
    let mut config = FixedUnigramConfig::from_counts(4, vec![0.0, 3.0]);
    config.num_reserved_ids = 2;
    config.distortion = 0.0;
    let sampler = FixedUnigram::new(config).unwrap();
    assert_eq!(sampler.weights(), &[0.0, 0.0, 1.0, 1.0]);
}

#[test]
fn learned_unigram_learns_after_each_call() {
    let mut sampler = CandidateSampler::learned_unigram(5, Seed::Op(1)).unwrap();
    let true_classes = array![[2i64], [2], [4]];
    let expected: [(Vec<i64>, Vec<f32>); 3] = [
        (vec![2, 4, 3, 2], vec![0.8, 0.8, 0.8, 0.8]),
        (vec![2, 0, 1, 4], vec![1.5, 0.5, 0.5, 1.0]),
        (
            vec![2, 2, 4, 2],
            vec![1.818182, 1.818182, 1.090909, 1.818182],
        ),
    ];
    for (ids, counts) in expected {
        let out = sampler.sample(true_classes.view(), 1, 4, false).unwrap();
        assert_eq!(out.sampled_candidates, ids);
        for (got, want) in out.sampled_expected_count.iter().zip(counts) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}

#[test]
fn all_candidates_returns_the_range_with_unit_counts() {
    let mut sampler = CandidateSampler::all_candidates(Seed::Op(1));
    let out = sampler
        .sample(array![[1i64], [3]].view(), 1, 4, true)
        .unwrap();
    assert_eq!(out.sampled_candidates, vec![0, 1, 2, 3]);
    assert_eq!(out.sampled_expected_count, vec![1.0; 4]);
    assert_eq!(out.true_expected_count, array![[1.0f32], [1.0]]);
}

#[test]
fn unique_with_full_range_is_a_permutation_with_count_below_one() {
    let mut sampler = CandidateSampler::uniform(20, Seed::Op(4)).unwrap();
    let out = sampler
        .sample(no_true_classes().view(), 1, 20, true)
        .unwrap();
    let mut ids = out.sampled_candidates.clone();
    ids.sort();
    assert_eq!(ids, (0..20).collect::<Vec<i64>>());
    let expected = -((out.num_tries as f32) * (-0.05f32).ln_1p()).exp_m1();
    assert!(out
        .sampled_expected_count
        .iter()
        .all(|&q| q == expected && q < 1.0));
}

#[test]
fn log_uniform_probabilities_sum_to_one() {
    let sampler = LogUniform::new(1000).unwrap();
    let total: f64 = (0..1000).map(|v| sampler.probability(v) as f64).sum();
    assert!((total - 1.0).abs() < 1e-5);
}

#[test]
fn unique_larger_than_range_is_refused() {
    let mut sampler = CandidateSampler::uniform(5, Seed::Op(1)).unwrap();
    let error = sampler
        .sample(no_true_classes().view(), 1, 6, true)
        .unwrap_err();
    assert!(
        matches!(error, NceError::InvalidArgument { ref argument, .. } if argument == "num_sampled")
    );
}

#[test]
fn true_class_out_of_range_is_refused() {
    let mut sampler = CandidateSampler::uniform(5, Seed::Op(1)).unwrap();
    let error = sampler
        .sample(array![[5i64]].view(), 1, 2, false)
        .unwrap_err();
    assert!(
        matches!(error, NceError::OutOfRange { ref argument, .. } if argument == "true_classes")
    );
}

#[test]
fn unique_needing_more_ids_than_have_weight_is_refused() {
    let mut config = FixedUnigramConfig::from_counts(4, vec![1.0, 0.0, 0.0, 2.0]);
    config.distortion = 1.0;
    let mut sampler = CandidateSampler::fixed_unigram(config, Seed::Op(1)).unwrap();
    let error = sampler
        .sample(no_true_classes().view(), 1, 3, true)
        .unwrap_err();
    assert!(error.to_string().contains("non-zero probability"));
}

#[test]
fn counts_beyond_int32_are_refused_before_anything_is_allocated() {
    let mut sampler = CandidateSampler::uniform(10, Seed::Op(1)).unwrap();
    for (num_true, num_sampled, name) in [
        (1, crate::error::MAX_COUNT + 1, "num_sampled"),
        (crate::error::MAX_COUNT + 1, 1, "num_true"),
        (1, usize::MAX, "num_sampled"),
    ] {
        let error = sampler
            .sample(
                Array2::<i64>::zeros((0, num_true.min(4))).view(),
                num_true,
                num_sampled,
                false,
            )
            .unwrap_err();
        assert!(
            matches!(error, NceError::InvalidArgument { ref argument, .. } if argument == name),
            "{error}"
        );
    }
}

#[test]
fn a_refused_call_leaves_the_stream_where_it_was() {
    let mut sampler = CandidateSampler::uniform(10, Seed::Op(3)).unwrap();
    let mut fresh = CandidateSampler::uniform(10, Seed::Op(3)).unwrap();
    assert!(sampler.sample(array![[10i64]].view(), 1, 4, true).is_err());
    assert!(sampler.sample(array![[1i64]].view(), 1, 11, true).is_err());
    let a = sampler.sample(array![[1i64]].view(), 1, 4, true).unwrap();
    let b = fresh.sample(array![[1i64]].view(), 1, 4, true).unwrap();
    assert_eq!(a, b);
}

#[test]
fn the_learned_unigram_sampler_stops_learning_at_the_int32_total() {
    let mut sampler = LearnedUnigram::new(3).unwrap();
    sampler.observe(&mut std::iter::repeat_n(1i64, 10));
    assert_eq!(sampler.counts(), &[1, 11, 1]);
    // Ids outside the range (never passed by the sampler, which checks them) are ignored.
    sampler.observe(&mut [-1i64, 3, i64::MAX].into_iter());
    assert_eq!(sampler.counts(), &[1, 11, 1]);
}

#[test]
fn a_huge_fixed_unigram_table_is_refused_without_allocating_it() {
    let mut config = FixedUnigramConfig::from_counts(1 << 40, vec![1.0]);
    config.num_reserved_ids = (1 << 40) - 1;
    let error = FixedUnigram::new(config.clone()).err().unwrap();
    assert!(error.to_string().starts_with("range_max:"), "{error}");
    // Many reserved ids in other shards: counted, not enumerated.
    config.range_max = 1001;
    config.num_reserved_ids = 1_000_000_000_000_000;
    config.num_shards = 1_000_000_000_000;
    config.shard = 1001;
    config.source = UnigramSource::Counts(vec![1.0; 3]);
    let table = FixedUnigram::new(config).unwrap();
    assert_eq!(table.weights().len(), 1001);
    assert_eq!(table.weights()[1000], 1.0);
}

fn parse(text: &[u8]) -> std::result::Result<Vec<f32>, String> {
    parse_vocab(text, "v.csv").map_err(|error| match error {
        VocabError::Invalid(error) => error.to_string(),
        VocabError::Io(error) => format!("io: {error}"),
    })
}

#[test]
fn vocabulary_lines_take_the_last_field_and_skip_empty_lines() {
    assert_eq!(
        parse(b"a,1\n\nb,c,2.5\r\n,3\n4").unwrap(),
        vec![1.0, 2.5, 3.0, 4.0]
    );
    assert_eq!(parse(b"\xff\xfe,7\n").unwrap(), vec![7.0]);
    assert_eq!(parse(b"").unwrap(), Vec::<f32>::new());
    assert_eq!(parse(b" 5 \n").unwrap(), vec![5.0]);
}

#[test]
fn malformed_vocabulary_lines_are_named() {
    for (text, line) in [
        (&b"a,1\nb,x\n"[..], 2),
        (b"a,1\n\n\nb\n", 4),
        (b"a,-1\n", 1),
        (b"a,nan\n", 1),
        (b"a,inf\n", 1),
        (b"a,1e39\n", 1),
        (b"a,\xff\n", 1),
        (b"\r\n \n", 2),
    ] {
        let error = parse(text).unwrap_err();
        assert!(
            error.starts_with("vocab_file: v.csv, line ")
                && error.contains(&format!("line {line}:")),
            "{error}"
        );
    }
    let mut long = b"a,1\n".to_vec();
    long.extend(std::iter::repeat_n(b'7', MAX_VOCAB_LINE_BYTES + 1));
    assert!(parse(&long).unwrap_err().contains("longer than"));
}

#[test]
fn unique_sampling_does_not_wait_for_an_id_the_alias_table_cannot_return() {
    // The second weight is positive but vanishes next to the first in float32: no draw can
    // return it, so asking for two distinct ids is refused at once instead of after 2**31
    // draws.
    let config = FixedUnigramConfig::from_counts(2, vec![1e30, 1e-30]);
    let mut sampler = CandidateSampler::fixed_unigram(config, Seed::Op(1)).unwrap();
    let error = sampler
        .sample(no_true_classes().view(), 1, 2, true)
        .unwrap_err();
    assert!(error.to_string().contains("only 1 ids"), "{error}");
    assert_eq!(
        sampler
            .sample(no_true_classes().view(), 1, 1, true)
            .unwrap()
            .sampled_candidates,
        vec![0]
    );
}
