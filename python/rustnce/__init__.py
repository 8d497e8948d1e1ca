"""rustnce: TensorFlow's sampled losses (``nce_loss``, ``sampled_softmax_loss``) and the
candidate samplers behind them, reproduced exactly in Rust, on NumPy arrays.

See ``docs/api.md`` for the whole API; ``rustnce.reference`` is a plain NumPy implementation
of the same API used by the tests.
"""

from ._gradients import (
    RowSparseGradient,
    SampledLossGradients,
    nce_loss_and_gradients,
    nce_sgd_step,
    sampled_softmax_loss_and_gradients,
    sampled_softmax_sgd_step,
)
from ._losses import (
    compute_accidental_hits,
    compute_sampled_logits,
    embedding_lookup,
    full_sigmoid_loss,
    full_softmax_loss,
    nce_loss,
    sampled_softmax_loss,
)
from ._rustnce import __version__, bfloat16_available, get_num_threads, set_num_threads
from ._samplers import (
    AllCandidateSampler,
    CandidateSampler,
    FixedUnigramSampler,
    LearnedUnigramSampler,
    LogUniformSampler,
    UniformSampler,
    all_candidate_sampler,
    fixed_unigram_candidate_sampler,
    learned_unigram_candidate_sampler,
    log_uniform_candidate_sampler,
    reset_sampler_cache,
    uniform_candidate_sampler,
)
from ._skipgram import skipgram_sgd_step

__all__ = [
    "__version__",
    "AllCandidateSampler",
    "CandidateSampler",
    "FixedUnigramSampler",
    "RowSparseGradient",
    "SampledLossGradients",
    "LearnedUnigramSampler",
    "LogUniformSampler",
    "UniformSampler",
    "all_candidate_sampler",
    "bfloat16_available",
    "compute_accidental_hits",
    "compute_sampled_logits",
    "embedding_lookup",
    "fixed_unigram_candidate_sampler",
    "full_sigmoid_loss",
    "full_softmax_loss",
    "get_num_threads",
    "learned_unigram_candidate_sampler",
    "log_uniform_candidate_sampler",
    "nce_loss",
    "nce_loss_and_gradients",
    "nce_sgd_step",
    "reset_sampler_cache",
    "sampled_softmax_loss",
    "sampled_softmax_loss_and_gradients",
    "sampled_softmax_sgd_step",
    "set_num_threads",
    "skipgram_sgd_step",
    "uniform_candidate_sampler",
]
