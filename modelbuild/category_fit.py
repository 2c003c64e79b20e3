"""Fitting one category head (the MLP members, temperature, word-piece branch, exemplar memory) and exporting it.

Used by modelbuild/train_category.py, which decides what rows each pass sees (evaluation, within-source,
final). `fit_head` takes rows (dicts with `text`, `category`, `fine`, `source`) and their head inputs `x`
[N,D] (the sentence embedding, then any lower layers' means: `head_input`), keeps every 10th-by-hash row
out of the fit to choose the temperature and the mix (word-piece weight beta, memory weight gamma; the memory,
modelbuild/category_memory.py, holds every row's embedding, edited), and returns a `FittedHead` whose `probs`
gives calibrated [N,14] probabilities, whose `scale_temperature` applies train_category's held-out-source
calibration factor and whose `export` writes the ONNX head the router loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelbuild.category_data import LABELS, dup_group
from modelbuild.category_memory import MemoryVote, edit_rows
from modelbuild.heads import (
    embed, export_grouped_head, fit_temperature, fit_temperature_grouped, grouped_probs, held_out, logits,
    softmax, train_mlp,
)

NATURAL_WEIGHT = 16.0  # a natural request counts this many MMLU stems


def fine_classes(train: list[dict]) -> tuple[list[str], np.ndarray]:
    """Fine class names (sorted `fine` values of the training rows) and the [F,14] 0/1 grouping matrix."""
    cat_of = {r["fine"]: r["category"] for r in train}
    names = sorted(cat_of)
    group = np.zeros((len(names), len(LABELS)), np.float32)
    for j, n in enumerate(names):
        group[j, LABELS.index(cat_of[n])] = 1.0
    return names, group


def fine_label(r: dict, names: list[str]) -> int:
    return names.index(r["fine"])


class Lexical:
    """The word-piece branch: vocabulary, regression, and its mix with the MLP and the exemplar memory (see
    the module doc): probs = softmax((log p_mlp + beta * log p_lex + gamma * mem_logp) / t2)."""

    BETAS = (0.5, 0.75, 1.0, 1.25, 1.5)
    GAMMAS = (0.0, 0.25, 0.5, 0.75, 1.0)

    def __init__(self, vocab, clf, tokenizer) -> None:  # type: ignore[no-untyped-def]
        self.vocab, self.clf, self.tok = vocab, clf, tokenizer
        self.beta, self.t2, self.gamma = 1.0, 1.0, 0.0
        self.t2_val = 1.0  # the temperature chosen on the validation slice (t2 = t2_val * calibration scale)
        self.mem: MemoryVote | None = None

    def log_probs(self, texts: list[str]) -> np.ndarray:
        tb = self.tok.encode(texts)
        return np.log(self.clf.predict_proba(self.vocab.features(tb.input_ids, tb.attention_mask)) + 1e-12)

    def _mix(self, p_mlp: np.ndarray, lex_logp: np.ndarray, beta: float, mem_logp: np.ndarray | None = None,
             gamma: float = 0.0) -> np.ndarray:
        z = np.log(p_mlp + 1e-12) + beta * lex_logp
        return z + gamma * mem_logp if mem_logp is not None and gamma else z

    def pick(self, p_mlp_val: np.ndarray, val_texts: list[str], yv: np.ndarray,
             mem_logp_val: np.ndarray | None = None) -> None:
        """beta (and gamma, with a memory) by validation accuracy (NLL breaks ties), then the temperature of the
        mix by validation NLL."""
        lv = self.log_probs(val_texts)
        best = None
        for beta in self.BETAS:
            for gamma in (self.GAMMAS if mem_logp_val is not None else (0.0,)):
                s = self._mix(p_mlp_val, lv, beta, mem_logp_val, gamma)
                acc = float((s.argmax(1) == yv).mean())
                nll = -float(np.mean(np.log(softmax(s)[np.arange(len(yv)), yv] + 1e-12)))
                if best is None or (acc, -nll) > (best[0], -best[1]):
                    best = (acc, nll, beta, gamma)
        assert best is not None
        self.beta, self.gamma = best[2], best[3]
        self.t2 = self.t2_val = fit_temperature(self._mix(p_mlp_val, lv, self.beta, mem_logp_val, self.gamma), yv)
        print(f"lexical: {self.vocab.n_features} features, beta={self.beta}, memory gamma={self.gamma}, "
              f"mix temperature={self.t2:.3f}")

    def mix_logits(self, p_mlp: np.ndarray, texts: list[str], mem_logp: np.ndarray | None = None) -> np.ndarray:
        """The mix before its temperature [N,14]."""
        return self._mix(p_mlp, self.log_probs(texts), self.beta, mem_logp, self.gamma)

    def combine(self, p_mlp: np.ndarray, texts: list[str], mem_logp: np.ndarray | None = None) -> np.ndarray:
        return softmax(self.mix_logits(p_mlp, texts, mem_logp) / self.t2)

    def round_fp16(self) -> None:
        """Round the regression's weights to float16 values (stored so by `fp16_initializers`)."""
        self.clf.coef_ = self.clf.coef_.astype(np.float16).astype(np.float64)

    def report(self) -> dict[str, object]:
        out: dict[str, object] = {"lexical_features": self.vocab.n_features, "lexical_beta": self.beta,
                                  "lexical_mix_temperature": round(self.t2, 4),
                                  "lexical_mix_temperature_val": round(self.t2_val, 4), "lexical_c": float(self.clf.C)}
        if self.mem is not None:
            out.update({"memory_rows": self.mem.n_rows, "memory_k": self.mem.k, "memory_tau": self.mem.tau,
                        "memory_gamma": self.gamma})
        return out

    def attach(self, path: Path) -> None:
        """Append the lexical branch and the mix to the exported MLP graph (its `probs` becomes `mlp_probs`)."""
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        from modelbuild.category_memory import memory_graph
        from modelbuild.lexical import lexical_graph

        m = onnx.load(str(path))
        g = m.graph
        for node in g.node:
            node.output[:] = ["mlp_probs" if o == "probs" else o for o in node.output]
        del g.output[:]
        # the regression's classes are 0..13 in order (every category has training rows)
        assert list(self.clf.classes_) == list(range(len(LABELS))), self.clf.classes_
        nodes, inits = lexical_graph(self.vocab, self.clf.coef_.T, self.clf.intercept_)
        g.node.extend(nodes)
        g.initializer.extend(inits)
        g.initializer.extend([
            numpy_helper.from_array(np.array([1e-12], np.float32), "mix_eps"),
            numpy_helper.from_array(np.array([self.beta], np.float32), "mix_beta"),
            numpy_helper.from_array(np.array([self.t2], np.float32), "mix_t2"),
        ])
        n = helper.make_node
        g.node.extend([
            n("Add", ["mlp_probs", "mix_eps"], ["mlp_probs_eps"]),
            n("Log", ["mlp_probs_eps"], ["mlp_logp"]),
            n("LogSoftmax", ["lex_logits"], ["lex_logp"], axis=-1),
            n("Mul", ["lex_logp", "mix_beta"], ["lex_scaled"]),
            n("Add", ["mlp_logp", "lex_scaled"], ["mix_lex"]),
        ])
        mix = "mix_lex"
        if self.mem is not None and self.gamma:  # the exemplar memory's vote (modelbuild/category_memory.py)
            m_nodes, m_inits = memory_graph(self.mem)
            g.node.extend(m_nodes)
            g.initializer.extend(m_inits)
            g.initializer.append(numpy_helper.from_array(np.array([self.gamma], np.float32), "mix_gamma"))
            g.node.extend([n("Mul", ["mem_logp", "mix_gamma"], ["mem_scaled"]),
                           n("Add", ["mix_lex", "mem_scaled"], ["mix"])])
            mix = "mix"
        g.node.extend([n("Div", [mix, "mix_t2"], ["mix_t"]), n("Softmax", ["mix_t"], ["probs"], axis=-1)])
        for name in ("input_ids", "attention_mask"):
            g.input.append(helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "seq"]))
        g.output.append(helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", len(LABELS)]))
        m.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
        onnx.checker.check_model(m)
        onnx.save(m, str(path))


def train_mlps(x: np.ndarray, y: np.ndarray, k: int, weights: np.ndarray, hidden: int, epochs: int,
                weight_decay: float, members: int):  # type: ignore[no-untyped-def]
    """`members` MLPs (seeds 0..members-1) whose fine logits are averaged (one module: `logits` and the ONNX
    export see a single model). members=1 is the plain MLP."""
    import torch

    nets = [train_mlp(x, y, k, weights, hidden=hidden, epochs=epochs, weight_decay=weight_decay, seed=s)
            for s in range(members)]
    if members == 1:
        return nets[0]

    class Averaged(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(nets)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([m(x) for m in self.members]).mean(0)

    return Averaged().eval()


def round_fp16(model) -> None:  # type: ignore[no-untyped-def]
    """Round the MLP's parameters to float16 values in place, so that the numbers measured here are those of
    the head stored by `fp16_initializers`."""
    import torch

    with torch.no_grad():
        for prm in model.parameters():
            prm.copy_(prm.half().float())


def fp16_initializers(path: Path, min_size: int = 4096, names: frozenset[str] | None = None) -> None:
    """Store the large float32 initializers of the exported MLP graph (or only those in `names`) as float16,
    each followed by a Cast back to float32 (exact: the weights were rounded by `round_fp16` /
    `Lexical.round_fp16`; onnxruntime folds the casts at load)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(path))
    g = m.graph
    casts = []
    for init in g.initializer:
        a = numpy_helper.to_array(init)
        if init.data_type != TensorProto.FLOAT or a.size < min_size or (names is not None and init.name not in names):
            continue
        h = a.astype(np.float16)
        assert np.array_equal(h.astype(np.float32), a), f"{init.name} is not fp16-rounded"
        name = init.name
        init.CopyFrom(numpy_helper.from_array(h, name + "_fp16"))
        casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT))
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def train_lexical(texts: list[str], y: np.ndarray, weights: np.ndarray, models: Path, c: float,
                   min_df: int) -> Lexical:
    from sklearn.linear_model import LogisticRegression

    from modelbuild.lexical import LexicalVocab
    from semrouter.signals.onnx.tokenize import TextTokenizer

    tok = TextTokenizer(models / "tokenizer.json", 256)
    tb = tok.encode(texts)
    vocab = LexicalVocab.build(tb.input_ids, tb.attention_mask, tok.vocab_size, min_df)
    clf = LogisticRegression(C=c, max_iter=3000).fit(vocab.features(tb.input_ids, tb.attention_mask), y,
                                                     sample_weight=weights)
    return Lexical(vocab, clf, tok)




def head_input(emb: np.ndarray, layer_means: np.ndarray | None, layers: tuple[int, ...]) -> np.ndarray:
    """[N, 384 * (1 + len(layers))]: the sentence embedding, then each picked row of the encoder's
    `layer_means` [N,7,384] L2-normalised (as the complexity head reads them)."""
    from modelbuild.complexity.head import route_input

    return route_input(emb, layer_means, layers)


def embed_rows(rows: list[dict], models: Path, layers: tuple[int, ...], batch: int) -> np.ndarray:
    """Head inputs for `rows` from the built int8 encoder (cached under build/; `batch=1`: one text per run,
    as the router embeds a request)."""
    texts = [r["text"] for r in rows]
    emb = embed(texts, models, batch=batch)
    lm = embed(texts, models, batch=batch, output="layer_means") if layers else None
    return head_input(emb, lm, layers)


@dataclass(frozen=True)
class Settings:
    """Everything `fit_head` needs besides the rows: the same settings give the evaluation and final heads."""

    models: Path
    hidden: int = 1024
    epochs: int = 150
    weight_decay: float = 0.5
    members: int = 2
    fp16: bool = True
    fp16_lexical: bool = False  # the word-piece weights as float16 too (half of their 1.7 MB)
    lexical: bool = True
    lexical_c: float = 10.0
    lexical_min_df: int = 3
    refit: bool = False
    layers: tuple[int, ...] = ()
    memory: bool = True  # the exemplar memory's vote joins the mix (modelbuild/category_memory.py)
    memory_k: int = 20
    memory_tau: float = 0.05
    memory_edit_margin: float = 0.5  # 0 keeps every row (category_memory.edit_rows)


@dataclass
class FittedHead:
    model: object  # torch module: fine logits of 20 * x
    group: np.ndarray  # [F,14] 0/1
    temperature: float
    lex: Lexical | None
    layers: tuple[int, ...]
    val_probs: np.ndarray  # [V,14] on the validation rows, from the models that chose the settings
    val_y: np.ndarray  # [V]
    fit_rows: int
    val_rows: int
    val_mix: np.ndarray | None = None  # [V,14] the mix before its temperature on the validation rows

    def probs(self, x: np.ndarray, texts: list[str], exclude: np.ndarray | None = None) -> np.ndarray:
        """Calibrated category probabilities [N,14] for head inputs `x` [N,D] and their texts (`exclude` [N,M]:
        memory rows each text may not see; the validation rows' own near-duplicate groups)."""
        p = grouped_probs(logits(self.model, x), self.group, self.temperature)
        return self.lex.combine(p, texts, self._mem_logp(x, exclude)) if self.lex is not None else p

    def mix_logits(self, x: np.ndarray, texts: list[str]) -> np.ndarray:
        """The word-piece mix before its temperature [N,14] (needs the lexical branch)."""
        assert self.lex is not None
        p = grouped_probs(logits(self.model, x), self.group, self.temperature)
        return self.lex.mix_logits(p, texts, self._mem_logp(x, None))

    def _mem_logp(self, x: np.ndarray, exclude: np.ndarray | None) -> np.ndarray | None:
        if self.lex is None or self.lex.mem is None or not self.lex.gamma:
            return None
        return self.lex.mem.log_term(x[:, :384], exclude)

    def scale_temperature(self, factor: float) -> None:
        """Multiply the mix temperature chosen on the validation slice by `factor` (> 1: less confident),
        the calibration transfer of train_category (fitted on a source the evaluation head never saw)."""
        assert self.lex is not None
        self.lex.t2 = self.lex.t2_val * factor

    def export(self, path: Path, fp16: bool, x_check: np.ndarray, texts_check: list[str],
               fp16_lexical: bool = False) -> None:
        """Write the ONNX head (`embedding` [B,384] (+ `layer_means` [B,7,384] when it reads lower layers)
        (+ `input_ids`/`attention_mask`) -> `probs` [B,14]) and check onnxruntime against `probs`."""
        if self.layers:
            _export_layered_head(self.model, self.temperature, self.group, self.layers, path)
        else:
            export_grouped_head(self.model, self.temperature, self.group, path)
        if fp16:
            fp16_initializers(path)
        if self.lex is not None:
            self.lex.attach(path)
            if fp16_lexical:
                fp16_initializers(path, names=frozenset({"lex_weight"}))
        _check_export(path, self, x_check, texts_check)


def is_val(r: dict) -> bool:
    """The validation slice of any training set: every 10th row by a hash of its text."""
    return held_out("val:" + r["text"], 10)


def fit_head(rows: list[dict], x: np.ndarray, s: Settings) -> FittedHead:
    """Train on `rows` (head inputs `x` [N,D]): MLP members on fine classes, the temperature and the
    word-piece mix chosen on the validation slice (`is_val`), optionally refit on all of `rows`."""
    val = np.array([is_val(r) for r in rows])
    fit_rows = [r for r, v in zip(rows, val, strict=True) if not v]
    val_rows = [r for r, v in zip(rows, val, strict=True) if v]
    xf, xv = x[~val], x[val]
    yf = np.array([LABELS.index(r["category"]) for r in fit_rows], dtype=np.int64)
    yv = np.array([LABELS.index(r["category"]) for r in val_rows], dtype=np.int64)
    names, group = fine_classes(rows)

    def weights_of(rs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        f = np.array([fine_label(r, names) for r in rs], dtype=np.int64)
        counts = np.maximum(np.bincount(f, minlength=len(names)).astype(np.float64), 1.0)
        w = (counts.sum() / (len(names) * counts)) ** 0.5  # soften class imbalance (over fine classes)
        return f, w[f] * np.array([NATURAL_WEIGHT if r["source"] == "natural" else 1.0 for r in rs])

    ff, wf = weights_of(fit_rows)
    model = train_mlps(xf, ff, len(names), wf, s.hidden, s.epochs, s.weight_decay, s.members)
    if s.fp16:
        round_fp16(model)
    temp = fit_temperature_grouped(logits(model, xv), yv, group)
    lex = None
    if s.lexical:
        lex = train_lexical([r["text"] for r in fit_rows], yf, wf, s.models, s.lexical_c, s.lexical_min_df)
        if s.fp16_lexical:
            lex.round_fp16()
        mem_val = exclude = None
        if s.memory:  # every row is in the memory; a validation row does not see its own near-duplicate group
            ya = np.array([LABELS.index(r["category"]) for r in rows], dtype=np.int64)
            groups = np.array([dup_group(r["text"]) for r in rows])
            kept = edit_rows(x[:, :384], ya, groups, s.memory_k, s.memory_tau, s.memory_edit_margin)
            print(f"memory: {int(kept.sum())} of {len(rows)} rows kept (edited at margin {s.memory_edit_margin})")
            lex.mem = MemoryVote.build(x[kept, :384], ya[kept], len(LABELS), s.memory_k, s.memory_tau)
            exclude = groups[val][:, None] == groups[kept][None, :]
            mem_val = lex.mem.log_term(xv[:, :384], exclude)
        lex.pick(grouped_probs(logits(model, xv), group, temp), [r["text"] for r in val_rows], yv, mem_val)
    head = FittedHead(model, group, temp, lex, s.layers, np.zeros((0, len(LABELS))), yv, len(fit_rows), len(val_rows))
    head.val_probs = head.probs(xv, [r["text"] for r in val_rows], exclude if s.lexical and s.memory else None)
    if lex is not None:
        head.val_mix = lex.mix_logits(grouped_probs(logits(model, xv), group, temp), [r["text"] for r in val_rows],
                                      head._mem_logp(xv, exclude))
    if s.refit:  # settings fixed (temperature, beta, mix temperature): refit both models on all rows
        fa, wa = weights_of(rows)
        head.model = train_mlps(x, fa, len(names), wa, s.hidden, s.epochs, s.weight_decay, s.members)
        if s.fp16:
            round_fp16(head.model)
        if lex is not None:
            ya = np.array([LABELS.index(r["category"]) for r in rows], dtype=np.int64)
            refit = train_lexical([r["text"] for r in rows], ya, wa, s.models, s.lexical_c, s.lexical_min_df)
            refit.beta, refit.t2, refit.t2_val, refit.gamma, refit.mem = lex.beta, lex.t2, lex.t2_val, lex.gamma, lex.mem
            if s.fp16_lexical:
                refit.round_fp16()
            head.lex = refit
    return head


def _export_layered_head(model, temperature: float, group: np.ndarray, layers: tuple[int, ...],  # type: ignore[no-untyped-def]
                         path: Path) -> None:
    """Like `export_grouped_head`, with a second input `layer_means` [B,7,384] whose rows `layers` are
    L2-normalised and appended to the embedding (`head_input`)."""
    import torch

    g = torch.from_numpy(np.asarray(group, dtype=np.float32))
    idx = torch.tensor(list(layers), dtype=torch.long)

    class Layered(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model
            self.register_buffer("group", g)
            self.register_buffer("idx", idx)

        def forward(self, embedding: torch.Tensor, layer_means: torch.Tensor) -> torch.Tensor:
            picked = layer_means.index_select(1, self.idx)
            picked = picked / picked.norm(dim=2, keepdim=True).clamp_min(1e-12)
            x = torch.cat([embedding, picked.flatten(1)], dim=1)
            return torch.softmax(self.inner(x * 20.0) / temperature, dim=-1) @ self.group

    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            Layered().eval(), (torch.zeros(2, 384), torch.zeros(2, 7, 384)), str(path),
            input_names=["embedding", "layer_means"], output_names=["probs"],
            dynamic_axes={"embedding": {0: "batch"}, "layer_means": {0: "batch"}, "probs": {0: "batch"}},
            opset_version=17, dynamo=False,
        )


def _check_export(path: Path, head: FittedHead, x: np.ndarray, texts: list[str]) -> None:
    """onnxruntime (fed as the router feeds it) against `head.probs`: max abs diff < 1e-4."""
    import onnxruntime as ort

    from semrouter.signals.onnx.tokenize import TextTokenizer

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    feeds = {"embedding": x[:, :384].astype(np.float32)}
    if "layer_means" in names:  # rebuild a [B,7,384] input whose picked rows are the (normalised) features
        lm = np.zeros((len(x), 7, 384), np.float32)
        for j, layer in enumerate(head.layers):
            lm[:, layer] = x[:, 384 * (1 + j) : 384 * (2 + j)]
        feeds["layer_means"] = lm
    if "input_ids" in names:
        assert head.lex is not None
        tb = head.lex.tok.encode(texts)
        feeds["input_ids"], feeds["attention_mask"] = tb.input_ids, tb.attention_mask
    # one text per run, as the router at concurrency 1 (the memory's query quantisation is per run)
    got = np.concatenate([sess.run(["probs"], {k: v[i : i + 1] for k, v in feeds.items()})[0] for i in range(len(x))])
    diff = float(np.abs(got - head.probs(x, texts)).max())
    print(f"onnx vs numpy (category head): max abs diff {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit(f"category head export mismatch: {diff}")
