"""Train the safety head (jailbreak, injection, harmful); write modelbuild/artifacts/jailbreak_head.*

    python -m modelbuild.train_jailbreak [--models models] [--no-write]

The head scores every view of a prompt (its sentence embedding, overlapping token windows, the
overflow rows of long prompts, and -- when `--segments` > 0, the default -- its sentences and adjacent
sentence pairs each encoded alone: semrouter/signals/onnx/safety.py, segments.py) and the router keeps the
maximum per label. It is trained as a multiple-instance model: a prompt's logit per label is the max over its views,
so a benign prompt pushes ALL its views down and an attack needs only one view to fire.

Data (targets per label; `-` = not trained on that label):
- ../shared/data/jailbreak-dev.jsonl.gz: jailbreak -> jailbreak; injection -> injection; harmful ->
  harmful (jailbreak 0, injection 0); benign and benign_lookalike -> all 0; harmful is `-` for jailbreak
  and injection rows (they usually carry a harmful goal).
- team-written: modelbuild/data/jailbreak.jsonl (1 = jailbreak), injection.jsonl, natural_requests.jsonl,
  an MMLU sample (benign).
- out-of-distribution negatives: sentences in 7 non-English languages (paraphrase-dev, sts), and
  random gibberish generated here (seeded).
- generated hard cases (modelbuild/safety_cases.py, train template families; `--no-generated` leaves them
  out): injections inside pasted documents with clean and human-addressed twins, short direct jailbreaks,
  benign look-alikes. Its eval template families are eval-only. modelbuild/safety_cases_direct.py adds (unless
  `--no-direct`) override and system-prompt extraction attacks, harmful requests + junk suffixes and persuasive
  framings with their look-alikes; its eval pieces are eval-only too. `--twins` also trains every pasted-document
  injection's clean twin (modelbuild/safety_twins.py; measured, not shipped: benchmarks/RESULTS.md, safety8).

Held-out evaluation (the numbers in metrics.json and benchmarks/RESULTS.md): every dev origin is put in
one of 5 folds by a hash of its family (BIPIA clean and attacked contexts of one domain together, each
XSTest safe type with its contrast type), fixed before any result was seen; each fold is scored by a head
trained on the other four, so every dev row is scored by a head that never saw its origin. Eval-only
sets, never trained on: jailbreak.eval.jsonl, injection.eval.jsonl, natural_requests.eval.jsonl, sts sentences in ja/ru/zh,
Japanese MMLU questions, gibberish from another seed, safety_cases.py's eval template families. Thresholds: per label the lowest value whose
held-out benign false-positive rate is <= --fpr (so the thresholds, one number each, are tuned on the
pooled held-out benign scores; recall on attacks is not). The shipped head is trained on everything.
`--split group` instead holds out near-duplicate groups WITHIN every origin (`near_duplicate_fold`): the
kind of split the independent checks use (same sources, unseen rows); those numbers are labelled as such.
The shipped thresholds come from both: `--joint-with build/safety-cache/oof-fused-group<tag>.npz` (written by a
`--split group --cv-only --tag=<tag>` run) picks the jailbreak and injection thresholds separately so that benign
stays <= --fpr and look-alikes <= --lookalike-fpr on BOTH splits, with the best mean within-origin recall
(`pick_joint`); both splits' tables are printed at those thresholds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import string
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from modelbuild.heads import ARTIFACTS, DATA, ROOT, held_out, read_jsonl
from modelbuild.safety_cases import cases
from modelbuild.safety_cases_direct import direct_attack_cases
from modelbuild.safety_lexical import LEXICAL_LABELS, MAX_CHUNKS, SEGMENTS, WINDOWS, LexicalBranch, view_ids
from modelbuild.safety_twins import twin_rows

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LABELS = ("jailbreak", "injection", "harmful")
POSITIONAL = True  # the head also reads each view's position features (safety.position_features)
FOLDS = 5
CACHE = ROOT / "build" / "safety-cache"
TRAIN_LANGS = ("de", "es", "fr", "it", "nl", "pl", "pt")
EVAL_LANGS = ("ja", "ru", "zh")


# ---------------------------------------------------------------- data


def gibberish(n: int, seed: int) -> list[str]:
    """Random letter/digit strings, 1-6 'words' (a few random letters and a number, keyboard mashing)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = []
        for _ in range(rng.randint(1, 6)):
            pool = rng.choice((string.ascii_lowercase, string.ascii_letters + string.digits, string.digits,
                               "asdfghjkl", "qwertyuiop"))
            words.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 12))))
        out.append(" ".join(words))
    return out


