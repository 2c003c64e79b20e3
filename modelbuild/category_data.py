"""The category head's data mix and its held-out parts, split by source (shared by training and benchmarks).

Sources (all under ../shared/data except the team's own natural requests):
- `mmlu`: MMLU stems (mmlu-dev), 80% train / 20% held out by a hash of the text (as before).
- `pro`: MMLU-Pro questions that are NOT from MMLU (mmlupro-dev rows whose `src` is not `ori_mmlu-*` and not
  in mmlu-dev). Held out by source: every `src` of the theoremQA and scibench origins (two whole origins never
  trained on) and the stemez `src` values whose hash falls in `PRO_HELD_OUT_PERCENT` (stemez-Business,
  -Economics, -Psychology, -Genetics, -Optics, and four engineering ones): whole subjects from an unseen source.
- `chat`: public chat prompts labelled `benign` in jailbreak-dev, only the origins whose category is clear
  from the origin itself: shell one-liners (nl2bash), tldr "how do I" questions, code-writing requests
  (GPTeacher codegen), all `computer science`. tldr is held out whole. Role-play, tool-use and arena-hard
  prompts span many categories and have no labels: they are measured only (what the head does with them).
- `natural`: modelbuild/data/natural_requests.jsonl (train) and .eval.jsonl (held out), hand-written.
Fine classes for the head: MMLU subject, `pro:<src>`, `chat:<origin>`, `natural:<category>`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from modelbuild.heads import DATA, held_out, read_jsonl

LABELS: tuple[str, ...] = (
    "math", "physics", "chemistry", "biology", "health", "computer science", "engineering",
    "economics", "business", "law", "history", "philosophy", "psychology", "other",
)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PRO_HELD_OUT_ORIGINS = ("theoremQA", "scibench")
PRO_HELD_OUT_PERCENT = 35
CHAT_CATEGORY = {"nl2bash/nl": "computer science", "gpteacher/codegen": "computer science",
                 "tldr/prompt": "computer science"}
CHAT_HELD_OUT = ("tldr/prompt",)
CHAT_UNLABELLED = ("gpteacher/roleplay", "gpteacher/toolformer", "arena-hard/v0.1", "arena-hard/v2.0")


def pro_is_held_out(src: str) -> bool:
    """Whole MMLU-Pro sources held out: the theoremQA/scibench origins and a fixed hash share of stemez."""
    if src.split("-", 1)[0] in PRO_HELD_OUT_ORIGINS:
        return True
    return int(hashlib.sha1(("src:" + src).encode()).hexdigest(), 16) % 100 < PRO_HELD_OUT_PERCENT


@dataclass(frozen=True)
class Mix:
    """Rows are dicts with `text`, `category`, `source` (mmlu | pro:<src> | chat:<origin> | natural) and
    `fine` (the fine class name)."""

    train: list[dict]
    held_out: dict[str, list[dict]]  # mmlu, pro, chat, natural (labelled)
    unlabelled: list[dict]  # chat prompts measured only (`source` chat:<origin>, category None)


def _row(text: str, category: str | None, source: str, fine: str) -> dict:
    return {"text": text, "category": category, "source": source, "fine": fine}


def load_mix(mmlu_path: Path = SHARED / "mmlu-dev.jsonl.gz", shared: Path = SHARED,
             with_pro: bool = True, with_chat: bool = True) -> Mix:
    """The training rows and the held-out parts (see the module doc). Missing shared files are skipped."""
    train: list[dict] = []
    test: dict[str, list[dict]] = {"mmlu": [], "pro": [], "chat": [], "natural": []}
    unlabelled: list[dict] = []
    mmlu = read_jsonl(mmlu_path)
    mmlu_keys = {r["text"] for r in mmlu}
    for r in mmlu:
        row = _row(r["text"], r["category"], "mmlu", r["subject"])
        (test["mmlu"] if held_out(r["text"], 20) else train).append(row)
    for r in read_jsonl(DATA / "natural_requests.jsonl"):
        train.append(_row(r["text"], r["category"], "natural", "natural:" + r["category"]))
    test["natural"] = [_row(r["text"], r["category"], "natural", "natural:" + r["category"])
                       for r in read_jsonl(DATA / "natural_requests.eval.jsonl")]
    pro_path = shared / "mmlupro-dev.jsonl.gz"
    if with_pro and pro_path.is_file():
        for r in read_jsonl(pro_path):
            if r["in_old_mmlu_dev"] or r["src"].startswith("ori_mmlu") or r["text"] in mmlu_keys:
                continue
            row = _row(r["text"], r["category"], "pro:" + r["src"], "pro:" + r["src"])
            (test["pro"] if pro_is_held_out(r["src"]) else train).append(row)
    jb_path = shared / "jailbreak-dev.jsonl.gz"
    if with_chat and jb_path.is_file():
        for r in read_jsonl(jb_path):
            if r["label"] != "benign":
                continue
            o = r["origin"]
            if o in CHAT_CATEGORY:
                row = _row(r["text"], CHAT_CATEGORY[o], "chat:" + o, "chat:" + o)
                (test["chat"] if o in CHAT_HELD_OUT else train).append(row)
            elif o in CHAT_UNLABELLED:
                unlabelled.append(_row(r["text"], None, "chat:" + o, ""))
    train_texts = {r["text"] for r in train}
    for name, rows in test.items():  # a text in both halves (a duplicate across sources) is not held out
        test[name] = [r for r in rows if r["text"] not in train_texts]
    return Mix(train=train, held_out=test, unlabelled=unlabelled)


def dup_group(text: str) -> str:
    """Near-duplicate group of a text: lower case, every digit run as `0`, punctuation and spacing dropped, so
    a question and its variant with other numbers (or other whitespace) share a group."""
    t = re.sub(r"\d+", "0", text.lower())
    return " ".join(re.findall(r"[^\W_]+", t))


def within_source_split(rows: list[dict], percent: int = 20) -> tuple[list[dict], list[dict]]:
    """(train, test): `percent`% of the near-duplicate groups (`dup_group`) held out, in every source at once;
    the within-source check of the independent judges (same sources, unseen groups)."""
    test = [r for r in rows if held_out("group:" + dup_group(r["text"]), percent)]
    ids = {id(r) for r in test}
    return [r for r in rows if id(r) not in ids], test
