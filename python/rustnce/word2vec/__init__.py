"""Skip-gram word vectors trained with rustnce's fused sampled-loss SGD steps: corpus and
vocabulary, a planted-structure corpus generator, the training loop, evaluation, the word2vec
text format, and the ``python -m rustnce`` command line."""

from .corpus import (
    CorpusError,
    EncodedCorpus,
    TextCorpus,
    Vocabulary,
    load_corpus,
    open_corpus,
    read_sentences,
)
from .evaluation import (
    Purity,
    SimilarityFileError,
    SimilarityResult,
    group_purity,
    nearest_neighbours,
    rankdata,
    read_similarity_pairs,
    spearman,
    word_similarity,
)
from .planted import PlantedCorpus, planted_corpus
from .training import (
    LOSSES,
    SAMPLERS,
    Progress,
    TrainingConfig,
    TrainingDiverged,
    TrainingResult,
    initial_input_vectors,
    keep_probabilities,
    train,
)
from .vectors import VectorFileError, load_word2vec_format, save_word2vec_format

__all__ = [
    "LOSSES",
    "SAMPLERS",
    "CorpusError",
    "EncodedCorpus",
    "PlantedCorpus",
    "Progress",
    "Purity",
    "SimilarityFileError",
    "SimilarityResult",
    "TextCorpus",
    "TrainingConfig",
    "TrainingDiverged",
    "TrainingResult",
    "VectorFileError",
    "Vocabulary",
    "group_purity",
    "initial_input_vectors",
    "keep_probabilities",
    "load_corpus",
    "load_word2vec_format",
    "nearest_neighbours",
    "open_corpus",
    "planted_corpus",
    "rankdata",
    "read_sentences",
    "read_similarity_pairs",
    "save_word2vec_format",
    "spearman",
    "train",
    "word_similarity",
]
