"""Configuration of the semantic cache (the `cache:` section of the router's YAML).

Every field has a default, so `cache: {enabled: true}` is a working cache: Milvus Lite embedded
in the router process, stored under `data/milvus/cache.db`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MilvusConfig(_Strict):
    """Where and how the `milvus` backend stores entries."""

    uri: str = Field(
        default="data/milvus/cache.db",
        description="a local path ending in .db = Milvus Lite embedded in the router process; "
        "http(s)://host:19530 = a Milvus server or cluster",
    )
    db_name: str = Field(default="", description="Milvus database (server only); empty = the server's default")
    token: str = Field(default="", description="API token (`user:password` or a Zilliz API key); server only")
    user: str = Field(default="", description="user name (server only; alternative to token)")
    password: str = Field(default="", description="password for `user` (server only)")
    secure: bool = Field(default=False, description="use TLS (implied by an https:// uri)")
    server_pem_path: str = Field(default="", description="CA / server certificate for one-way TLS")
    server_name: str = Field(default="", description="TLS server name override (SNI)")
    client_pem_path: str = Field(default="", description="client certificate for mutual TLS")
    client_key_path: str = Field(default="", description="client key for mutual TLS")
    ca_pem_path: str = Field(default="", description="CA certificate for mutual TLS")
    collection: str = Field(default="semrouter_cache", description="collection name; created if missing, never dropped")
    index_type: str = Field(
        default="HNSW",
        description="vector index type. Milvus Lite builds HNSW, HNSW_SQ, IVF_FLAT, IVF_SQ8 (faiss) and "
        "FLAT/BRUTE_FORCE; AUTOINDEX = HNSW there",
    )
    index_params: dict[str, Any] = Field(
        default_factory=lambda: {"M": 16, "efConstruction": 200}, description="index build parameters"
    )
    search_params: dict[str, Any] = Field(
        default_factory=lambda: {"ef": 64}, description="search parameters (e.g. ef for HNSW, nprobe for IVF)"
    )
    client_threads: int = Field(
        default=16, ge=1, le=256,
        description="threads making blocking pymilvus calls over one gRPC connection (calls in flight at once); "
        "a Milvus server at 16 concurrent lookups: p50 57 ms with 4 threads, 38 ms with 16 (benchmarks/RESULTS.md)",
    )
    call_timeout_seconds: float = Field(
        default=5.0, gt=0, description="timeout of one Milvus call off the request path (store, purge, admin)"
    )
    max_body_bytes: int = Field(
        default=60_000, ge=1024, le=65_535,
        description="larger (compressed) answers are not stored: a Milvus VARCHAR holds at most 65,535 bytes",
    )

    mirror_local: bool = Field(
        default=True,
        description="for an embedded Milvus Lite file: answer reads from an in-process copy loaded at start-up "
        "(Milvus Lite searches take ~20 ms); writes still go to the file first",
    )
    mirror_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1024 * 1024,
        description="most bytes the in-process copy may take (estimated: body, prompt, vector, ~1.2 KB objects); "
        "a store over it evicts (by `eviction`) down to 90% of it, from the copy and the file. 256 MiB suits a "
        "sidecar (~50k entries of 3 KB answers); the limit applies to the copy, not to Milvus Lite's own memory",
    )

    @property
    def is_local(self) -> bool:
        return not self.uri.startswith(("http://", "https://", "tcp://", "unix:"))


_VetoFamily = Literal["numbers", "negation", "antonym", "units", "direction", "specific", "order", "digits",
                      "languages"]


class MultilingualCacheConfig(_Strict):
    """Non-English prompts in a space of their own (semrouter/cache/multilingual.py): the multilingual encoder that
    signals.multilingual loads (multilingual-e5-small, models/e5 from `make models`) embeds them, one space per
    detected language (part of the entry's scope), so a Spanish prompt is only ever compared with Spanish prompts
    and served a Spanish prompt's answer, and e5 vectors never meet MiniLM vectors. Without that encoder
    (signals.multilingual off, language off, or models/e5 missing) or off, every prompt uses the English path."""

    enabled: bool = Field(
        default=True,
        description="look up and store prompts the language signal detects as one of `languages` in their "
        "language's e5 space (needs language.enabled, signals.multilingual.enabled and models/e5; without them a "
        "warning at start and the English path)",
    )
    languages: tuple[str, ...] = Field(
        default=("de", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "zh"),
        description="ISO 639-1 codes that get a space of their own (measured: these 10, benchmarks/RESULTS.md, "
        "ninth session `cache10`); a prompt detected as another language (or en / und) uses the English path",
    )
    threshold: float = Field(
        default=0.95, ge=0, le=1,
        description="minimum e5 cosine for a hit in a multilingual space (no model score there: the cross-encoder "
        "reads English). 0.95: the lowest value where, on validation STS pairs in 10 languages (stsb/dev), every "
        "language's false hits on 'different' pairs stay <= 5% and the pooled rate <= 2% (the rule "
        "cross_threshold_other_languages was chosen by; benchmarks/RESULTS.md, ninth session `cache10`)",
    )
    veto: tuple[_VetoFamily, ...] = Field(
        default=("digits", "languages", "numbers", "negation", "antonym", "units", "direction", "order"),
        description="rule families of verify.py that veto a candidate in a multilingual space: those that read any "
        "language (`digits`, every run of digits, also inside names such as M31; `negation`, the negation words of "
        "the Latin- and Cyrillic-script languages and the Japanese / Chinese markers; `languages`, the languages a "
        "prompt names, in English or the spaces' languages: 'traduce al francés' vs 'traduce al alemán' scored e5 "
        "0.977 and was served), plus the other default "
        "English families (numbers, antonym, units, direction, order) for English prompts the language signal takes "
        "for another language (\"convert Celsius to Fahrenheit\" is detected as German; on validation they cost "
        "0.5 points of other-language hits). Code and quoted text that differ and meaning-bearing case always veto",
    )

    @field_validator("languages")
    @classmethod
    def _codes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(c.strip().lower() for c in v)
        if len(set(out)) != len(out):
            raise ValueError("cache.multilingual.languages: duplicate language codes")
        if "en" in out or "und" in out:
            raise ValueError("cache.multilingual.languages: 'en' and 'und' use the English path; remove them")
        return out


class CacheConfig(_Strict):
    """The semantic cache: exact + similarity lookup of earlier answers, scoped per tenant."""

    enabled: bool = Field(default=False, description="look up and store answers")
    backend: Literal["milvus", "memory"] = Field(
        default="milvus", description="milvus (Lite or server) or memory (in-process, lost on restart)"
    )
    milvus: MilvusConfig = Field(default_factory=MilvusConfig, description="settings of the milvus backend")
    dimension: int = Field(default=384, ge=2, le=32768, description="embedding dimension (all-MiniLM-L6-v2: 384)")
    similarity_threshold: float = Field(
        default=0.55, ge=0, le=1,
        description="minimum cosine similarity for a candidate (the pre-filter before verification). With the "
        "learned verifier 0.55, chosen with verifier_threshold on validation data (the verifier and the vetoes "
        "do the precision work); with verifier: rules or off use >= 0.92 (see benchmarks/RESULTS.md)",
    )
    category_thresholds: dict[str, float] = Field(
        default_factory=dict, description="per-category threshold overriding similarity_threshold"
    )
    disabled_categories: tuple[str, ...] = Field(
        default=(), description="categories whose requests never use the cache (neither lookup nor store)"
    )
    verifier: Literal["learned", "cross", "rules", "both", "off"] = Field(
        default="cross",
        description="how a candidate above the threshold is verified before it is served (default cross: on the "
        "held-out parts it hits 95.7% of chat paraphrases and 61.7% of equivalent English STS pairs against "
        "87.1% / 10.3% for learned, with every near-miss kind <= 3.7%; a decided hit costs a few ms more: "
        "benchmarks/RESULTS.md, eighth session): learned = the ONNX "
        "pair classifier (verifier_model) must score >= verifier_threshold; cross = the cross-encoder "
        "(cross_model, both prompts in one input) must score >= cross_threshold, with the verifier_veto families "
        "and accept_equivalent as for learned; rules = reject differing numbers, "
        "negation, antonyms, names (verify.py); both = learned and rules; off = cosine only. The legacy key "
        "`verify: false` means off",
    )
    cross_model: str = Field(
        default="models/cache_verifier_cross.onnx",
        description="the cross-encoder verifier for verifier: cross (built by `make models`; its sidecar "
        "<name>.labels.json must say kind: cross_encoder); missing or unusable = a warning and the rules, with the "
        "threshold raised to at least fallback_similarity_threshold",
    )
    cross_threshold: float = Field(
        default=0.70, ge=0, le=1,
        description="minimum cross-encoder P(same answer) for a hit (verifier: cross), English and unknown-language "
        "prompts: 0.70, the training-time choice. 0.54 (modelbuild/cache_verifier/cross/choose.py: the most "
        "equivalent English STS validation pairs served with every near-miss kind <= 4%) serves looser rewordings: "
        "held out by source English STS 57.0 -> 64.5%, but qqp precision 71.8 -> 65.8% and English STS 'different' "
        "pairs 2.1 -> 4.1%, within-source negations 0.4 -> 2.0%: kept opt-in for deployments that prefer hits "
        "(benchmarks/RESULTS.md, eleventh session `cache13` and lead)",
    )
    cross_threshold_long: float = Field(
        default=0.70, ge=0, le=1,
        description="cross_threshold for a pair longer than the cross-encoder's training length (its sidecar's "
        "max_len, 96 tokens; the higher of the two applies): 0.70, the training-time choice. With cross_threshold "
        "lowered to 0.54 (chosen on short validation pairs), held-out long prompts (97-256 tokens) were served one "
        "more sibling swap per band; this keeps them at 0.70 (benchmarks/RESULTS.md, eleventh session `cache13`)",
    )
    cross_threshold_other_languages: float = Field(
        default=0.88, ge=0, le=1,
        description="cross_threshold for a prompt the language signal detects as not English; chosen on validation "
        "STS pairs in 10 languages (every language's false hits <= 5%, pooled <= 2%)",
    )
    cross_guard_threshold: float = Field(
        default=0.0, ge=0, le=1,
        description="verifier: cross also asks the bi-encoder verifier (verifier_model) about each candidate the "
        "cross-encoder scores; under this P(same answer) the candidate's score is capped at the bi-encoder's (two "
        "models must agree). 0 = off (the default): at 0.40, the value chosen on validation, the test part lost 8 "
        "points of English STS hits and kept 9.4% false hits on negations from unseen origins (9.5% without; "
        "benchmarks/RESULTS.md, eighth session `cache9`); a missing verifier_model = a warning and no guard",
    )
    cross_long_substitution_words: int = Field(
        default=2, ge=0, le=20,
        description="verifier: cross refuses (score 0, no model run) a pair longer than the cross-encoder was trained "
        "on (its sidecar's max_len, 96 tokens) whose prompts differ in one run of at most this many words each, "
        "everything else equal (one term swapped: PostgreSQL/MySQL, GET/POST; a one-letter typo excepted); 0 = "
        "off. The model served such swaps more often the more shared context surrounded them (benchmarks/"
        "RESULTS.md, ninth session `cache10`)",
    )
    cross_short_substitution_words: int = Field(
        default=2, ge=0, le=20,
        description="cross_long_substitution_words for pairs of at most the cross-encoder's training length (96 "
        "tokens): a short pair whose prompts differ in one run of at most this many words each scores 0 unless the "
        "swap is answer-neutral (a one-letter typo, case, an inflection, shorthand, function or politeness words) "
        "or a near-synonym (cross_substitution_synonym_cosine); 0 = off. 2 (with the near-synonym exception at 0.6 / "
        "0.7, the setting chosen on validation): one-word entity / word / number swaps of exam and coding prompts "
        "served 0-0.3% instead of 31-57%, sibling terms 10.3%; the cost is one-word synonym rewordings (chat 82 -> "
        "58%) and English STS pairs 61.7 -> 57.0% (benchmarks/RESULTS.md, ninth session `cache11` and the lead's "
        "note after it)",
    )
    cross_substitution_synonym_cosine: float | None = Field(
        default=0.6, ge=0, le=1,
        description="a substitution refused by cross_long_substitution_words / cross_short_substitution_words is "
        "scored by the cross-encoder as usual when it is a near-synonym (\"quick\" / \"fast\"): neither run names "
        "something (capitalised mid-sentence or mixed case), both hold the same relation, question, scope and "
        "pronoun words (\"to\" / \"from\", \"his\" / \"her\" are never near-synonyms), the embedding model's "
        "cosine of the two runs alone (one batch) is at least this, and the cross-encoder scores the two runs alone "
        "at least "
        "cross_substitution_synonym_score; null = no exception",
    )
    cross_substitution_synonym_score: float = Field(
        default=0.7, ge=0, le=1,
        description="the cross-encoder's P(same answer) of a substitution's two runs alone for the near-synonym "
        "exception (cross_substitution_synonym_cosine; 0 = the cosine alone decides)",
    )
    cross_substitution_synonym_probability: float | None = Field(
        default=0.6, ge=0, le=1,
        description="with cross_substitution_synonym_cosine set, a near-synonym must also have at least this "
        "probability from the near-synonym model (semrouter/cache/near_synonym.py: how the embedding model reads the "
        "two runs in a question and in a phrase that joins them; siblings and converses such as landlord / tenant "
        "or top / bottom pass the cosine and score but not this); 8 short texts per substitution in the same "
        "embedding batch; null = off (0.6: the validation choice, default since the tenth session)",
    )
    cross_top_k: int = Field(
        default=3, ge=1, le=100,
        description="most candidates the cross-encoder scores per lookup (best cosine first, among those the "
        "score decides: vetoes passed, not an answer-neutral rewording); further ones are refused (score 0)",
    )
    multilingual: MultilingualCacheConfig = Field(
        default_factory=MultilingualCacheConfig,
        description="non-English prompts embedded and verified in a space per language (multilingual-e5-small)",
    )
    verifier_model: str = Field(
        default="models/cache_verifier.onnx",
        description="the learned verifier (built by `make models`); missing or unusable = a warning and the rules, "
        "with the threshold raised to at least fallback_similarity_threshold",
    )
    verifier_threshold: float = Field(
        default=0.94, ge=0, le=1,
        description="minimum learned score P(same answer) for a hit (0.94 with similarity_threshold 0.55: chosen "
        "on validation data so that no near-miss kind exceeds 4% false hits; higher = more precise, fewer hits; "
        "per-kind numbers in benchmarks/RESULTS.md)",
    )
    verifier_threshold_other_languages: float = Field(
        default=0.90, ge=0, le=1,
        description="verifier_threshold for a prompt the language signal detects as a language other than English "
        "(not en, not und): the shared encoder is English-only, so non-English pairs score lower and English "
        "near-miss kinds do not bind there. 0.90: the lowest value where, on validation STS pairs in 10 languages, "
        "every language's false hits on 'different' pairs stay <= 5% and the pooled rate <= 2% (the issue's "
        "near-miss and unrelated limits); see benchmarks/RESULTS.md",
    )
    verifier_veto: tuple[Literal["numbers", "negation", "antonym", "units", "direction", "specific", "order"],
                         ...] = Field(
        default=("numbers", "antonym", "units", "negation", "direction", "order"),
        description="rule families of verify.py that still veto a hit under verifier: learned (both = all of "
        "them); these cost few true duplicates and catch near-misses the model rarely saw (per-kind numbers in "
        "benchmarks/RESULTS.md). Code and quoted text that differ always veto (verbatim.py)",
    )
    accept_equivalent: bool = Field(
        default=True,
        description="serve a candidate whose prompt is an answer-neutral rewording of the new one (same content "
        "words up to case, typos, chat shorthand, politeness, one moved phrase: semrouter/cache/equivalent.py) "
        "even when the learned score is under verifier_threshold; the vetoes and the cosine pre-filter still apply",
    )
    fallback_similarity_threshold: float = Field(
        default=0.92, ge=0, le=1,
        description="minimum cosine when the learned verifier is configured but unavailable (rules only)",
    )
    verify_vocabulary: str = Field(
        default="models/tokenizer.json",
        description="tokenizer.json whose whole words count as common (others are names, e.g. pandas vs polars); "
        "a missing file leaves the capitalisation/digit rules only",
    )
    search_limit: int = Field(default=5, ge=1, le=100, description="candidates fetched per similarity search")
    ttl_seconds: int = Field(default=3600, ge=1, description="entries older than this are never served")
    purge_interval_seconds: float = Field(
        default=60.0, gt=0, description="how often expired entries are deleted and max_entries enforced"
    )
    max_entries: int = Field(default=100_000, ge=1, description="entries kept; the oldest are evicted beyond it")
    eviction: Literal["fifo", "lru"] = Field(default="lru", description="which entries go first when full")
    lookup_timeout_ms: int = Field(
        default=50, ge=1, description="a lookup slower than this is abandoned (the request goes upstream)"
    )
    tenant_from: Literal["credential", "trusted_header"] = Field(
        default="credential", description="where the tenant comes from (docs/SECURITY.md, Tenants). credential: a "
        "keyed hash of the first credential_headers value (each API key is its own tenant; client-sent tenant "
        "headers are ignored); trusted_header: the value of tenant_header, ONLY when Envoy sets it from an "
        "authenticated identity (e.g. jwt_authn claim_to_headers) and overwrites client copies"
    )
    credential_headers: tuple[str, ...] = Field(
        default=("authorization", "x-api-key"), min_length=1,
        description="credential headers, in order (tenant_from: credential)",
    )
    tenant_header: str = Field(
        default="x-user-id", min_length=1,
        description="the header Envoy sets from an authenticated identity (tenant_from: trusted_header only)",
    )
    tenant_key_env: str = Field(
        default="SEMROUTER_TENANT_KEY",
        description="environment variable holding the key of the credential hash; unset = unkeyed (labels "
        "guessable offline for weak credentials; the router warns at start-up)",
    )
    allow_anonymous: bool = Field(
        default=True, description="requests without a tenant share the 'anonymous' tenant; false = not cached"
    )
    skip_pii: bool = Field(default=True, description="do not store answers to requests where PII was detected")
    skip_tools: bool = Field(default=False, description="do not cache requests that offer tools/functions")
    max_temperature: float = Field(
        default=1.0, ge=0, le=2,
        description="requests with a higher temperature (missing = 1.0, the API default) are not cached",
    )
    max_pending_stores: int = Field(default=256, ge=1, description="stores queued in the background before dropping")
    max_prompt_chars: int = Field(default=4000, ge=16, description="longer last messages are not cached")
    reconnect_initial_seconds: float = Field(default=0.5, gt=0, description="first back-off after a backend error")
    reconnect_max_seconds: float = Field(default=30.0, gt=0, description="longest back-off between reconnects")

    @model_validator(mode="before")
    @classmethod
    def _legacy_verify(cls, data: Any) -> Any:
        """`verify: false` (before `verifier` existed) = verifier off; `verify: true` = the default."""
        if isinstance(data, dict) and "verify" in data:
            data = dict(data)
            legacy = data.pop("verify")
            if not isinstance(legacy, bool):
                raise ValueError("verify: must be true or false (deprecated; use verifier)")
            if not legacy:
                data.setdefault("verifier", "off")
        return data

    @property
    def verify(self) -> bool:
        """Whether candidates are verified at all (verifier != off)."""
        return self.verifier != "off"

    @field_validator("tenant_from", mode="before")
    @classmethod
    def _tenant_from(cls, v: Any) -> Any:
        if v == "authorization_hash":  # the old name of credential
            return "credential"
        if v == "header":
            raise ValueError("'header' trusted whatever tenant header a client sent and is gone; use 'credential' "
                             "(the default: a hash of the API key), or 'trusted_header' when Envoy sets "
                             "tenant_header from an authenticated identity (docs/SECURITY.md, Tenants)")
        return v

    @field_validator("tenant_header")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()

    @field_validator("credential_headers")
    @classmethod
    def _lower_all(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(h.strip().lower() for h in v)
        if not all(out):
            raise ValueError("header names must not be empty")
        return out

    @field_validator("category_thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        for k, t in v.items():
            if not 0 <= t <= 1:
                raise ValueError(f"category_thresholds[{k!r}] = {t}: must be between 0 and 1")
        return {k.strip().lower(): t for k, t in v.items()}

    @field_validator("disabled_categories")
    @classmethod
    def _cats(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(c.strip().lower() for c in v)

    @model_validator(mode="after")
    def _backoff(self) -> CacheConfig:
        if self.reconnect_max_seconds < self.reconnect_initial_seconds:
            raise ValueError("reconnect_max_seconds must be >= reconnect_initial_seconds")
        return self

    def threshold_for(self, category: str | None) -> float:
        if category is not None:
            return self.category_thresholds.get(category.lower(), self.similarity_threshold)
        return self.similarity_threshold

    @property
    def model_verified(self) -> bool:
        """Whether a model scores candidates (verifier learned, both or cross)."""
        return self.verifier in ("learned", "both", "cross")

    def verifier_threshold_for(self, language: str | None) -> float:
        """The model verifier's threshold (cross_* for verifier: cross) for a prompt in `language` (ISO 639-1,
        "und" or None = unknown)."""
        other = bool(language) and language not in ("en", "und")
        if self.verifier == "cross":
            return self.cross_threshold_other_languages if other else self.cross_threshold
        return self.verifier_threshold_other_languages if other else self.verifier_threshold

    def category_enabled(self, category: str | None) -> bool:
        return category is None or category.lower() not in self.disabled_categories
