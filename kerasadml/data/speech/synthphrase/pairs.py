"""SynthPhrase's pairs, LibriPhrase's rules (docs/data.md §1.2; see the package
docstring, "Pairs"): positives, easy and hard negatives per anchor clip.
"""

from __future__ import annotations

from kerasadml.data.speech.synthphrase.config import SAMPLE_RATE, SynthPhraseConfig
from kerasadml.data.speech.synthphrase.vocabulary import hard_negatives


def _make_pairs(clips: list[dict], cfg: SynthPhraseConfig, rng) -> tuple[list[dict], dict, dict]:
    by_text: dict[str, list[int]] = {}
    for i, clip in enumerate(clips):
        by_text.setdefault(clip["text"], []).append(i)
    texts = sorted(by_text)
    hard = hard_negatives(texts, cfg.hard_negatives)
    by_count: dict[int, list[str]] = {}
    for text in texts:
        by_count.setdefault(len(text.split()), []).append(text)
    counts = {"positive": 0, "easyneg": 0, "hardneg": 0, "anchors_short_of_hard_negatives": 0}
    distance = {(text, other): d for text, near in hard.items() for other, d in near}

    def other_speaker_clip(text: str, speaker: str) -> dict | None:
        options = [clips[j] for j in by_text[text] if clips[j]["speaker"] != speaker]
        return options[int(rng.integers(len(options)))] if options else None

    def row(anchor: dict, other: dict, kind: str) -> dict:
        return {
            "anchor": anchor["relpath"],
            "anchor_spk": anchor["speaker"],
            "anchor_text": anchor["text"],
            "anchor_dur": round(anchor["samples"] / SAMPLE_RATE, 4),
            "comparison": other["relpath"],
            "comparison_spk": other["speaker"],
            "comparison_text": other["text"],
            "comparison_dur": round(other["samples"] / SAMPLE_RATE, 4),
            "type": f"diffspk_{kind}",
            "target": 1 if kind == "positive" else 0,
            "class": len(anchor["text"].split()),
        }

    rows: list[dict] = []
    for anchor in clips:
        text, speaker = anchor["text"], anchor["speaker"]
        positives = [clips[j] for j in by_text[text] if clips[j]["speaker"] != speaker]
        take = min(cfg.positives_per_anchor, len(positives))
        for j in sorted(rng.choice(len(positives), size=take, replace=False).tolist()):
            rows.append(row(anchor, positives[j], "positive"))
        hard_texts = [t for t, _ in hard.get(text, [])]
        if len(hard_texts) < cfg.hard_negatives:
            counts["anchors_short_of_hard_negatives"] += 1
        excluded = set(hard_texts) | {text}
        same = [t for t in by_count[len(text.split())] if t not in excluded]
        easy = rng.choice(len(same), size=min(cfg.easy_negatives, len(same)), replace=False).tolist()
        easy_texts = [same[i] for i in easy]
        if len(easy_texts) < cfg.easy_negatives:  # too few same-length texts: use any length
            rest = [t for t in texts if t not in excluded and t not in easy_texts]
            more = rng.choice(len(rest), size=min(cfg.easy_negatives - len(easy_texts), len(rest)), replace=False)
            easy_texts += [rest[i] for i in more.tolist()]
        for kind, chosen in (("easyneg", easy_texts), ("hardneg", hard_texts)):
            for other_text in chosen:
                other = other_speaker_clip(other_text, speaker)
                if other is not None:
                    rows.append(row(anchor, other, kind))
    distances: dict[int, int] = {}
    for r in rows:
        counts[r["type"].split("_", 1)[1]] += 1
        if r["type"] == "diffspk_hardneg":
            d = distance[(r["anchor_text"], r["comparison_text"])]
            distances[d] = distances.get(d, 0) + 1
    rows.sort(key=lambda r: (r["anchor_spk"], r["anchor_text"], r["target"], r["type"], r["comparison_spk"]))
    return rows, counts, distances

