"""The category head's within-source split: near-duplicate groups never straddle the two halves."""

from __future__ import annotations

from modelbuild.category_data import dup_group, within_source_split


def test_numeric_and_spacing_variants_share_a_group() -> None:
    a = "A train leaves at 3 pm and travels 120 km at 60 km/h. When does it arrive?"
    b = "A train leaves at 5 pm and travels 90 km at 45 km/h.  When does it arrive ?"
    c = "A ship leaves at 3 pm and travels 120 km at 60 km/h. When does it arrive?"
    assert dup_group(a) == dup_group(b)
    assert dup_group(a) != dup_group(c)


def test_split_is_deterministic_disjoint_and_keeps_groups_whole() -> None:
    rows = []
    for i in range(400):
        rows.append({"text": f"Question {i} about topic {i * 7 % 13} asks for the value of item {i}.",
                     "category": "math", "source": "pro:x", "fine": "pro:x"})
        rows.append({"text": f"A variant: question {i + 1000} about topic {i * 7 % 13}.", "category": "math",
                     "source": "pro:y", "fine": "pro:y"})
    train, test = within_source_split(rows)
    train2, test2 = within_source_split(list(rows))
    assert [r["text"] for r in test] == [r["text"] for r in test2] and len(train) == len(train2)
    assert len(train) + len(test) == len(rows) and {id(r) for r in train}.isdisjoint({id(r) for r in test})
    # all "Question N ..." rows differ only in numbers: one group, so all land on the same side
    side = {("q" if r["text"].startswith("Question") else "v", r in test) for r in rows}
    assert len([s for s in side if s[0] == "q"]) == 1 and len([s for s in side if s[0] == "v"]) == 1
    distinct = [{"text": f"Topic word{'x' * (i % 50)} y{'z' * (i // 50)}", "category": "math", "source": "s",
                 "fine": "s"} for i in range(1000)]
    _, t = within_source_split(distinct)
    assert 120 <= len(t) <= 280  # ~20% of 1,000 distinct groups
