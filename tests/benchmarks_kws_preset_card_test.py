"""benchmarks/kws_preset_card.py: the helpers that pick the held-out voices and the
training rows (the full run is a benchmark: minutes on a trained preset)."""

import csv

from benchmarks import kws_preset_card


def _write(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["anchor", "anchor_spk", "comparison", "comparison_spk"])
        writer.writeheader()
        writer.writerows(rows)


def test_test_variants_come_from_the_speaker_ids(tmp_path):
    path = tmp_path / "synthphrase_test.csv"
    _write(path, [
        {"anchor": "a.wav", "anchor_spk": "en-us_m3", "comparison": "b.wav", "comparison_spk": "en_default"},
        {"anchor": "c.wav", "anchor_spk": "en-gb-x-rp_klatt4", "comparison": "d.wav", "comparison_spk": "en-us_m3"},
        {"anchor": "e.wav", "anchor_spk": "1089", "comparison": "f.wav", "comparison_spk": ""},
    ])
    assert kws_preset_card.test_variants(path) == ["", "klatt4", "m3"]


def test_first_rows_keeps_the_header_and_n_rows(tmp_path):
    path = tmp_path / "synthphrase_train.csv"
    _write(path, [{"anchor": f"{i}.wav", "anchor_spk": "s", "comparison": "x.wav", "comparison_spk": "t"}
                  for i in range(10)])
    (tmp_path / "out").mkdir()
    out = kws_preset_card.first_rows(path, 3, tmp_path / "out")
    rows = list(csv.DictReader(open(out)))
    assert [r["anchor"] for r in rows] == ["0.wav", "1.wav", "2.wav"]
