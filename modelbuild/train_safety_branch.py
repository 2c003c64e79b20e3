"""Fine-tune the safety branch (a copy of encoder layer 5 + the safety head) and compare it with the frozen head.

    python -m modelbuild.train_safety_branch --split group [--folds 0,1,2,3,4] [--steps 150] [--tag T]
    python -m modelbuild.train_safety_branch --report build/safety-cache/branch-group.npz build/safety-cache/branch-origin.npz
    python -m modelbuild.train_safety_branch --final JB INJ BRANCH_JB BRANCH_INJ

Same rows, folds and splits as modelbuild/train_jailbreak.py (`--split origin`: whole origin families held out;
`--split group`: near-duplicate groups held out inside every origin, the independent checks' kind of split). Per
held-out fold, two models are trained on the other folds and score the fold:
- *frozen*: train_jailbreak's head (`train`) on the shared encoder's views (what ships today), and
- *branch*: the same head, started from the frozen head's weights, fine-tuned together with a copy of layer 5 that
  reads layer 4's output (modelbuild/safety_branch.py) for `--steps` minibatches of `--batch` prompts (AdamW, layer
  lr `--lr`, head lr 10x; seeded; multiple-instance: a prompt's logit per label is the max over its views).
Both are fused with the same per-fold lexical branch (train_jailbreak._Lex) as the shipped head is. The held-out
scores are saved to build/safety-cache/branch-<split><tag>.npz (`frozen`, `branch`, labels, origins, fold) for
`pick_joint` and the tables (`--report A.npz B.npz`: thresholds by the shipped rule on both splits, per origin).
`--final` trains both models on every row and scores the eval-only sets (train_jailbreak.load's second list) at the
given thresholds. Measured in benchmarks/RESULTS.md (eighth session, `safety9`); nothing here is shipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelbuild.heads import ROOT
from modelbuild.safety_branch import DIM, RowSet, bert_layer_weights, make_layer, row_set, rows_states
from modelbuild.train_jailbreak import CACHE, FOLDS, LABELS, _Lex, load, near_duplicate_fold, pick_joint, score, table
from modelbuild.train_jailbreak import label_arrays, train

if TYPE_CHECKING:
    import torch


class Branch:
    """The layer copy + head over a RowSet's cached layer-4 states (torch modules; float32)."""

    def __init__(self, rs: RowSet, states: np.ndarray, start: np.ndarray,  # type: ignore[no-untyped-def]
                 end: np.ndarray, head) -> None:
        import copy

        self.rs, self.states, self.start, self.end = rs, states, start, end
        self.layer = make_layer(bert_layer_weights())
        self.head = copy.deepcopy(head)

    def bag_logits(self, prompts: list[int], train: bool) -> torch.Tensor:
        """Logits [B,3] of `prompts` (max over each prompt's views)."""
        import torch

        rows = sorted({r for i in prompts for r in self.rs.rows_of[i]}, key=lambda r: len(self.rs.ids[r]))
        views: dict[int, torch.Tensor] = {}
        at = 0
        while at < len(rows):
            end = at + 1
            while end < len(rows) and len(self.rs.ids[rows[end]]) * (end + 1 - at) <= 4096:
                end += 1
            part = rows[at:end]
            width = len(self.rs.ids[part[-1]])
            h = np.zeros((len(part), width, DIM), np.float32)
            mask = np.zeros((len(part), width), np.float32)
            for k, r in enumerate(part):
                a, b = self.start[r], self.end[r]
                h[k, : b - a] = self.states[a:b]
                mask[k, : b - a] = 1.0
            out = self.layer(torch.from_numpy(h), torch.from_numpy(mask))
            csum = torch.cat([torch.zeros(len(part), 1, DIM), torch.cumsum(out, dim=1)], dim=1)
            for k, r in enumerate(part):
                sp = torch.from_numpy(self.rs.spans[r])
                v = (csum[k, sp[:, 1]] - csum[k, sp[:, 0]]) / (sp[:, 1] - sp[:, 0])[:, None].float()
                views[r] = torch.nn.functional.normalize(v, dim=1)
            at = end
        self.head.train(train)
        bags = []
        for i in prompts:
            x = torch.cat([views[r] for r in self.rs.rows_of[i]])
            x = torch.cat([x, torch.from_numpy(self.rs.pos[i])], dim=1)
            bags.append(self.head(x * 10.0).max(dim=0).values)
        return torch.stack(bags)

    def fit(self, idx: np.ndarray, y: np.ndarray, m: np.ndarray, w: np.ndarray, steps: int, batch: int, lr: float,
            seed: int = 0) -> None:
        """Fine-tune layer + head on prompts `idx` (y, m [N,3] targets and masks, w [N] weights over all prompts)."""
        import torch

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        yt, mt = torch.from_numpy(y).float(), torch.from_numpy(m).float()
        pos = (yt[idx] * mt[idx]).sum(0).clamp(min=1)
        neg = ((1 - yt[idx]) * mt[idx]).sum(0).clamp(min=1)
        cw = torch.where(yt > 0, neg / pos, torch.ones_like(yt)) * mt * torch.from_numpy(w).float()[:, None]
        opt = torch.optim.AdamW([{"params": self.layer.parameters(), "lr": lr},
                                 {"params": self.head.parameters(), "lr": 10 * lr}], weight_decay=1e-2)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * max(0.0, 1 - s / steps))
        order = np.concatenate([rng.permutation(idx) for _ in range(-(-steps * batch // len(idx)))])
        t0 = time.time()
        for s in range(steps):
            b = order[s * batch : (s + 1) * batch]
            z = self.bag_logits(b.tolist(), True)
            bt = torch.from_numpy(b)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(z, yt[bt], reduction="none")
                    * cw[bt]).sum() / cw[bt].sum().clamp(min=1e-6)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if s % 50 == 0:
                print(f"  step {s} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)

    def predict(self, idx: np.ndarray, batch: int = 32) -> np.ndarray:
        """float [len(idx),3] sigmoid of the bag logits."""
        import torch

        out = []
        self.layer.eval()
        with torch.no_grad():
            for a in range(0, len(idx), batch):
                out.append(torch.sigmoid(self.bag_logits(idx[a : a + batch].tolist(), False)).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(LABELS)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="fine-tune the safety branch; held-out comparison with the frozen head")
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--split", choices=("origin", "group"), default="group")
    ap.add_argument("--folds", default=",".join(str(k) for k in range(FOLDS)))
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--epochs", type=int, default=80, help="the frozen head's epochs (train_jailbreak's default)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--tag", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--final", type=float, nargs=4, metavar=("JB", "INJ", "BRANCH_JB", "BRANCH_INJ"), default=None,
                    help="train both models on every row and print the eval-only sets' table at these thresholds "
                         "(the frozen head's, the branch's: from --report)")
    args = ap.parse_args(argv)
    if args.final:
        args.folds = "-1"  # every row trains (fold -1 never equals a row's fold >= 0); eval-only rows are scored

    import torch

    torch.set_num_threads(args.threads)
    rows, ev = load(800)
    texts = [r["text"] for r in rows + ev]
    folds = [int(x) for x in args.folds.split(",") if x]  # none: only fuse and report the saved folds
    if folds:
        t0 = time.time()
        rs = row_set(texts, args.models)
        print(f"{len(texts)} prompts, {len(rs.ids)} encoder rows, {sum(len(r) for r in rs.ids)} tokens "
              f"({time.time() - t0:.0f}s)", flush=True)
        states, start, end, rviews = rows_states(rs, args.models, CACHE)
        print(f"layer-4 states ready ({time.time() - t0:.0f}s)", flush=True)
        bags = [np.concatenate([np.concatenate([rviews[r] for r in rs.rows_of[i]]), rs.pos[i]], axis=1)
                for i in range(len(texts))]
    y, m, w = label_arrays(rows)
    if args.split == "group":
        rows = [{**r, "fold": near_duplicate_fold(r["text"]) if r["fold"] >= 0 else -1} for r in rows]
    fold = np.array([r["fold"] for r in rows])
    out = CACHE / f"branch-{args.split}{args.tag}.npz"
    frozen = np.full((len(rows), len(LABELS)), np.nan)
    branch = np.full((len(rows), len(LABELS)), np.nan)
    if out.is_file():
        z = np.load(out)
        frozen, branch = z["frozen"], z["branch"]
    if args.final:
        return final(rows, ev, bags, rs, (states, start, end), y, m, w, args)
    for k in folds:
        tr, te = np.where(fold != k)[0], np.where(fold == k)[0]
        t1 = time.time()
        head = train([bags[i] for i in tr], y[tr], m[tr], w[tr], args.epochs, args.hidden)
        torch.set_num_threads(args.threads)  # train() sets one thread
        frozen[te] = score(head, [bags[i] for i in te])
        br = Branch(rs, states, start, end, head)
        br.fit(tr, y, m, w, args.steps, args.batch, args.lr)
        branch[te] = br.predict(te)
        print(f"fold {k}: {len(te)} held out, {time.time() - t1:.0f}s", flush=True)
        np.savez(out, frozen=frozen, branch=branch, labels=np.array([r["label"] for r in rows]),
                 origins=np.array([r["origin"] for r in rows]), fold=fold)
    done = ~np.isnan(branch[:, 0]) & (fold >= 0)
    lex = _Lex(rows, ev, args.models, y, w, 16)
    fused = {name: np.where(np.isnan(p), 0.0, p) for name, p in (("frozen", frozen), ("branch", branch))}
    for k in sorted(set(fold[done].tolist())):  # one lexical fit per scored fold, shared by both models
        te = np.where(fold == k)[0]
        bm = lex.fit(np.where(fold != k)[0]).bag_max([lex.vids[i] for i in te])
        for name in fused:
            fused[name][te] = lex.fused(fused[name][te], bm)
    np.savez(out, frozen=frozen, branch=branch, frozen_fused=fused["frozen"], branch_fused=fused["branch"],
             labels=np.array([r["label"] for r in rows]), origins=np.array([r["origin"] for r in rows]), fold=fold)
    report([out])
    return 0


def final(rows: list[dict], ev: list[dict], bags: list[np.ndarray], rs: RowSet, st: tuple, y: np.ndarray,
          m: np.ndarray, w: np.ndarray, args: argparse.Namespace) -> int:
    """Both models trained on every row (as a shipped head would be), fused with the lexical branch fitted on every
    row; the eval-only sets (never trained on) scored at each model's thresholds `args.final` (frozen jailbreak,
    injection, branch jailbreak, injection)."""
    import torch

    tr = np.arange(len(rows))
    evi = np.arange(len(rows), len(rows) + len(ev))
    head = train([bags[i] for i in tr], y, m, w, args.epochs, args.hidden)
    torch.set_num_threads(args.threads)
    br = Branch(rs, *st, head)
    br.fit(tr, y, m, w, args.steps, args.batch, args.lr)
    lex = _Lex(rows, ev, args.models, y, w, 16)
    bm = lex.fit(tr).bag_max(lex.vids[len(rows) :])
    for name, p, (tj, ti) in (("frozen", score(head, [bags[i] for i in evi]), args.final[:2]),
                              ("branch", br.predict(evi), args.final[2:])):
        thr = {"jailbreak": tj, "injection": ti, "harmful": 0.5}
        lines, _ = table(ev, lex.fused(p, bm), thr)
        print(f"\neval-only sets, {name} trained on every row, at jb {thr['jailbreak']} inj {thr['injection']}")
        print("\n".join(lines))
    return 0


def report(paths: list[Path]) -> None:
    """Thresholds by the shipped rule (pick_joint: benign <= 1% and look-alikes <= 5% on every given split, best
    mean recall on the first), per model; then each split's per-origin table at those thresholds."""
    zs = [np.load(p) for p in paths]
    for name in ("frozen_fused", "branch_fused"):
        sets, objective = [], None
        for z in zs:
            done = ~np.isnan(z[name.split("_")[0]][:, 0]) & (z["fold"] >= 0)
            lab, p = z["labels"][done], z[name][done]
            sets.append({"benign": p[lab == "benign"], "lookalike": p[lab == "benign_lookalike"]})
            if objective is None:
                objective = {"jailbreak": p[lab == "jailbreak"], "injection": p[lab == "injection"]}
        assert objective is not None
        tj, ti = pick_joint(sets, 0.01, 0.05, objective)
        thr = {"jailbreak": tj, "injection": ti, "harmful": 0.5}
        for path, z in zip(paths, zs, strict=True):
            done = ~np.isnan(z[name.split("_")[0]][:, 0]) & (z["fold"] >= 0)
            rws = [{"label": a, "origin": b} for a, b in zip(z["labels"][done], z["origins"][done], strict=True)]
            lines, _ = table(rws, z[name][done], thr)
            print(f"\n{name} {path.name} ({int(done.sum())} held-out rows) at jb {tj:.4f} inj {ti:.4f}")
            print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--report":
        report([Path(p) for p in sys.argv[2:]])
        sys.exit(0)
    sys.exit(main())
