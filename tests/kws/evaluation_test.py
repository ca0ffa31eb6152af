"""kerasadml/kws/evaluation.py: how ``score_pairs`` loads and embeds the clips of a pair set,
on the LibriPhrase fixture (whose clip 106_0001 is missing and 107_0001 corrupt) and a
tiny ADML."""

import logging
from pathlib import Path

import numpy as np

from kerasadml.data.audio_io import load_audio
from kerasadml.data.speech.libriphrase import evaluation_pairs, read_libriphrase_csv
from kerasadml.kws.evaluation import score_pairs
from kerasadml.zoo import ADML
from tests.helpers import ADML_TINY, record_predict_batches

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "libriphrase"
UNREADABLE = {"106_0001_1word_0.wav", "107_0001_1word_0.wav"}  # missing, corrupt


def test_score_pairs_embeds_readable_clips_in_order_and_skips_and_counts_the_rest(
    monkeypatch, caplog
):
    # Was test_audio_dataset_in_order_with_skips (make_audio_dataset, removed in c12122a).
    pairs = evaluation_pairs(read_libriphrase_csv(FIXTURE))
    names = [Path(p).name for p in pairs.audio_paths]
    readable = [i for i, name in enumerate(names) if name not in UNREADABLE]
    assert len(names) == 10 and len(readable) == 8 and readable != list(range(8))  # skips mid-list
    model = ADML(**ADML_TINY)
    batches = record_predict_batches(model, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="kerasadml.kws.evaluation"):
        scores, keep, skipped = score_pairs(model, pairs, batch_size=3, progress=False)
    assert skipped == 2
    assert sum("skipped 2 unreadable clips" in r.getMessage() for r in caplog.records) == 1

    # The readable clips reach the network in order, as read, never cropped: 3 + 3 + 2
    # clips in batches of 3 rows (the last filled up with a copy of its first row).
    audio = [b for b in batches if "audio" in b]
    assert [b["audio"].shape for b in audio] == [(3, 16000)] * 3  # every fixture clip <= 1 s
    rows = [row[:n] for b in audio for row, n in zip(b["audio"], b["audio_length"])]
    assert len(rows) == 9
    for i, row in zip(readable, rows):
        np.testing.assert_array_equal(row, load_audio(pairs.audio_paths[i]))
    np.testing.assert_array_equal(rows[8], rows[6])

    # The pairs of the unreadable clips are left out, every other pair is scored with its
    # own clip's embedding.
    audio_index = np.asarray(pairs.audio_index)
    text_index = np.asarray(pairs.text_index)
    np.testing.assert_array_equal(keep, np.isin(audio_index, readable))
    alone = {i: model.embed_audio([pairs.audio_paths[i]])[0] for i in readable}
    text_emb = model.embed_text(pairs.texts)
    expected = [alone[a] @ text_emb[t] for a, t in zip(audio_index[keep], text_index[keep])]
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)
