"""`SemanticCache`: key, lookup (exact, then vector + verification), background store, maintenance.

Lookup order: category enabled? -> exact match on the prompt hash within the scope (keys.py; no
embedding) -> embedding (or the one passed in) -> vector search filtered to the scope and to
unexpired entries -> a verdict per candidate (judge.py): under the per-category threshold (the cosine
pre-filter); code or quoted text that differ (verbatim.py, always); a rule family that vetoes
(`verifier: learned` and `cross` = the `verifier_veto` families; `rules` and `both` = all of verify.py); the
model's score P(same answer) under `verifier_threshold` (`learned`, `both`; `cross_threshold` for `cross`:
the cross-encoder of cross_verify.py, run on at most `cross_top_k` candidates in a worker thread, its score
capped at the bi-encoder verifier's where that is under `cross_guard_threshold`) unless the prompts are an
answer-neutral rewording of each other (equivalent.py, `accept_equivalent`); else the best such
candidate is served. `off` serves the best candidate above the threshold. Each refused candidate logs one info line
(reason, cosine, score; never prompt text); a miss carries one reason of judge.MISS_REASONS
(`lookup_with_reason`), and `explain` returns every verdict without serving or counting. The learned
verifier needs the cached prompts' vectors: from the backend's optional `vectors(ids)`, else a
bounded in-process map filled at store time, else the prompts are embedded again (one batch).
A learned model that is missing or does not fit is replaced by the rules (with a warning) and the
threshold raised to at least `fallback_similarity_threshold`. A prompt the language signal detects as one of
`multilingual.languages` is looked up and stored in that language's own space instead (multilingual.py: e5
vectors, its own scope, cosine >= `multilingual.threshold` and the `multilingual.veto` families, no model score).
Under `verifier: cross` each candidate's rules run once (judge.check), in the screening that picks what the model
decides; the verdict reads them.
Everything is bounded by `lookup_timeout_ms` and fails open (None), counting what went wrong.

A maintenance task (maintenance.py, every `purge_interval_seconds`) writes LRU hit times, deletes expired
entries, enforces `max_entries`, and reconnects a failed backend as soon as a probe says it answers.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import structlog

from semrouter.cache import keys, near_synonym, replies
from semrouter.cache.build import load_guard, load_learned, make_backend, no_embedder
from semrouter.cache.config import CacheConfig
from semrouter.cache.cross_verify import CrossVerifier, Swap
from semrouter.cache.health import Breaker
from semrouter.cache.judge import Check, Judgement, check, judge, miss_reason, needs_score
from semrouter.cache.learned_verify import LearnedVerifier
from semrouter.cache.maintenance import Maintenance
from semrouter.cache.multilingual import LanguageSpaces
from semrouter.cache.types import (
    CacheBackend,
    CacheBackendError,
    CacheHit,
    CacheKey,
    CacheSchemaError,
    Embedder,
    Entry,
)
from semrouter.cache.verify import RULES, Verifier
from semrouter.request.parse import ChatRequest

log = structlog.get_logger("semrouter.cache")


@dataclass
class _Waiting:
    """What one lookup is awaiting, read when `lookup_timeout_ms` expires: only a backend call that overran is a
    backend failure (the breaker). The embedder or a verifier model overrunning (a loaded CPU, long prompts a client
    chose) is not: counted as such, those tripped the breaker and turned the cache off for every client."""
    backend: bool = False

VECTOR_MEMO_ENTRIES = 4096  # cached prompts' vectors kept in process for the learned verifier


class SemanticCache:
    def __init__(self, cfg: CacheConfig, embed: Embedder, backend: CacheBackend, verifier: Verifier | None = None,
                 clock: Callable[[], float] = time.time,
                 learned: LearnedVerifier | CrossVerifier | None = None, guard: LearnedVerifier | None = None,
                 embed_multilingual: Embedder | None = None) -> None:
        """`guard`: the bi-encoder verifier that caps the cross-encoder's score (verifier: cross only);
        `embed_multilingual`: the multilingual encoder of the language spaces (multilingual.py; None: none)."""
        self.cfg = cfg
        self._embed = embed
        self._spaces = LanguageSpaces(cfg.multilingual, embed_multilingual, cfg.dimension)
        self._backend = backend
        self._verifier = verifier or Verifier()
        self._learned = learned if cfg.model_verified else None
        if isinstance(self._learned, CrossVerifier) != (cfg.verifier == "cross"):
            self._learned = None  # a model of the other kind than configured
        # a model configured but unavailable -> rules with a raised threshold
        self._fallback = cfg.model_verified and self._learned is None
        self._guard = guard if isinstance(self._learned, CrossVerifier) and cfg.cross_guard_threshold > 0 else None
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._clock = clock
        self._breaker = Breaker(cfg.reconnect_initial_seconds, cfg.reconnect_max_seconds)
        self._counters: Counter[str] = Counter()
        self._pending: set[asyncio.Task[None]] = set()
        self._maintenance = Maintenance(cfg, backend, self._breaker, self._counters, clock, self._failed)
        self._closed = False
        self._tenancy = keys.tenancy(cfg)

    @classmethod
    async def create(cls, cfg: CacheConfig, embed: Embedder | None = None, *, backend: CacheBackend | None = None,
                     verifier: Verifier | None = None, clock: Callable[[], float] = time.time,
                     maintenance: bool = True, learned: LearnedVerifier | CrossVerifier | None = None,
                     opened: bool = False, guard: LearnedVerifier | None = None,
                     embed_multilingual: Embedder | None = None) -> SemanticCache:
        """Connect and create the collection. A backend that is down is not fatal (the cache fails
        open and reconnects in the background); a schema mismatch is (CacheSchemaError).
        `learned`: a loaded learned verifier (else loaded from cfg.verifier_model when needed); `guard`: the
        cross-encoder's bi-encoder guard (else loaded from cfg.verifier_model under verifier: cross);
        `opened`: the caller already opened `backend` (the CLI, to report its own errors); `embed_multilingual`:
        the multilingual encoder for cache.multilingual (None: every prompt takes the English path)."""
        if verifier is None and cfg.verify:
            verifier = await asyncio.to_thread(Verifier.from_tokenizer, cfg.verify_vocabulary)
        verifier = verifier or Verifier()
        if learned is None and embed is not None:
            learned = await asyncio.to_thread(load_learned, cfg, verifier)
        if guard is None and embed is not None and isinstance(learned, CrossVerifier):
            guard = await asyncio.to_thread(load_guard, cfg, verifier)
        self = cls(cfg, embed or no_embedder, backend or make_backend(cfg), verifier, clock, learned, guard,
                   embed_multilingual)
        try:
            if not opened:
                await self._backend.open()
        except CacheSchemaError:
            raise
        except Exception as e:
            self._counters["backend_errors"] += 1
            self._breaker.trip(self._clock())
            log.error("cache backend unavailable at start; serving without cache", backend=self._backend.name,
                      error=str(e))
        if maintenance:
            self._maintenance.start()
        return self

    @property
    def backend(self) -> CacheBackend:
        return self._backend

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- request path -----------------------------------------------------------------------

    def key_for(self, req: ChatRequest, headers: Mapping[str, str], tenant: str | None = None,
                policy: str = "") -> CacheKey | None:
        """The request's key (None: not cacheable). `tenant`: a tenant label as stored (admin lookups);
        by default it is resolved from `headers` (semrouter/request/tenant.py). `policy`: the serving config's
        decision/needs.policy_fingerprints (part of the scope)."""
        if not self.cfg.enabled:
            return None
        label = keys.safe_label(tenant) if tenant else self._tenancy.tenant(headers)
        key = keys.make_key(self.cfg, req, headers, label, policy)
        if key is None:
            self._counters["not_cacheable"] += 1
        return key

    async def lookup(self, key: CacheKey, category: str | None, embedding: np.ndarray | None = None,
                     stage: Literal["all", "exact", "semantic"] = "all") -> CacheHit | None:
        """The cached answer for this key, or None. Never raises; bounded by lookup_timeout_ms.

        `embedding`: the prompt's embedding if the caller already has it (L2-normalised).
        `stage`: "exact" only tries the normalised prompt hash (before any signal runs, so an exact
        repeat costs no encoder pass); "semantic" skips that step because the caller already did it."""
        hit, _ = await self.lookup_with_reason(key, category, embedding, stage)
        return hit

    async def lookup_with_reason(self, key: CacheKey, category: str | None, embedding: np.ndarray | None = None,
                                 stage: Literal["all", "exact", "semantic"] = "all",
                                 language: str | None = None) -> tuple[CacheHit | None, str]:
        """`lookup`, plus the miss reason: "" on a hit, else one of judge.MISS_REASONS (an exact-stage
        miss is "no_candidates": the semantic stage decides). `language`: the prompt's ISO 639-1 code from
        the language signal (None = unknown: English settings); picks the verifier threshold, and a language of
        cache.multilingual.languages its own space (multilingual.py: the key's scope, the e5 vector, the exact
        stage tried there too)."""
        if stage == "exact":
            self._counters["exact_lookups"] += 1
        else:
            self._counters["lookups"] += 1
        if not self.cfg.category_enabled(category):
            self._counters["category_disabled"] += 1
            return None, "category_disabled"
        if self._breaker.open:
            self._counters["skipped_backend_down"] += 1
            return None, "backend_down"
        waiting = _Waiting()
        try:
            async with asyncio.timeout(self.cfg.lookup_timeout_ms / 1000):
                space = self._spaces.space(language) if stage != "exact" else ""
                if space:  # the English embedding is of no use there; an exact repeat is only found in the space
                    self._counters["lookups_multilingual"] += 1
                    key, embedding, stage = self._spaces.key(key, space), None, "all"
                hit, judged = await self._lookup(key, category, embedding, stage, language, waiting, space)
        except TimeoutError:
            self._counters["lookup_timeouts"] += 1
            if waiting.backend:
                self._failed("lookup timed out", None)
            else:  # the encoder or a verifier model: the backend answered
                self._counters["lookup_timeouts_local"] += 1
            return None, "timeout"
        except CacheBackendError as e:
            self._counters["lookup_errors"] += 1
            self._failed("cache lookup failed", e)
            return None, "error"
        except Exception as e:  # an embedder or bug: still fail open
            self._counters["lookup_errors"] += 1
            log.warning("cache lookup failed", error=f"{type(e).__name__}: {e}")
            return None, "error"
        if stage != "exact" or hit is not None:  # an exact-stage miss is followed by the semantic stage
            self._counters["hits" if hit else "misses"] += 1
        if hit is not None:
            self._maintenance.hits[hit.entry_id] = self._now_ms()
            return hit, ""
        reason = miss_reason(judged)
        if stage != "exact":
            self._counters[f"miss_{reason}"] += 1
        return None, reason

    def _failed(self, what: str, e: Exception | None) -> None:
        if self._breaker.failure(self._clock()):
            log.error("cache backend marked down; reconnecting with back-off", backend=self._backend.name)
        log.warning(what, backend=self._backend.name, error=str(e) if e else None)

    async def _lookup(self, key: CacheKey, category: str | None, embedding: np.ndarray | None,
                      stage: str = "all", language: str | None = None, waiting: _Waiting | None = None,
                      space: str = "") -> tuple[CacheHit | None, list[Judgement]]:
        now = self._now_ms()
        waiting = waiting or _Waiting()
        if stage != "semantic":
            waiting.backend = True
            exact = await self._backend.find_exact(key.scope, key.prompt_hash, now)
            waiting.backend = False
            self._breaker.success()
            if exact is not None and exact.expires > now:
                self._counters["hits_exact"] += 1
                return CacheHit(exact.id, exact.body, 1.0, True), []
            if stage == "exact":
                return None, []
        judged = await self._judge(key, category, embedding, now, language, waiting, space)
        for j in judged:
            if j.verdict == "hit":
                self._counters["hits_semantic"] += 1
                if space:
                    self._counters["hits_multilingual"] += 1
                return CacheHit(j.entry.id, j.entry.body, min(j.cosine, 1.0), False), judged
            if j.verdict == "rejected":
                self._counters["rejected_learned" if j.veto == "learned" else "rejected_verify"] += 1
                # one line per rejection; the family only, never prompt text
                log.info("cache candidate rejected", reason=j.veto, similarity=round(j.cosine, 4),
                         score=None if j.score is None else round(j.score, 4), category=category or "")
        return None, judged

    async def _judge(self, key: CacheKey, category: str | None, embedding: np.ndarray | None,
                     now: int, language: str | None = None, waiting: _Waiting | None = None,
                     space: str = "") -> list[Judgement]:
        """Search the scope and judge every candidate found (judge.py), best cosine first. `waiting` is set
        while a backend call is awaited. `space`: a language space (`key` already in it): e5 vectors, its
        threshold and vetoes, no model score."""
        waiting = waiting or _Waiting()
        if space:
            vec = await self._spaces.vector(key)
        else:
            vec = embedding if embedding is not None else await self._embed_one(key.prompt)
        waiting.backend = True
        found = await self._backend.search(key.scope, vec, self.cfg.search_limit, now)
        waiting.backend = False
        if space:
            ml = self.cfg.multilingual
            live = [(e, sc) for e, sc in found if e.expires > now and e.scope == key.scope]
            self._counters["rejected_stale"] += len(found) - len(live)
            args_ml = (key.prompt, live, ml.threshold, None, 0.0, self._verifier, ml.veto, False)
            if not any(sc >= ml.threshold for _, sc in live):
                return judge(*args_ml)
            return await asyncio.to_thread(judge, *args_ml)
        threshold = self.cfg.threshold_for(category)
        if self._fallback:
            threshold = max(threshold, self.cfg.fallback_similarity_threshold)
        live: list[tuple[Entry, float]] = []
        for entry, score in found:
            if entry.expires <= now or entry.scope != key.scope:
                self._counters["rejected_stale"] += 1
                continue
            live.append((entry, score))
        above = [e for e, s in live if s >= threshold]
        checks: list[Check | None] = [None] * len(above)  # the rules' verdicts, filled where the screening ran them
        long = np.zeros(len(above), dtype=bool)  # the cross-encoder's pairs over its training length
        learned = await self._learned_scores(key.prompt, vec, above, waiting, checks, long) if above else None
        t: float | np.ndarray = self.cfg.verifier_threshold_for(language)
        if long.any():  # cross_threshold_long (or the other-language threshold, when higher) for those pairs
            t = np.where(long, max(t, self.cfg.cross_threshold_long), t)
        args = (key.prompt, live, threshold, learned, t, self._verifier,
                self._rules(), self.cfg.accept_equivalent, checks)
        if all(c is not None for c in checks):  # no rule left to run (none under the threshold): no thread hop
            return judge(*args)
        # the rules are pure Python, linear in the prompts' length but ~10 ms per long pair: off the event loop
        # (a client's long prompts otherwise stalled every stream, and lookup_timeout_ms could not interrupt them)
        return await asyncio.to_thread(judge, *args)

    async def explain(self, key: CacheKey, category: str | None = None, language: str | None = None) -> dict[str, Any]:
        """Why this prompt would hit or miss now, without serving or counting anything.

        Returns {"verdict": "hit" | "miss", "stage": "exact" | "semantic" | "", "reason": "" or one of
        judge.MISS_REASONS, "threshold", "verifier", "verifier_model", "verifier_threshold", "candidates": [{"entry_id",
        "prompt", "cosine", "verifier_score", "veto", "verdict"}]}. Raises CacheBackendError when the
        backend fails (an admin call, not the request path). `language`: as for lookup_with_reason (a language of
        cache.multilingual.languages is explained in its space; "space" names it, "" = English)."""
        space = self._spaces.space(language)
        key = self._spaces.key(key, space)
        base: dict[str, Any] = {
            "threshold": max(self.cfg.threshold_for(category), self.cfg.fallback_similarity_threshold)
            if self._fallback else self.cfg.threshold_for(category),
            "verifier": self.cfg.verifier if not self._fallback else "rules (learned model unavailable)",
            "verifier_model": self._model_name(),
            "verifier_threshold": self.cfg.verifier_threshold_for(None),
            "space": space,
        }
        if space:
            base.update(threshold=self.cfg.multilingual.threshold, verifier="multilingual cosine", verifier_model="",
                        verifier_threshold=None)
        if not self.cfg.category_enabled(category):
            return {"verdict": "miss", "stage": "", "reason": "category_disabled", **base, "candidates": []}
        now = self._now_ms()
        exact = await self._backend.find_exact(key.scope, key.prompt_hash, now)
        if exact is not None and exact.expires > now:
            j = Judgement(exact, 1.0, None, "", "hit")
            return {"verdict": "hit", "stage": "exact", "reason": "", **base, "candidates": [j.as_dict()]}
        judged = await self._judge(key, category, None, now, language, None, space)
        hit = any(j.verdict == "hit" for j in judged)
        return {"verdict": "hit" if hit else "miss", "stage": "semantic", "reason": "" if hit else miss_reason(judged),
                **base, "candidates": [j.as_dict() for j in judged]}

    def _model_name(self) -> str:
        """The file name of the verifier model in use ("" without one)."""
        path = getattr(self._learned, "path", None)
        return "" if path is None else str(getattr(path, "name", path))

    def _rules(self) -> tuple[str, ...]:
        """The rule families that veto a candidate in the effective verification mode."""
        if self.cfg.verifier in ("rules", "both") or self._fallback:
            return RULES
        if self.cfg.verifier in ("learned", "cross"):
            return self.cfg.verifier_veto
        return ()

    async def _learned_scores(self, prompt: str, vec: np.ndarray, entries: list[Entry],
                              waiting: _Waiting | None = None, checks: list[Check | None] | None = None,
                              long: np.ndarray | None = None) -> np.ndarray | None:
        """P(same answer) per candidate with the learned verifier; None when it is not in use. A model with
        alignment features scores only the candidates the score decides (judge.needs_score; NaN for the
        others), after one encoder run over the prompt and those candidates in a worker thread. `checks[i]` is set to
        the rules' verdict of each candidate the cross-encoder's screening judged (judge() reuses them); `long[i]`
        (bool [len(entries)]) to whether the cross-encoder scored the i-th pair over its training length."""
        if self._learned is None:
            return None
        if isinstance(self._learned, CrossVerifier):
            return await self._cross_scores(prompt, vec, entries, waiting, checks, long)
        if not self._learned.wants_align:
            vectors = await self._candidate_vectors(entries, waiting)
            return self._learned.score(prompt, vec, [e.prompt for e in entries], vectors)
        out = np.full(len(entries), np.nan, dtype=np.float32)
        rules, verifier, equiv = self._rules(), self._verifier, self.cfg.accept_equivalent
        need = await asyncio.to_thread(
            lambda: [i for i, e in enumerate(entries) if needs_score(prompt, e.prompt, verifier, rules, equiv)])
        if not need:
            return out
        picked = [entries[i] for i in need]
        vectors = await self._candidate_vectors(picked, waiting)
        texts = [e.prompt for e in picked]
        align = await asyncio.to_thread(self._learned.align_rows, prompt, texts)
        out[need] = self._learned.score(prompt, vec, texts, vectors, align)
        return out

    async def _cross_scores(self, prompt: str, vec: np.ndarray, entries: list[Entry],
                            waiting: _Waiting | None = None, checks: list[Check | None] | None = None,
                            long: np.ndarray | None = None) -> np.ndarray:
        """Cross-encoder P(same answer) for the first `cross_top_k` candidates the score decides
        (judge.needs_score) before the first one a rule serves, one batched run in a worker thread; NaN for
        candidates it does not decide, 0 for those past the top k (refused as `learned`). With the guard, a
        candidate whose bi-encoder P(same answer) is under `cross_guard_threshold` gets the lower of the two. `long[i]`
        is set where the i-th pair is longer than the model's training length (cross_threshold_long applies)."""
        assert isinstance(self._learned, CrossVerifier)
        out = np.full(len(entries), np.nan, dtype=np.float32)
        checks = checks if checks is not None else [None] * len(entries)
        need = await asyncio.to_thread(self._cross_candidates, prompt, entries, checks)
        if not need:
            return out
        top, rest = need[:self.cfg.cross_top_k], need[self.cfg.cross_top_k:]
        out[rest] = 0.0
        texts = [entries[i].prompt for i in top]
        swaps = await self._substitutions(prompt, texts)
        cross = self._learned

        def run() -> tuple[np.ndarray, np.ndarray]:
            return cross.score(prompt, texts, swaps), cross.long_pairs(prompt, texts)

        out[top], over = await asyncio.to_thread(run)
        if long is not None:
            long[top] = over
        self._counters["cross_encoder_runs"] += 1
        if self._guard is not None:
            vectors = await self._candidate_vectors([entries[i] for i in top], waiting)
            guard = self._guard.score(prompt, vec, texts, vectors)
            low = guard < self.cfg.cross_guard_threshold
            out[top] = np.where(low, np.minimum(out[top], guard), out[top])
            self._counters["cross_guard_capped"] += int(low.sum())
        return out

    async def _substitutions(self, prompt: str, texts: list[str]) -> list[Swap | None]:
        """The candidates' one-run substitutions (CrossVerifier.substitutions), each `refused` outright unless its
        two runs alone embed at cosine >= cross_substitution_synonym_cosine and, when set, the near-synonym model
        gives them >= cross_substitution_synonym_probability (one batch; the cross-encoder then also scores the runs
        against cross_substitution_synonym_score)."""
        assert isinstance(self._learned, CrossVerifier)
        swaps = await asyncio.to_thread(self._learned.substitutions, prompt, texts)
        found = [i for i, s in enumerate(swaps) if s is not None and not s.refused]
        if not found:
            return swaps
        self._counters["cross_substitutions"] += len(found)
        t = self.cfg.cross_substitution_synonym_cosine
        if t is None:
            return [s if s is None else s._replace(refused=True) for s in swaps]
        p = self.cfg.cross_substitution_synonym_probability
        # the two runs alone, or near_synonym.texts (the two runs first) when the near-synonym model decides too
        per = 2 if p is None else 8
        runs = [w for i in found for w in (swaps[i][:2] if p is None  # type: ignore[index]
                                           else near_synonym.texts(*swaps[i][:2]))]  # type: ignore[index,misc]
        try:
            vecs = np.asarray(await self._embed(runs), dtype=np.float32).reshape(len(found), per, -1)
        except Exception:  # an embedder failure: no exception (the substitution is refused)
            self._counters["embed_errors"] += 1
            vecs = np.zeros((len(found), per, 1), np.float32)
        for i, v in zip(found, vecs, strict=True):
            u, w = v[0], v[1]
            if float(u @ w) < t * float(np.linalg.norm(u) * np.linalg.norm(w)) or not u.any() or (  # cosine < t
                    p is not None and near_synonym.probability(v) < p):
                swaps[i] = swaps[i]._replace(refused=True)  # type: ignore[union-attr]
        return swaps

    def _cross_candidates(self, prompt: str, entries: list[Entry], checks: list[Check | None]) -> list[int]:
        """Indices of `entries` the cross-encoder decides (blocking: the rules, once per candidate, their verdicts
        written to `checks`; called in a worker thread)."""
        rules, verifier, equiv = self._rules(), self._verifier, self.cfg.accept_equivalent
        need: list[int] = []
        for i, e in enumerate(entries):  # best cosine first: candidates after one a rule serves are not reached
            checks[i] = c = check(prompt, e.prompt, verifier, rules, equiv)
            if c == ("", True):  # served by the rewording rule
                break
            if c == ("", False):
                need.append(i)
        return need

    async def _candidate_vectors(self, entries: list[Entry], waiting: _Waiting | None = None) -> np.ndarray:
        """[len(entries), dim]: from the backend (optional `vectors(ids)`), the in-process memo, or
        embedded again (one batch for all the missing ones). `waiting` is set while the backend is awaited."""
        waiting = waiting or _Waiting()
        out: dict[str, np.ndarray] = {}
        for e in entries:
            v = self._vectors.get(e.id)
            if v is not None:
                self._vectors.move_to_end(e.id)
                out[e.id] = v
        missing = [e for e in entries if e.id not in out]
        fetch = getattr(self._backend, "vectors", None)
        if missing and fetch is not None:
            waiting.backend = True
            got = await fetch([e.id for e in missing])
            waiting.backend = False
            for eid, v in got.items():
                out[eid] = self._remember(eid, np.asarray(v, dtype=np.float32).reshape(-1))
            missing = [e for e in missing if e.id not in out]
        if missing:
            self._counters["verifier_reembedded"] += len(missing)
            embs = np.asarray(await self._embed([e.prompt for e in missing]), dtype=np.float32)
            for e, v in zip(missing, embs.reshape(len(missing), -1), strict=True):
                out[e.id] = self._remember(e.id, v)
        return np.stack([out[e.id] for e in entries])

    def _remember(self, entry_id: str, vec: np.ndarray) -> np.ndarray:
        self._vectors[entry_id] = vec
        self._vectors.move_to_end(entry_id)
        while len(self._vectors) > VECTOR_MEMO_ENTRIES:
            self._vectors.popitem(last=False)
        return vec

    async def _embed_one(self, text: str) -> np.ndarray:
        try:
            out = await self._embed([text])
        except Exception:
            self._counters["embed_errors"] += 1
            raise
        return np.asarray(out, dtype=np.float32).reshape(len(out), -1)[0]

    def store_in_background(self, key: CacheKey, category: str | None, status: int, content_type: str,
                            body: bytes, has_pii: bool, embedding: np.ndarray | None = None,
                            language: str | None = None) -> None:
        """Queue the answer for storage; never raises, never blocks (see module docstring). `embedding`: the
        prompt's English (MiniLM) embedding, if the caller has it; `language`: as for lookup_with_reason (a
        language of cache.multilingual.languages stores the entry in its space, with the lookup's e5 vector)."""
        try:
            reason = self._store_refusal(category, status, has_pii)
            if reason:
                self._counters[f"store_skipped_{reason}"] += 1
                return
            space = self._spaces.space(language)
            if space:
                key = self._spaces.key(key, space)
                embedding = self._spaces.take(key)  # None: embedded again in the task
            task = asyncio.get_running_loop().create_task(
                self._store(key, category, content_type, body, embedding, space))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        except Exception as e:
            self._counters["store_errors"] += 1
            log.warning("cache store not queued", error=f"{type(e).__name__}: {e}")

    def _store_refusal(self, category: str | None, status: int, has_pii: bool) -> str:
        if not self.cfg.enabled or self._closed:
            return "disabled"
        if not 200 <= status < 300:
            return "status"
        if has_pii and self.cfg.skip_pii:
            return "pii"
        if not self.cfg.category_enabled(category):
            return "category"
        if self._breaker.open:
            return "backend_down"
        if len(self._pending) >= self.cfg.max_pending_stores:
            return "queue_full"
        return ""

    async def _store(self, key: CacheKey, category: str | None, content_type: str, body: bytes,
                     embedding: np.ndarray | None = None, space: str = "") -> None:
        try:
            completion = await asyncio.to_thread(replies.completion_from_upstream, content_type, body)
            if completion is None:
                self._counters["store_skipped_incomplete"] += 1
                return
            stored = json.dumps(completion, ensure_ascii=False, separators=(",", ":")).encode()
            now = self._now_ms()
            if await self._backend.find_exact(key.scope, key.prompt_hash, now) is not None:
                self._counters["store_skipped_duplicate"] += 1
                return
            if embedding is not None:
                vec = np.asarray(embedding, dtype=np.float32).reshape(-1)
            elif space:
                vec = await self._spaces.vector(key)
                self._spaces.take(key)  # remembered by vector(); this store was its use
            else:
                vec = await self._embed_one(key.prompt)
            entry = Entry(id=uuid.uuid4().hex, tenant=key.tenant, model=key.model, context_hash=key.context_hash,
                          params_hash=key.params_hash, prompt_hash=key.prompt_hash, prompt=key.prompt,
                          category=(category or "").lower(), body=stored, created=now,
                          expires=now + self.cfg.ttl_seconds * 1000)
            await self._backend.insert(entry, vec)
            if self._learned is not None and not space:  # the learned verifier reads English vectors only
                self._remember(entry.id, np.asarray(vec, dtype=np.float32).reshape(-1))
            self._counters["stores"] += 1
            if space:
                self._counters["stores_multilingual"] += 1
        except CacheBackendError as e:
            self._counters["store_errors"] += 1
            self._failed("cache store failed", e)
        except Exception as e:
            self._counters["store_errors"] += 1
            log.warning("cache store failed", error=f"{type(e).__name__}: {e}")

    async def flush(self) -> None:
        """Wait for queued stores (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def render_hit(self, hit: CacheHit, stream: bool, requested_model: str,
                   include_usage: bool = True) -> tuple[bytes, str]:
        """(body, content type) replaying the hit; see `replies.render` for the exact shape."""
        return replies.render(hit.body, stream, requested_model, include_usage)

    # -- maintenance (maintenance.py) ---------------------------------------------------------

    async def maintain(self) -> dict[str, int]:
        """One maintenance pass now (see `Maintenance.run_once`): reconnect if down, else record hits, purge
        expired entries, evict."""
        return await self._maintenance.run_once()

    # -- management ---------------------------------------------------------------------------

    def state(self) -> dict[str, float]:
        """Cheap, synchronous gauges (metrics): backend_up (1/0) and, for a mirrored Milvus Lite file, the
        in-process copy's mirror_entries and mirror_bytes."""
        out = {"backend_up": 0.0 if self._breaker.open else 1.0}
        mirror = getattr(self._backend, "stats", None)
        if mirror is not None:
            m = mirror()
            out["mirror_entries"], out["mirror_bytes"] = float(m["entries"]), float(m["bytes"])
        return out

    async def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "enabled": self.cfg.enabled, "backend": self._backend.name, "backend_up": not self._breaker.open,
            "similarity_threshold": self.cfg.similarity_threshold, "ttl_seconds": self.cfg.ttl_seconds,
            "verifier": self.cfg.verifier if not self._fallback else "rules (learned model unavailable)",
            "verifier_model": self._model_name(),
            "verifier_threshold": self.cfg.verifier_threshold_for(None),
            "max_entries": self.cfg.max_entries, "eviction": self.cfg.eviction, "pending_stores": len(self._pending),
            "hits": self._counters["hits"], "misses": self._counters["misses"],
            "counters": dict(sorted(self._counters.items())),
        }
        mirror = getattr(self._backend, "stats", None)
        if mirror is not None:
            out["mirror"] = mirror()
        try:
            out["entries"] = await asyncio.wait_for(self._backend.count(), self.cfg.milvus.call_timeout_seconds)
        except Exception as e:
            out["entries"] = None
            out["entries_error"] = f"{type(e).__name__}: {e}"
        return out

    async def list_entries(self, tenant: str | None = None, model: str | None = None,
                           limit: int = 50) -> list[dict[str, Any]]:
        return [e.summary() for e in await self._backend.list(tenant, model, limit)]

    async def inspect(self, entry_id: str) -> dict[str, Any] | None:
        e = await self._backend.get(entry_id)
        return e.summary(with_body=True) if e else None

    async def delete(self, entry_id: str | None = None, tenant: str | None = None, model: str | None = None) -> int:
        if entry_id is None and tenant is None and model is None:
            raise ValueError("delete needs an entry id, a tenant or a model (use clear() to delete everything)")
        return await self._backend.delete([entry_id] if entry_id else None, tenant, model)

    async def clear(self) -> int:
        return await self._backend.clear()

    async def close(self) -> None:
        self._closed = True
        await self._maintenance.stop()
        try:
            await asyncio.wait_for(self.flush(), timeout=5)
        except TimeoutError:
            for t in list(self._pending):
                t.cancel()
        await self._maintenance.write_hits()
        await self._backend.close()
