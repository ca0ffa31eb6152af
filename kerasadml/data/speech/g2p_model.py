"""g2p_en's neural grapheme-to-phoneme model, run in numpy without importing ``g2p_en``.

``import g2p_en`` calls ``nltk.download`` (its CMU dictionary and POS tagger), which fails
or hangs offline. Only its weights are needed here: ``checkpoint20.npz`` ships in the
g2p_en wheel. This module finds that file without executing g2p_en's code
(``importlib.util.find_spec`` of a *top-level* package only locates it; the
``importlib.metadata`` record is the fallback) and re-implements ``G2p.predict``: a GRU
encoder over the letters, a GRU decoder fed its own previous phoneme, greedy argmax, at
most 20 phonemes, exactly as g2p_en 2.1 computes it.

Example:

>>> g2p = NeuralG2P()
>>> g2p.predict("activationist")[:3]
['AE2', 'K', 'T']
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import threading

import numpy as np

#: g2p_en's input alphabet (index = embedding row).
GRAPHEMES = ("<pad>", "<unk>", "</s>") + tuple("abcdefghijklmnopqrstuvwxyz")
#: g2p_en's output alphabet (index = logit), stress-marked ARPAbet plus specials.
PHONEMES = ("<pad>", "<unk>", "<s>", "</s>") + tuple(
    (
        "AA0 AA1 AA2 AE0 AE1 AE2 AH0 AH1 AH2 AO0 AO1 AO2 AW0 AW1 AW2 AY0 AY1 AY2 B CH D DH "
        "EH0 EH1 EH2 ER0 ER1 ER2 EY0 EY1 EY2 F G HH IH0 IH1 IH2 IY0 IY1 IY2 JH K L M N NG "
        "OW0 OW1 OW2 OY0 OY1 OY2 P R S SH T TH UH0 UH1 UH2 UW UW0 UW1 UW2 V W Y Z ZH"
    ).split()
)
_START, _END = 2, 3
_CHECKPOINT = "checkpoint20.npz"


def g2p_en_dir() -> str:
    """The installed g2p_en package folder, found without importing (executing) it."""
    spec = None
    try:
        spec = importlib.util.find_spec("g2p_en")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            if os.path.isfile(os.path.join(folder, _CHECKPOINT)):
                return str(folder)
    try:
        path = importlib.metadata.distribution("g2p_en").locate_file(f"g2p_en/{_CHECKPOINT}")
        if os.path.isfile(path):
            return os.path.dirname(os.fspath(path))
    except importlib.metadata.PackageNotFoundError:
        pass
    raise FileNotFoundError(
        "g2p_en is not installed (its checkpoint20.npz holds the neural G2P weights): "
        "pip install g2p_en"
    )


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class NeuralG2P:
    """Letters to ARPAbet phonemes (with stress digits) with g2p_en's GRU seq2seq model.

    Args:
        checkpoint: path of a g2p_en ``checkpoint20.npz``; default: the installed one.
        max_len: most phonemes generated per word (g2p_en uses 20).
    """

    def __init__(self, checkpoint: str | None = None, max_len: int = 20):
        self.checkpoint = checkpoint or os.path.join(g2p_en_dir(), _CHECKPOINT)
        self.max_len = int(max_len)
        self._g2idx = {g: i for i, g in enumerate(GRAPHEMES)}
        self._weights = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._weights is None:
                with np.load(self.checkpoint) as z:
                    w = {k: np.asarray(z[k], np.float32) for k in z.files}
                if w["enc_emb"].shape[0] != len(GRAPHEMES) or w["fc_b"].shape[0] != len(PHONEMES):
                    raise ValueError(
                        f"{self.checkpoint}: not a g2p_en checkpoint (unexpected shapes)"
                    )
                self._weights = w
        return self._weights

    @staticmethod
    def _cell(x, h, w_ih, w_hh, b_ih, b_hh):
        """PyTorch-layout GRU cell (gates r, z, n), as in g2p_en."""
        gi = x @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        k = gi.shape[-1] // 3
        r = _sigmoid(gi[:, :k] + gh[:, :k])
        z = _sigmoid(gi[:, k : 2 * k] + gh[:, k : 2 * k])
        n = np.tanh(gi[:, 2 * k :] + r * gh[:, 2 * k :])
        return (1.0 - z) * n + z * h

    def predict(self, word: str) -> list[str]:
        """Phonemes (stress-marked ARPAbet) of one lower-case word.

        Characters outside ``a-z`` map to ``<unk>`` as in g2p_en; the empty word gives
        what g2p_en gives for ``""``.
        """
        w = self._load()
        ids = [self._g2idx.get(c, 1) for c in word] + [self._g2idx["</s>"]]
        h = np.zeros((1, w["enc_w_hh"].shape[1]), np.float32)
        for i in ids:
            h = self._cell(
                w["enc_emb"][[i]], h, w["enc_w_ih"], w["enc_w_hh"], w["enc_b_ih"], w["enc_b_hh"]
            )
        prev, out = _START, []
        for _ in range(self.max_len):
            h = self._cell(
                w["dec_emb"][[prev]], h, w["dec_w_ih"], w["dec_w_hh"], w["dec_b_ih"], w["dec_b_hh"]
            )
            logits = h @ w["fc_w"].T + w["fc_b"]
            prev = int(logits.argmax())
            if prev == _END:
                break
            out.append(PHONEMES[prev])
        return out

    __call__ = predict
