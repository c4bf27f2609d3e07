"""Train/validation/test splits: the source's own where it has them, else seeded and stratified."""

from __future__ import annotations

import random
from collections import defaultdict

from rustlab.data.records import SPLITS, Example, Source

# A publisher's test split in which a class's share is under this fraction of its share of the
# whole source does not measure that class (metal-cls: rust is 47% of the photos but 2 of its 31
# test photos after de-duplication): it is carved again, seeded and stratified, from the pool.
MIN_TEST_SHARE_RATIO = 0.25


def assign_splits(source: Source, seed: int = 0, val_fraction: float = 0.15,
                  test_fraction: float = 0.15) -> dict[str, list[Example]]:
    """Split ``source`` into train/validation/test.

    - every example has a split from the source (hub splits, split folders, manifest): kept;
    - some splits are missing (e.g. only train and test): the missing ones are carved out of
      train, stratified by label;
    - examples with a ``group`` are split by group, so one scene never lands on both sides;
    - a given test split that leaves a class out (``MIN_TEST_SHARE_RATIO``) is carved again;
    - a corrected source (rustlab.data.corrections) is split on its publisher's labels, then
      corrected, so that a correction moves no other photo from one split to another.
    """
    from rustlab.data.corrections import correct

    examples = source.examples if source.publisher_examples is None else source.publisher_examples
    splits = _assign(examples, seed, val_fraction, test_fraction)
    return {name: correct(source, members) for name, members in splits.items()}


def _assign(examples: list[Example], seed: int, val_fraction: float, test_fraction: float) -> dict:
    given = {s: [e for e in examples if e.split == s] for s in SPLITS}
    unassigned = [e for e in examples if e.split not in SPLITS]
    if given["test"] and _too_small(given["test"], examples):
        unassigned += given["test"]
        given["test"] = []
    pool = given["train"] + unassigned
    fractions = {}
    if not given["test"]:
        fractions["test"] = test_fraction
    if not given["validation"]:
        fractions["validation"] = val_fraction
    if not fractions:
        given["train"] = pool
        return given
    carved = _stratified_group_split(pool, fractions, seed)
    # train is what remains of the pool; given validation/test splits are kept as they are
    return {s: carved.get(s, []) if s == "train" or s in fractions else given[s] for s in SPLITS}


def _too_small(test: list[Example], examples: list[Example]) -> bool:
    from collections import Counter

    in_test, overall = Counter(e.label for e in test), Counter(e.label for e in examples)
    return any(in_test[c] / len(test) < MIN_TEST_SHARE_RATIO * n / len(examples)
               for c, n in overall.items() if c is not None)


def _stratified_group_split(examples, fractions: dict[str, float], seed: int) -> dict[str, list[Example]]:
    """Whole groups go to one split; groups are stratified by their majority label."""
    from collections import Counter

    rng = random.Random(seed)
    groups = defaultdict(list)
    for ex in examples:  # an ungrouped example is its own group
        groups[ex.group if ex.group is not None else f"\0{ex.key}"].append(ex)
    by_label = defaultdict(list)
    for key in sorted(groups):
        label = Counter(e.label for e in groups[key]).most_common(1)[0][0]
        by_label[label].append(key)
    out = defaultdict(list)
    for label in sorted(by_label, key=str):
        keys = by_label[label]
        rng.shuffle(keys)
        n = sum(len(groups[k]) for k in keys)
        targets = {s: round(f * n) for s, f in fractions.items()}
        filled = {s: 0 for s in fractions}
        for key in keys:
            members = groups[key]
            for s in fractions:  # fill test, then validation; the rest is train
                if filled[s] < targets[s]:
                    out[s].extend(members)
                    filled[s] += len(members)
                    break
            else:
                out["train"].extend(members)
    return dict(out)


def split_counts(splits: dict[str, list[Example]], class_names: list[str]) -> str:
    """One printable line per split: `train 932 (no_rust 507, rust 425)`."""
    lines = []
    for s in SPLITS:
        exs = splits.get(s, [])
        counts = defaultdict(int)
        for e in exs:
            counts[e.label] += 1
        per_class = ", ".join(f"{class_names[k] if isinstance(k, int) and k < len(class_names) else k} {v}"
                              for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])))
        lines.append(f"{s:<10} {len(exs):>5} ({per_class})")
    return "\n".join(lines)