def family(origin: str) -> str:
    """Origins that must be held out together: BIPIA domain (clean + attacked), XSTest type + its contrast."""
    parts = origin.split("/")
    if parts[0] == "bipia":
        return "/".join(parts[:2])
    if parts[0] == "xstest":
        return "xstest/" + parts[1].removeprefix("contrast_")
    if origin.startswith("jbb/DSN"):
        return "jbb/DSN"
    return origin


def fold_of(origin: str) -> int:
    return hashlib.sha256(family(origin).encode()).digest()[0] % FOLDS


def near_duplicate_fold(text: str) -> int:
    """Fold of a row by its near-duplicate group (within-origin split): lower-cased letters of its first 80
    letters, so rows that differ only in digits, punctuation, spacing or their tail share a fold."""
    key = "".join(ch for ch in text.lower() if ch.isalpha())[:80]
    return hashlib.sha256(key.encode()).digest()[0] % FOLDS


def targets(label: str) -> tuple[list[float], list[float]]:
    """(y, mask) over LABELS for a dev label."""
    y = [float(label == x) for x in LABELS]
    m = [1.0, 1.0, 0.0 if label in ("jailbreak", "injection") else 1.0]
    return y, m


def label_arrays(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, mask, weight) for training rows: `targets` of each row's label ([N, 3] float32 each) and a weight per row
    of 1/sqrt(rows of its origin), scaled to mean 1 ([N] float32), so a large origin does not dominate."""
    ym = [targets(r["label"]) for r in rows]
    y = np.array([a for a, _ in ym], np.float32)
    m = np.array([b for _, b in ym], np.float32)
    size: dict[str, int] = defaultdict(int)
    for r in rows:
        size[r["origin"]] += 1
    w = np.array([1.0 / np.sqrt(size[r["origin"]]) for r in rows], np.float32)
    w *= len(w) / w.sum()
    return y, m, w


def load(mmlu_sample: int, generated: bool = True, direct: bool = True,
         twins: bool = False) -> tuple[list[dict], list[dict]]:
    """(train-or-fold rows, eval-only rows); each row: text, label, origin, fold (-1: always trained on).
    `direct`: modelbuild/safety_cases_direct.py's kinds too (with `generated`); `twins`: the clean twin of every
    pasted-document injection (modelbuild/safety_twins.py), in its attacked row's fold, marked `aux` (trained
    with that row, never reported) and `src` (the attacked row's index)."""
    rows = [{**r, "fold": fold_of(r["origin"])} for r in read_jsonl(SHARED / "jailbreak-dev.jsonl.gz")]
    own = [{"text": r["text"], "label": "jailbreak" if int(r["label"]) else "benign", "origin": "team/jailbreak",
            "fold": -1} for r in read_jsonl(DATA / "jailbreak.jsonl")]
    own += [{"text": r["text"], "label": r["label"], "origin": "team/injection", "fold": -1}
            for r in read_jsonl(DATA / "injection.jsonl")]
    own += [{"text": r["text"], "label": "benign", "origin": "team/natural", "fold": -1}
            for r in read_jsonl(DATA / "natural_requests.jsonl")]
    stems = [r["text"] for r in read_jsonl(SHARED / "mmlu-dev.jsonl.gz") if not held_out(r["text"], 20)]
    own += [{"text": t, "label": "benign", "origin": "mmlu", "fold": -1}
            for t in random.Random(0).sample(stems, min(mmlu_sample, len(stems)))]
    sts = [r for r in read_jsonl(SHARED / "paraphrase-dev.jsonl.gz") if r.get("kind") == "sts"]
    by_lang: dict[str, list[str]] = defaultdict(list)
    for r in sts:
        by_lang[r.get("lang", "")].append(r["a"])
    for lang in TRAIN_LANGS:
        pick = random.Random(lang).sample(sorted(set(by_lang[lang])), 80)
        own += [{"text": t, "label": "benign", "origin": f"sts/{lang}", "fold": -1} for t in pick]
    own += [{"text": t, "label": "benign", "origin": "gibberish", "fold": -1} for t in gibberish(300, 0)]
    if generated:
        own += [{**r, "fold": -1} for r in cases("train")]  # modelbuild/safety_cases.py, train families
        if direct:
            own += [{**r, "fold": -1} for r in direct_attack_cases("train")]

    ev = [{"text": r["text"], "label": "jailbreak" if int(r["label"]) else "benign", "origin": "team-eval/jailbreak"}
          for r in read_jsonl(DATA / "jailbreak.eval.jsonl")]
    ev += [{"text": r["text"], "label": "benign", "origin": "team-eval/natural"}
           for r in read_jsonl(DATA / "natural_requests.eval.jsonl")]
    for lang in EVAL_LANGS:
        pick = random.Random(lang).sample(sorted(set(by_lang[lang])), 150)
        ev += [{"text": t, "label": "benign", "origin": f"eval/sts-{lang}"} for t in pick]
    jm = [r["text"] for r in read_jsonl(SHARED / "multilingual-dev.jsonl.gz")]
    ev += [{"text": t, "label": "benign", "origin": "eval/jmmlu"} for t in random.Random(1).sample(jm, 200)]
    ev += [{"text": t, "label": "benign", "origin": "eval/gibberish"} for t in gibberish(200, 1)]
    ev += [{"text": t, "label": "benign", "origin": "eval/short"} for t in
           ("hi", "ok", "yes", "no", "thanks", "what?", "help", "test", "hello there", "go on", "why", "sure",
            "lol", "k", "continue", "stop", "again", "more", "?", "!!")]
    ev += [{"text": r["text"], "label": r["label"], "origin": "team-eval/injection"}
           for r in read_jsonl(DATA / "injection.eval.jsonl")]
    ev += cases("eval")  # other template families than the trained ones
    if direct:
        ev += direct_attack_cases("eval")
    if twins:  # last, so the cached views of the rows before them stay valid (views() caches in blocks)
        own += [{**t, "fold": rows[t["src"]]["fold"], "aux": True} for t in twin_rows(rows)]
    return rows + own, ev


# ---------------------------------------------------------------- features


def views(texts: list[str], model_dir: Path, max_chunks: int = MAX_CHUNKS) -> list[np.ndarray]:
    """Every text's views float16 [W_i,384] through the runtime's own SafetyViews (cached on disk);
    `max_chunks` 0 for segments (scored as prompts of their own, without overflow rows)."""
    import onnxruntime as ort

    from semrouter.signals.onnx.safety import SafetyViews, WindowSpec
    from semrouter.signals.onnx.tokenize import TextTokenizer

    if len(texts) > 1024:  # cached in blocks, so rows appended to a list re-encode only the new blocks
        return [b for i in range(0, len(texts), 1024) for b in views(texts[i : i + 1024], model_dir, max_chunks)]
    enc = model_dir / "encoder.int8.onnx"
    h = hashlib.sha256(hashlib.sha256(enc.read_bytes()).digest())
    h.update(json.dumps([WINDOWS, max_chunks]).encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    CACHE.mkdir(parents=True, exist_ok=True)
    cpath = CACHE / f"{h.hexdigest()[:24]}.npz"
    if cpath.is_file():
        z = np.load(cpath)
        return np.split(z["rows"], z["offsets"][1:-1])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(enc), so, providers=["CPUExecutionProvider"])
    tok = TextTokenizer(model_dir / "tokenizer.json", 256)

    def encode(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return sess.run(["token_embeddings"], {"input_ids": ids, "attention_mask": mask})[0]

    sv = SafetyViews(tok, encode, [WindowSpec(s, t) for s, t in WINDOWS], max_chunks)
    out: list[np.ndarray | None] = [None] * len(texts)
    order = np.argsort([len(t) for t in texts])
    for i in range(0, len(texts), 8):
        idx = order[i : i + 8]
        batch = [texts[j] for j in idx]
        tb = tok.encode(batch)
        rows, *_ = sv.rows(batch, encode(tb.input_ids, tb.attention_mask), tb.lengths, tb.truncated)
        for j, r in zip(idx, rows, strict=True):
            out[j] = r.astype(np.float16)
    done = [o for o in out if o is not None]
    offsets = np.cumsum([0] + [len(o) for o in done])
    np.savez(cpath, rows=np.concatenate(done), offsets=offsets)
    return done


def positions(texts: list[str], model_dir: Path, max_chunks: int = MAX_CHUNKS) -> list[np.ndarray]:
    """Every text's views' position features [W_i,4] (tokenizer only; same order as `views`)."""
    from semrouter.signals.onnx.safety import SafetyViews, WindowSpec
    from semrouter.signals.onnx.tokenize import TextTokenizer

    tok = TextTokenizer(model_dir / "tokenizer.json", 256)
    sv = SafetyViews(tok, None, [WindowSpec(s, t) for s, t in WINDOWS], max_chunks)
    tb = tok.encode(texts)
    totals = [len(x) for x in tok.content_ids(texts)]
    return sv.positions(tb.lengths, totals)


def with_positions(bags: list[np.ndarray], texts: list[str], model_dir: Path,
                   max_chunks: int = MAX_CHUNKS) -> list[np.ndarray]:
    pos = positions(texts, model_dir, max_chunks)
    assert all(len(b) == len(p) for b, p in zip(bags, pos, strict=True)), "views and positions disagree"
    return [np.concatenate([b.astype(np.float32), p], axis=1) for b, p in zip(bags, pos, strict=True)]


def segment_units_of(texts: list[str], n: int = SEGMENTS) -> tuple[list[str], list[list[int]]]:
    """(distinct segment texts, per text the indices of its segments): semrouter's segment_units, deduplicated."""
    from semrouter.signals.onnx.segments import segment_units

    index: dict[str, int] = {}
    per = [[index.setdefault(u, len(index)) for u in segment_units(t, n)] for t in texts]
    return list(index), per


def with_segments(bags: list[np.ndarray], texts: list[str], model_dir: Path, n: int = SEGMENTS) -> list[np.ndarray]:
    """Each text's bag [W_i,388] extended by its segments' views (encoded alone, standalone position features),
    in the order the runtime appends them (SafetyScorer with `segments`)."""
    units, per = segment_units_of(texts, n)
    if not units:
        return bags
    ub = with_positions(views(units, model_dir, 0), units, model_dir, 0)
    return [np.concatenate([b, *(ub[j] for j in js)]) if js else b for b, js in zip(bags, per, strict=True)]


# ---------------------------------------------------------------- the model


def train(bags: list[np.ndarray], y: np.ndarray, m: np.ndarray, w: np.ndarray, epochs: int, hidden: int,
          seed: int = 0):  # type: ignore[no-untyped-def]
    """Multiple-instance MLP: per view logits [3], a bag's logit = max over its views; masked weighted BCE."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x = torch.from_numpy(np.concatenate(bags).astype(np.float32))
    idx = torch.from_numpy(np.repeat(np.arange(len(bags)), [len(b) for b in bags]))
    yt, mt = torch.from_numpy(y).float(), torch.from_numpy(m).float()
    pos = (yt * mt).sum(0).clamp(min=1)
    neg = ((1 - yt) * mt).sum(0).clamp(min=1)
    cw = torch.where(yt > 0, neg / pos, torch.ones_like(yt)) * mt * torch.from_numpy(w).float()[:, None]
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.GELU(), torch.nn.Dropout(0.2),
                                torch.nn.Linear(hidden, len(LABELS)))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        z = model(x * 10.0)
        bag = torch.full((len(bags), len(LABELS)), -1e4).scatter_reduce(
            0, idx[:, None].expand(-1, len(LABELS)), z, reduce="amax", include_self=True)
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(bag, yt, reduction="none") * cw).sum() / cw.sum()
        loss.backward()
        opt.step()
    model.eval()
    return model


def score(model, bags: list[np.ndarray]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """float [N,3]: per bag the max over its views of sigmoid(logits)."""
    import torch

    with torch.no_grad():
        x = torch.from_numpy(np.concatenate(bags).astype(np.float32))
        p = torch.sigmoid(model(x * 10.0)).numpy()
    cuts = np.cumsum([0] + [len(b) for b in bags])
    return np.stack([p[a:b].max(axis=0) for a, b in zip(cuts[:-1], cuts[1:], strict=True)])


def export(model, path: Path) -> None:  # type: ignore[no-untyped-def]
    """`embedding` float32 [R,384(+4 position features)] (one row per view) -> `probs` [R,3] = sigmoid(logits)."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, embedding: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.inner(embedding * 10.0))

    dim = model[0].in_features
    with torch.no_grad():
        torch.onnx.export(Head().eval(), (torch.zeros(2, dim),), str(path), input_names=["embedding"],
                          output_names=["probs"], dynamic_axes={"embedding": {0: "rows"}, "probs": {0: "rows"}},
                          opset_version=17, dynamo=False)


# ---------------------------------------------------------------- report


def pick_thresholds(p: np.ndarray, fpr: float) -> dict[str, float]:
    """Thresholds over the benign scores `p` [N,3]: jailbreak and injection at the same benign quantile, the
    lowest such that at most `fpr` of benign prompts reach either (what a refusal needs); harmful at `fpr`."""
    def at(col: np.ndarray, q: float) -> float:
        return float(min(1.0 - 1e-6, np.quantile(col, q) + 1e-6))

    best = {lab: 1.0 - 1e-6 for lab in LABELS}
    for q in np.linspace(0.9, 0.99999, 2000):
        thr = {"jailbreak": at(p[:, 0], q), "injection": at(p[:, 1], q)}
        either = (p[:, 0] >= thr["jailbreak"]) | (p[:, 1] >= thr["injection"])
        if either.mean() <= fpr:
            best.update(thr)
            break
    best["harmful"] = at(p[:, 2], 1.0 - fpr)
    return best


def pick_joint(sets: list[dict[str, np.ndarray]], fpr: float, lookalike_fpr: float,
               objective: dict[str, np.ndarray]) -> tuple[float, float]:
    """(jailbreak, injection) thresholds chosen separately: of all pairs that refuse (either label) at most `fpr` of
    the benign rows and at most `lookalike_fpr` of the look-alike rows of EVERY held-out set in `sets` (each
    {"benign": [N,3], "lookalike": [M,3]} scores), the pair with the highest mean of jailbreak recall and
    injection recall on `objective` ({"jailbreak": [J,3], "injection": [I,3]} held-out scores of attacks).
    Candidates are the benign scores' upper quantiles of each label."""
    def cands(col: int) -> np.ndarray:
        allb = np.concatenate([s["benign"][:, col] for s in sets])
        return np.unique(np.clip(np.quantile(allb, np.linspace(0.95, 1.0, 300)) + 1e-6, 0.0, 1.0 - 1e-6))

    best, pick = -1.0, (1.0 - 1e-6, 1.0 - 1e-6)
    ti_all = cands(1)
    for tj in cands(0):
        ok = np.ones(len(ti_all), bool)
        for s in sets:
            for key, cap in (("benign", fpr), ("lookalike", lookalike_fpr)):
                p = s[key]
                if not len(p):
                    continue
                jb = p[:, 0] >= tj  # refused as jailbreak whatever ti is; the rest refused when inj >= ti
                rest = np.sort(p[~jb, 1])
                n_inj = len(rest) - np.searchsorted(rest, ti_all, side="left")
                ok &= (jb.sum() + n_inj) <= cap * len(p)
        if not ok.any():
            continue
        ti = ti_all[ok][0]  # the lowest injection threshold allowed with this tj
        score = 0.5 * (float((objective["jailbreak"][:, 0] >= tj).mean())
                       + float((objective["injection"][:, 1] >= ti).mean()))
        if score > best:
            best, pick = score, (float(tj), float(ti))
    return pick


def table(rows: list[dict], p: np.ndarray, thr: dict[str, float]) -> tuple[list[str], dict]:
    """Per origin: n, label, share flagged as jailbreak / injection / either (the refusal rate) / harmful."""
    lines = [f"{'origin':38s} {'label':17s} {'n':>5s} {'jailbrk':>8s} {'inject':>8s} {'either':>8s} {'harmful':>8s}"]
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[(r["label"], r["origin"])].append(i)
    summary: dict = {}
    flag = {lab: p[:, k] >= thr[lab] for k, lab in enumerate(LABELS)}
    either = flag["jailbreak"] | flag["injection"]
    for (lab, origin), idx in sorted(groups.items()):
        ix = np.array(idx)
        rates = [float(flag["jailbreak"][ix].mean()), float(flag["injection"][ix].mean()),
                 float(either[ix].mean()), float(flag["harmful"][ix].mean())]
        lines.append(f"{origin:38s} {lab:17s} {len(ix):5d} " + " ".join(f"{100 * v:7.1f}%" for v in rates))
        summary[origin] = {"label": lab, "n": len(ix), "jailbreak": round(rates[0], 4),
                           "injection": round(rates[1], 4), "either": round(rates[2], 4), "harmful": round(rates[3], 4)}
    for lab in ("jailbreak", "injection", "harmful", "benign_lookalike", "benign"):
        ix = np.array([i for i, r in enumerate(rows) if r["label"] == lab])
        if len(ix):
            rate = flag[lab][ix].mean() if lab in LABELS else either[ix].mean()
            what = "recall" if lab in LABELS else "refused (jailbreak or injection)"
            lines.append(f"ALL {lab:18s} n={len(ix):5d} {what}: {100 * rate:.1f}%")
            summary[f"ALL/{lab}"] = round(float(rate), 4)
    return lines, summary


class _Lex:
    """The lexical branch over the same rows (modelbuild/safety_lexical.py): per-fold fits and the fusion."""

    def __init__(self, rows: list[dict], ev: list[dict], model_dir: Path, y: np.ndarray, w: np.ndarray,
                 segments: int) -> None:
        from semrouter.signals.onnx.tokenize import TextTokenizer

        texts = [r["text"] for r in rows + ev]
        (ids, mask), self.vids = view_ids(texts, model_dir)
        units, per = segment_units_of(texts, segments)
        if units:  # the segments' views, in the order with_segments / the runtime append them
            uv = view_ids(units, model_dir, 0)[1]
            self.vids = [[*v, *(x for j in js for x in uv[j])] for v, js in zip(self.vids, per, strict=True)]
        self.main = (ids[: len(rows)], mask[: len(rows)])
        self.y, self.w = y[:, [LABELS.index(lab) for lab in LEXICAL_LABELS]], w
        self.vocab_size = TextTokenizer(model_dir / "tokenizer.json").vocab_size
        self.cols = [LABELS.index(lab) for lab in LEXICAL_LABELS]

    def fit(self, idx: np.ndarray) -> LexicalBranch:
        return LexicalBranch((self.main[0][idx], self.main[1][idx]), self.y[idx], self.w[idx], self.vocab_size)

    def fused(self, p: np.ndarray, lex_max: np.ndarray) -> np.ndarray:
        """p [N,3] with the lexical labels' columns replaced by the fused score (safety.fuse_logits)."""
        from semrouter.signals.onnx.safety import fuse_logits

        out = p.astype(np.float64).copy()
        out[:, self.cols] = 1.0 / (1.0 + np.exp(-fuse_logits(p[:, self.cols], lex_max)))
        return out

    def held_out(self, oof: np.ndarray, fold: np.ndarray) -> np.ndarray:
        """The embedding branch's held-out scores fused with a lexical branch fitted on the same 4 folds."""
        out = oof.copy()
        for k in range(FOLDS):
            tr, te = np.where(fold != k)[0], np.where(fold == k)[0]
            out[te] = self.fused(oof[te], self.fit(tr).bag_max([self.vids[i] for i in te]))
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="train the safety head")
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--mmlu-sample", type=int, default=800)
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--fpr", type=float, default=0.01,
                    help="held-out benign share refused (jailbreak or injection) the thresholds allow")
    ap.add_argument("--out", type=Path, default=ARTIFACTS)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--reuse-oof", action="store_true", help="take the held-out scores of the last run (build/)")
    ap.add_argument("--no-lexical", action="store_true", help="the embedding branch alone (no word-piece branch)")
    ap.add_argument("--split", choices=("origin", "group"), default="origin",
                    help="held-out folds: whole origin families (default) or near-duplicate groups within origins")
    ap.add_argument("--cv-only", action="store_true", help="stop after the held-out table (no shipped head)")
    ap.add_argument("--no-generated", action="store_true", help="leave out modelbuild/safety_cases.py's train rows")
    ap.add_argument("--joint-with", type=Path, default=None,
                    help="held-out scores of the other split (build/safety-cache/oof-fused-group*.npz): jailbreak and "
                         "injection thresholds chosen separately so that BOTH splits keep benign <= --fpr and look-alikes "
                         "<= --lookalike-fpr, recall maximised on that file's attacks (pick_joint)")
    ap.add_argument("--lookalike-fpr", type=float, default=0.05)
    ap.add_argument("--tag", default="", help="suffix of the saved held-out scores' file names (build/)")
    ap.add_argument("--no-direct", action="store_true", help="leave out modelbuild/safety_cases_direct.py's rows")
    ap.add_argument("--twins", action="store_true",
                    help="also train the clean twins of pasted-document injections (modelbuild/safety_twins.py); measured "
                         "and not shipped: benchmarks/RESULTS.md, seventh session")
    ap.add_argument("--segments", type=int, default=SEGMENTS,
                    help="sentence segments encoded alone per prompt, at the most (0: none)")
    args = ap.parse_args(argv)

    rows, ev = load(args.mmlu_sample, not args.no_generated, not args.no_direct, args.twins)
    bags = views([r["text"] for r in rows + ev], args.models)
    if POSITIONAL:
        bags = with_positions(bags, [r["text"] for r in rows + ev], args.models)
    if args.segments:
        assert POSITIONAL, "segment views carry position features"
        bags = with_segments(bags, [r["text"] for r in rows + ev], args.models, args.segments)
    tr_bags, ev_bags = bags[: len(rows)], bags[len(rows) :]
    y, m, w = label_arrays(rows)
    if args.split == "group":  # within-origin: every origin in every fold, near-duplicates kept together
        rows = [{**r, "fold": near_duplicate_fold(r["text"]) if r["fold"] >= 0 else -1} for r in rows]
        rows = [{**r, "fold": rows[r["src"]]["fold"]} if r.get("aux") else r for r in rows]  # twins: their source's
    fold = np.array([r["fold"] for r in rows])

    oof = np.zeros((len(rows), len(LABELS)))
    saved = CACHE / f"oof-{args.split}{args.tag}.npz"
    if args.reuse_oof and saved.is_file() and len(np.load(saved)["oof"]) == len(rows):
        oof = np.load(saved)["oof"]  # the folds of an earlier run with the same data (build/ cache)
    for k in ([] if args.reuse_oof and oof.any() else range(FOLDS)):
        tr = np.where(fold != k)[0]
        te = np.where(fold == k)[0]
        model = train([tr_bags[i] for i in tr], y[tr], m[tr], w[tr], args.epochs, args.hidden)
        oof[te] = score(model, [tr_bags[i] for i in te])
        print(f"fold {k}: held out {sorted({rows[i]['origin'] for i in te})}", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    meta = {"labels": np.array([r["label"] for r in rows]), "origins": np.array([r["origin"] for r in rows]),
            "fold": fold, "aux": np.array([bool(r.get("aux")) for r in rows])}
    np.savez(saved, oof=oof, **meta)  # the embedding branch alone (what --reuse-oof reads)
    lex = None if args.no_lexical else _Lex(rows, ev, args.models, y, w, args.segments)
    if lex is not None:
        oof = lex.held_out(oof, fold)
        np.savez(CACHE / f"oof-fused-{args.split}{args.tag}.npz", oof=oof, **meta)
    dev = np.where((fold >= 0) & ~np.array([bool(r.get("aux")) for r in rows]))[0]  # twins are never reported
    benign = [i for i in dev if rows[i]["label"] == "benign"]
    thr = pick_thresholds(oof[benign], args.fpr)
    if args.joint_with is not None:  # jailbreak/injection chosen separately, on both splits' held-out scores
        other = np.load(args.joint_with)
        odev = (other["fold"] >= 0) & ~other["aux"]
        olab, op = other["labels"][odev], other["oof"][odev]
        lab = np.array([rows[i]["label"] for i in dev])

        def held(lbl: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
            return {"benign": p[lbl == "benign"], "lookalike": p[lbl == "benign_lookalike"]}

        thr["jailbreak"], thr["injection"] = pick_joint(
            [held(lab, oof[dev]), held(olab, op)], args.fpr, args.lookalike_fpr,
            {"jailbreak": op[olab == "jailbreak"], "injection": op[olab == "injection"]})
        olines, _ = table([{"label": a, "origin": b} for a, b in zip(olab, other["origins"][odev], strict=True)], op, thr)
        print(f"\n{args.joint_with.name} at the joint thresholds {thr}")
        print("\n".join(olines))
    lines, summary = table([rows[i] for i in dev], oof[dev], thr)
    what = "origins (5 folds by origin family)" if args.split == "origin" else "near-duplicate groups within origins"
    print(f"\nheld-out {what}, thresholds {thr}")
    print("\n".join(lines))

    if args.cv_only:
        return 0
    model = train(tr_bags, y, m, w, args.epochs, args.hidden)
    pev = score(model, ev_bags)
    branch = None
    if lex is not None:
        branch = lex.fit(np.arange(len(rows)))
        pev = lex.fused(pev, branch.bag_max(lex.vids[len(rows) :]))
    ev_lines, ev_summary = table(ev, pev, thr)
    print("\neval-only sets (never trained on), shipped head")
    print("\n".join(ev_lines))
    report = {"thresholds": {k: round(v, 4) for k, v in thr.items()}, "windows": WINDOWS, "max_chunks": MAX_CHUNKS,
              "held_out_by_origin": summary, "eval_only": ev_summary, "train_rows": len(rows)}
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        export(model, args.out / "jailbreak_head.onnx")
        if branch is not None:
            branch.attach(args.out / "jailbreak_head.onnx", [v for b in lex.vids[:50] for v in b])
        meta = {"labels": list(LABELS), "output": "sigmoid", "windows": [list(x) for x in WINDOWS],
                "max_chunks": MAX_CHUNKS, "position_features": POSITIONAL, "thresholds": report["thresholds"],
                "lexical_labels": [] if branch is None else list(LEXICAL_LABELS), "segments": args.segments}
        (args.out / "jailbreak_head.labels.json").write_text(json.dumps(meta, indent=2) + "\n")
        (args.out / "jailbreak_head.metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}/jailbreak_head.onnx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
