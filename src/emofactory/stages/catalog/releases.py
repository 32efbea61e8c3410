"""Release selection as pure functions: class balancing and leakage-free splits by source group
(seed 003 §3.3 and App. D: whole movies / franchises / series go to one split, 70/10/20)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SPLITS = ("train", "validation", "test")
NEUTRAL = "neutral"


@dataclass(frozen=True)
class Candidate:
    clip_id: str
    label: str
    confidence: float
    group: str
    duration_s: float = 0.0


def _tiebreak(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def balance(clips: Sequence[Candidate], neutral_ratio: float, max_per_class: int = 0, seed: int = 0) -> list[Candidate]:
    """The most confident clips of each class up to max_per_class (0: all), then neutral capped at
    round(neutral_ratio x non-neutral) (0: no cap). Ties fall by a seeded hash, so the result is
    the same for the same seed."""
    by_class: dict[str, list[Candidate]] = defaultdict(list)
    for clip in clips:
        by_class[clip.label].append(clip)
    for members in by_class.values():
        members.sort(key=lambda c: (-c.confidence, _tiebreak(seed, c.clip_id)))
        if max_per_class:
            del members[max_per_class:]
    if neutral_ratio > 0 and NEUTRAL in by_class:
        others = sum(len(m) for label, m in by_class.items() if label != NEUTRAL)
        del by_class[NEUTRAL][round(neutral_ratio * others) :]
    chosen = [c for members in by_class.values() for c in members]
    return sorted(chosen, key=lambda c: c.clip_id)


def assign_splits(group_sizes: Mapping[str, int], ratios: Sequence[float], seed: int = 0) -> dict[str, str]:
    """Group -> split. Groups go largest first (ties by a seeded hash) to the split furthest below
    its share, so no group spans two splits and each split ends within one group of its share."""
    if len(ratios) != len(SPLITS) or abs(sum(ratios) - 1) > 1e-6 or min(ratios) < 0:
        raise ValueError(f"split ratios must be three non-negative numbers summing to 1, not {list(ratios)}")
    filled = dict.fromkeys(SPLITS, 0)
    total = sum(group_sizes.values())
    assignment = {}
    for group in sorted(group_sizes, key=lambda g: (-group_sizes[g], _tiebreak(seed, g))):
        split = max(
            (s for s, r in zip(SPLITS, ratios) if r > 0),
            key=lambda s: ratios[SPLITS.index(s)] * total - filled[s],
        )
        assignment[group] = split
        filled[split] += group_sizes[group]
    return assignment


def split_release(clips: Sequence[Candidate], ratios: Sequence[float], seed: int = 0) -> dict[str, list[Candidate]]:
    sizes: dict[str, int] = defaultdict(int)
    for clip in clips:
        sizes[clip.group] += 1
    groups = assign_splits(sizes, ratios, seed)
    out: dict[str, list[Candidate]] = {s: [] for s in SPLITS}
    for clip in clips:
        out[groups[clip.group]].append(clip)
    return out
