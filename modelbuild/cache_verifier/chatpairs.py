"""Chat-style (cached prompt, new prompt) pairs made by rewriting real prompts from ../shared/data.

Every transformation is written here (no model, no data copied into the repo); each pair is
`ChatPair(a = the original, b = the rewrite, kind, same_answer, source, group)`:

    paraphrases (same_answer): typo, casing, shorthand, polite, reorder, question, synonym
    near-misses (different):   negation, swap (direction / arguments), number, unit, entity, scope, code
    unrelated (different):     another prompt of the same source

Sources (a whole source is held out, so no prompt is in both halves): `train` from mmlu-dev, nl2bash and
GPTeacher codegen; `test` from tldr, arena-hard and mmlu-pro. A third of the politeness wrappers and
synonym pairs appear only in `test`. The other rewrite rules are shared by both parts, so test numbers
say how the verifier does on unseen prompts under these rules, not under every rewording people use.
Rewrites that leave the text unchanged are dropped. Deterministic.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
TRAIN_SOURCES = ("mmlu", "nl2bash/nl", "gpteacher/codegen")
TEST_SOURCES = ("tldr/prompt", "arena-hard", "mmlupro")
PARAPHRASE_KINDS = ("typo", "casing", "shorthand", "polite", "reorder", "question", "synonym")
NEAR_MISS_KINDS = ("negation", "swap", "number", "unit", "entity", "scope", "code")


@dataclass(frozen=True, slots=True)
class ChatPair:
    a: str
    b: str
    kind: str
    same_answer: bool
    source: str
    part: str  # train | test


def _h(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def load_prompts(max_chars: int = 240) -> dict[str, list[str]]:
    """Source name -> short single-paragraph prompts (sorted, deduplicated)."""
    out: dict[str, set[str]] = {s: set() for s in TRAIN_SOURCES + TEST_SOURCES}
    with gzip.open(DATA / "mmlu-dev.jsonl.gz", "rt", encoding="utf-8") as f:
        out["mmlu"] = {json.loads(x)["text"] for x in f}
    with gzip.open(DATA / "mmlupro-dev.jsonl.gz", "rt", encoding="utf-8") as f:
        out["mmlupro"] = {r["text"] for r in map(json.loads, f) if not r.get("in_old_mmlu_dev")}
    with gzip.open(DATA / "jailbreak-dev.jsonl.gz", "rt", encoding="utf-8") as f:
        for r in map(json.loads, f):
            if r["label"] != "benign":
                continue
            src = "arena-hard" if r["origin"].startswith("arena-hard") else r["origin"]
            if src in out:
                out[src].add(r["text"])
    return {s: sorted(t.strip() for t in v if 12 <= len(t.strip()) <= max_chars and "\n\n" not in t.strip())
            for s, v in out.items()}


# ---------------------------------------------------------------- paraphrases

_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


def typo(t: str, rng: random.Random) -> str:
    words = t.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    for i in rng.sample(idx, min(len(idx), rng.choice((1, 2)))):
        w = words[i]
        j = rng.randrange(1, len(w) - 1)
        op = rng.randrange(4)
        if op == 0:
            w = w[:j] + w[j + 1] + w[j] + w[j + 2:]  # transpose
        elif op == 1:
            w = w[:j] + w[j + 1:]  # drop
        elif op == 2:
            w = w[:j] + w[j] + w[j:]  # double
        else:
            w = w[:j] + rng.choice(_KEYBOARD) + w[j + 1:]  # substitute
        words[i] = w
    return " ".join(words)


def casing(t: str, rng: random.Random) -> str:
    return rng.choice((t.lower(), t.upper(), t[:1].lower() + t[1:], t.title()))


_SHORT = [(r"\byou\b", "u"), (r"\bare\b", "r"), (r"\bplease\b", "pls"), (r"\bbecause\b", "bc"),
          (r"\bwhat is\b", "whats"), (r"\bhow do i\b", "how to"), (r"\bwith\b", "w/"), (r"\bwithout\b", "w/o"),
          (r"\bthanks\b", "thx"), (r"\bfor example\b", "e.g."), (r"\bsomething\b", "sth"), (r"\bpeople\b", "ppl")]


def shorthand(t: str, rng: random.Random) -> str:
    s = t
    for pat, rep in _SHORT:
        s = re.sub(pat, rep, s, flags=re.I)
    s = s.rstrip("?.! ")
    if s == t.rstrip("?.! "):
        s = s.lower()
    return s


_WRAP = ["Could you please help me with this: {}", "Hi! {} Thanks in advance.", "Quick question: {}",
         "I was wondering, {}", "Please answer the following. {}", "{} Thank you so much!",
         "Hey there, {}", "Can you help? {}", "{} I'd really appreciate your help.", "Hello, {} Thanks!"]


def polite(t: str, rng: random.Random, wraps: list[str] = _WRAP) -> str:
    return rng.choice(wraps).format(t)


_TAIL = re.compile(r"^(.*\w)\s+((?:in|using|with|on|for|under) (?:the )?[A-Za-z][\w.+#-]*"
                   r"(?: [A-Za-z][\w.+#-]*)?)([?.!]?)$")


def reorder(t: str, rng: random.Random) -> str:
    m = _TAIL.match(t)
    if m:
        head, tail, end = m.groups()
        return f"{tail[:1].upper()}{tail[1:]}, {head[:1].lower()}{head[1:]}{end}"
    sents = re.split(r"(?<=[.?!])\s+", t)
    if len(sents) >= 2:
        return " ".join(sents[1:] + sents[:1])
    return t


_IMPERATIVE = re.compile(r"^(Explain|Describe|List|Write|Show me|Tell me|Give me|Find|Print|Create|Compute|Calculate|"
                         r"Name|Summarize|Define|Convert|Display|Count|Delete|Remove|Search|Implement|"
                         r"Design)\b(.*?)[.!]?$",
                         re.I)
_WHAT_IS = re.compile(r"^What (is|are) (.+?)\?$", re.I)


def question(t: str, rng: random.Random) -> str:
    m = _IMPERATIVE.match(t)
    if m:
        verb, rest = m.groups()
        return rng.choice(("Can you {}{}?", "Could you {}{}?", "Would you {}{}?")).format(verb.lower(), rest)
    m = _WHAT_IS.match(t)
    if m:
        return rng.choice(("Tell me what {1} {0}.", "Explain what {1} {0}.", "I want to know what {1} {0}.")).format(
            m.group(1).lower(), m.group(2))
    if t.endswith("?"):
        return "I'd like to know: " + t[:-1] + "."
    return t


_SYN = [("big", "large"), ("quick", "fast"), ("show", "display"), ("make", "create"), ("delete", "remove"),
        ("begin", "start"), ("help", "assist"), ("buy", "purchase"), ("find", "locate"), ("explain", "describe"),
        ("answer", "reply"), ("choose", "select"), ("correct", "right"), ("mistake", "error"), ("car", "automobile"),
        ("movie", "film"), ("job", "occupation"), ("kids", "children"), ("enough", "sufficient"),
        ("main", "primary"), ("important", "significant"), ("use", "utilize"), ("shows", "displays"),
        ("get", "obtain"), ("method", "approach"), ("example", "instance"), ("files", "documents"),
        ("directory", "folder"), ("modify", "change"), ("print", "output"), ("ways", "methods")]
_SYNMAP = {a: b for a, b in _SYN} | {b: a for a, b in _SYN}


def synonym(t: str, rng: random.Random, synmap: dict[str, str] = _SYNMAP) -> str:
    words = t.split(" ")
    idx = [i for i, w in enumerate(words) if w.lower().strip("?.,!") in synmap]
    if not idx:
        return t
    for i in rng.sample(idx, min(2, len(idx))):
        w = words[i]
        core = w.strip("?.,!")
        rep = synmap[core.lower()]
        rep = rep.capitalize() if core[:1].isupper() else rep
        words[i] = w.replace(core, rep)
    return " ".join(words)


# ---------------------------------------------------------------- near-misses

_AUX = re.compile(r"\b(is|are|was|were|can|could|does|do|did|should|would|will|has|have|must)\b(?! not)", re.I)
_NEG = re.compile(r"\b(is|are|was|were|can|could|does|do|did|should|would|will|has|have|must)( not|n't)\b", re.I)


def negation(t: str, rng: random.Random) -> str:
    m = _NEG.search(t)
    if m:
        return t[:m.start()] + m.group(1) + t[m.end():]
    m = _AUX.search(t)
    if m:
        return t[:m.end()] + " not" + t[m.end():]
    m = re.match(r"^(Find|Print|Show|List|Delete|Remove|Display|Count|Copy|Search)\b", t)
    if m:
        return "Do not " + t[:1].lower() + t[1:]
    return t


_REL = re.compile(r"\b([\w.*+#-]+) (to|into|than|from|vs\.?|versus|over|before|after) ([\w.*+#-]+)\b")
_SKIP = {"the", "a", "an", "this", "that", "how", "what", "it", "i", "me", "you", "is", "are", "be", "want",
         "need", "way", "used", "going", "able", "is", "and", "or", "in", "of", "on"}


def swap(t: str, rng: random.Random) -> str:
    for m in _REL.finditer(t):
        x, rel, y = m.groups()
        if x.lower() in _SKIP or y.lower() in _SKIP or x.lower() == y.lower():
            continue
        return t[:m.start()] + f"{y} {rel} {x}" + t[m.end():]
    return t


def number(t: str, rng: random.Random) -> str:
    nums = list(re.finditer(r"\d+(?:\.\d+)?", t))
    if nums:
        m = rng.choice(nums)
        old = m.group()
        new = old
        while new == old:
            new = str(max(0, int(float(old)) + rng.choice((-3, -2, -1, 1, 2, 5, 10)))) if "." not in old else \
                f"{float(old) * rng.choice((0.5, 2, 1.5)):.{len(old.split('.')[1])}f}"
        return t[:m.start()] + new + t[m.end():]
    for w, n in (("two", "three"), ("three", "four"), ("first", "second"), ("one", "two"), ("five", "six")):
        if re.search(rf"\b{w}\b", t):
            return re.sub(rf"\b{w}\b", n, t, count=1)
    return t


_UNIT_SETS = [("kilometers", "miles"), ("km", "miles"), ("celsius", "fahrenheit"), ("kg", "pounds"),
              ("MB", "GB"), ("seconds", "minutes"), ("minutes", "hours"), ("days", "weeks"), ("meters", "feet"),
              ("liters", "gallons"), ("dollars", "euros"), ("bytes", "bits"), ("months", "years"), ("grams", "ounces")]
_UNITS = {a: b for a, b in _UNIT_SETS} | {b: a for a, b in _UNIT_SETS}


def unit(t: str, rng: random.Random) -> str:
    for w in re.findall(r"[A-Za-z]+", t):
        if w in _UNITS or w.lower() in _UNITS:
            rep = _UNITS.get(w) or _UNITS[w.lower()]
            return re.sub(rf"\b{w}\b", rep, t, count=1)
    return t


_ENTITY_SETS = [
    ("Python", "Java", "JavaScript", "Rust", "Go", "Ruby", "C++", "Haskell", "PHP", "Kotlin", "Swift", "Perl"),
    ("France", "Germany", "Japan", "Brazil", "India", "Canada", "Egypt", "Mexico", "Italy", "China", "Spain"),
    ("Paris", "London", "Tokyo", "Berlin", "Rome", "Madrid", "Cairo", "Sydney", "Moscow", "Toronto"),
    ("Linux", "Windows", "macOS", "Android", "iOS"), ("git", "svn", "mercurial"),
    ("Mars", "Venus", "Jupiter", "Saturn", "Mercury"), ("React", "Vue", "Angular", "Svelte"),
    ("English", "French", "German", "Spanish", "Italian", "Japanese", "Russian", "Chinese"),
    ("Monday", "Tuesday", "Friday", "Sunday"), ("January", "March", "July", "October"),
    ("dog", "cat", "horse", "rabbit"), ("apple", "banana", "orange", "grape"), ("SQL", "NoSQL"),
    ("TCP", "UDP"), ("bash", "zsh", "fish"), ("docker", "podman"), ("npm", "yarn", "pip"),
]
_ENT = {w: s for s in _ENTITY_SETS for w in s}


def entity(t: str, rng: random.Random) -> str:
    for m in re.finditer(r"[A-Za-z+]+", t):
        s = _ENT.get(m.group())
        if s:
            rep = rng.choice([x for x in s if x != m.group()])
            return t[:m.start()] + rep + t[m.end():]
    caps = [m for m in re.finditer(r"(?<=[a-z,] )[A-Z][a-z]{3,}\b", t)]
    if caps:
        m = rng.choice(caps)
        rep = rng.choice(("Smith", "Lisbon", "Oracle", "Napoleon", "Amazon", "Dublin", "Einstein"))
        return t[:m.start()] + rep + t[m.end():]
    return t


_SCOPE = [(r"\ball\b", "some"), (r"\bevery\b", "no"), (r"\bany\b", "no"), (r"\bfirst\b", "last"),
          (r"\brecursively\b", "non-recursively"), (r"\bonly\b", "also"), (r"\bmost\b", "least")]
_SCOPE_ADD = [" in Europe", " for children", " in the 18th century", " on Windows", " for a small business",
              " in the United States", " during pregnancy", " in a hash table"]


def scope(t: str, rng: random.Random) -> str:
    for pat, rep in _SCOPE:
        if re.search(pat, t):
            return re.sub(pat, rep, t, count=1)
    end = t[-1] if t[-1] in "?.!" else ""
    return t[:len(t) - len(end)] + rng.choice(_SCOPE_ADD) + end


_CODE = ["def f(x):\n    return x {op} {n}\nprint(f({m}))",
         "for i in range({n}):\n    if i {cmp} {m}:\n        print(i)",
         "x = [{n}, {m}, 3]\nprint(sorted(x){idx})", "const a = {n};\nconsole.log(a {op} {m});",
         "SELECT name FROM users WHERE age {cmp} {n};", "s = 'abc'\nprint(s[{m}:{n}])"]
_ASK = ["What does this code print?\n```\n{}\n```", "Explain this snippet:\n```\n{}\n```",
        "Is there a bug here?\n```\n{}\n```", "What is the output of `{}`?"]


def code_pair(rng: random.Random) -> tuple[str, str, bool]:
    """(a, b, same_answer): one code question and either a one-token edit of the code (different) or the same
    code with a reworded question around it (same)."""
    tpl = rng.choice(_CODE)
    v = {"op": rng.choice("+-*"), "n": rng.randint(1, 9), "m": rng.randint(1, 9), "cmp": rng.choice(("<", ">", "==")),
         "idx": rng.choice(("", "[0]", "[-1]"))}
    code = tpl.format(**v)
    ask = rng.choice(_ASK)
    if "`{}`" in ask:
        code = code.split("\n")[0]
    a = ask.format(code)
    if rng.random() < 0.5:
        return a, rng.choice(("Hi! ", "Quick question: ", "Please help. ")) + a, True
    w = dict(v)
    key = rng.choice([k for k in v if "{" + k + "}" in tpl])
    while w[key] == v[key]:
        w[key] = {"op": rng.choice("+-*"), "n": rng.randint(1, 9), "m": rng.randint(1, 9),
                  "cmp": rng.choice(("<", ">", "==")), "idx": rng.choice(("", "[0]", "[-1]"))}[key]
    code2 = tpl.format(**w)
    if "`{}`" in ask:
        code2 = code2.split("\n")[0]
    return a, ask.format(code2), code2 == code


REWRITES: dict[str, Callable[[str, random.Random], str]] = {
    "typo": typo, "casing": casing, "shorthand": shorthand, "polite": polite, "reorder": reorder,
    "question": question, "synonym": synonym, "negation": negation, "swap": swap, "number": number,
    "unit": unit, "entity": entity, "scope": scope,
}


def rewrites(part: str) -> dict[str, Callable[[str, random.Random], str]]:
    """REWRITES, with the politeness wrappers and the synonym pairs split between the parts (the test part
    gets wrappers and synonyms never seen in training)."""
    test = part == "test"
    wraps = [w for i, w in enumerate(_WRAP) if (i % 3 == 2) == test]
    syn = dict(_SYN[i] for i in range(len(_SYN)) if (i % 3 == 2) == test)
    synmap = syn | {b: a for a, b in syn.items()}
    return REWRITES | {"polite": lambda t, r: polite(t, r, wraps), "synonym": lambda t, r: synonym(t, r, synmap)}


def build(per_source: int = 500, seed: int = 0) -> list[ChatPair]:
    """Up to `per_source` original prompts per source, each rewritten by every kind that changes it; plus one
    unrelated pair per prompt and code pairs (by source part). Train/test: TRAIN_SOURCES vs TEST_SOURCES."""
    prompts = load_prompts()
    out: list[ChatPair] = []
    for src, texts in prompts.items():
        part = "train" if src in TRAIN_SOURCES else "test"
        chosen = sorted(texts, key=_h)[:per_source]
        fns = rewrites(part)
        for i, a in enumerate(chosen):
            rng = random.Random(_h(a) ^ seed)
            for kind, fn in fns.items():
                b = fn(a, rng)
                if b.strip() and b != a:
                    out.append(ChatPair(a, b, kind, kind in PARAPHRASE_KINDS, src, part))
            other = chosen[(i + 1 + _h(a) % (len(chosen) - 1)) % len(chosen)]
            if other != a:
                out.append(ChatPair(a, other, "unrelated", False, src, part))
        rng = random.Random(_h(src) ^ seed)
        for _ in range(per_source // 5):
            a, b, same = code_pair(rng)
            if a != b:
                out.append(ChatPair(a, b, "code" if not same else "code_reworded", same, src, part))
    return out


if __name__ == "__main__":
    from collections import Counter

    pairs = build()
    print(Counter((p.part, p.kind) for p in pairs))
    rng = random.Random(1)
    for p in rng.sample(pairs, 25):
        print(f"{p.kind:>10} {p.same_answer!s:>5} | {p.a[:70]!r} -> {p.b[:70]!r}")
