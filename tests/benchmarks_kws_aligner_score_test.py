"""benchmarks/kws_aligner_score.py on the LibriPhrase fixture with the shipped adml_tiny:
the utterance column equals what evaluation scores, the phoneme columns are cosines."""

from pathlib import Path

import numpy as np

from benchmarks import kws_aligner_score
from kerasadml.data.speech.libriphrase import evaluation_pairs, read_libriphrase_csv
from kerasadml.kws.evaluation import score_pairs
from kerasadml.zoo import ADML

CSV = Path(__file__).parent / "fixtures" / "libriphrase" / "libriphrase_diffspk_all_1word.csv"


def test_sample_pairs_takes_at_most_n_of_each_kind():
    pairs = evaluation_pairs(read_libriphrase_csv([CSV]))
    sample = kws_aligner_score.sample_pairs(pairs, 1, seed=0)
    kinds = list(sample.kind)
    assert sorted(kinds) == sorted(set(pairs.kind)) and len(kinds) == len(set(kinds))


def test_scores_match_the_evaluation_and_are_cosines():
    model = ADML.from_preset("adml_tiny")
    pairs = evaluation_pairs(read_libriphrase_csv([CSV]))
    reference, keep, _ = score_pairs(model, pairs, progress=False)
    pairs = pairs.subset(keep)
    scores = kws_aligner_score.pair_scores(model, pairs, batch_size=4)
    np.testing.assert_allclose(scores[:, 0], reference, atol=1e-4)
    assert np.all(np.abs(scores[:, 1:]) <= 1 + 1e-5) and np.all(scores[:, 2] <= scores[:, 1] + 1e-6)
