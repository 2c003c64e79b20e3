"""PIIDetector: validated patterns for structured types + the learned head for names and addresses.

`detect` is synchronous CPU work (regexes and one small ONNX run, well under a millisecond for
a chat prompt): call it from the Analyzer's executor thread, not on the event loop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import structlog

from semrouter.signals.pii.candidates import person_candidates
from semrouter.signals.pii.config import LEARNED_TYPES, PIIConfig
from semrouter.signals.pii.head import HEAD_FILE, LABELS_FILE, PIIHead
from semrouter.signals.pii.names import NAMES_FILE, NameGazetteer
from semrouter.signals.pii.patterns import detect_patterns, resolve_overlaps
from semrouter.signals.pii.person import person_counts, trusted_language
from semrouter.signals.pii.person_model import PERSON_MODEL_FILE, PersonModel, TextStates, span_features
from semrouter.signals.types import PIIEntity

log = structlog.get_logger(__name__)


class PIIDetector:
    """Finds PII in one text. Immutable after construction; safe to share across threads."""

    def __init__(self, cfg: PIIConfig, head: PIIHead | None, names: NameGazetteer | None = None,
                 person_model: PersonModel | None = None) -> None:
        self.cfg = cfg
        self.head = head
        self.names = names if cfg.person_requires_context and cfg.person_full_names else None
        self._lexicon = names  # the span check reads census evidence whatever person_full_names says
        self.person_model = person_model if cfg.person_requires_context and cfg.person_model else None
        if self.person_model is not None and self._lexicon is None:
            raise ValueError("signals.pii.person_model needs the name lists (pii_names.json) for its features")
        model_threshold = (None if person_model is None else person_model.threshold if cfg.person_candidates
                           else person_model.threshold_without_candidates)
        self._person_threshold = (cfg.person_model_threshold if cfg.person_model_threshold is not None
                                  else model_threshold if model_threshold is not None else 1.0)
        # extra candidates (candidates.py) need the model's own threshold for them, or the override plus its margin
        model_extra = person_model.extra_threshold if person_model is not None else None
        self._extra_threshold = (None if model_extra is None or not cfg.person_candidates or self.person_model is None
                                 else self._person_threshold + (model_extra - person_model.threshold))
        self._floor = (cfg.person_candidate_floor if cfg.person_candidate_floor is not None
                       else person_model.candidate_floor if person_model is not None else 1.01)
        self._capitalised = person_model.capitalised_runs if person_model is not None else False
        self._types = frozenset(cfg.types)
        self._structured = self._types - LEARNED_TYPES
        self._learned = self._types & LEARNED_TYPES

    @classmethod
    def load(cls, model_dir: str | Path, cfg: PIIConfig) -> PIIDetector:
        """Load the head from `model_dir` (pii_head.onnx + pii_head.labels.json) when it is needed, the name
        gazetteer (pii_names.json) when PERSON is reported under the `person_full_names` or `person_model` policy,
        and the learned span check (pii_person.json) under `person_model`.

        Raises FileNotFoundError when PERSON/STREET_ADDRESS are configured but the head (or, for a policy, its
        file) is missing, so a broken model directory is noticed at start-up rather than silently ignored.
        """
        model_dir = Path(model_dir)
        head = names = model = None
        if cfg.enabled and cfg.types and set(cfg.types) & LEARNED_TYPES:
            policy = "PERSON" in cfg.types and cfg.person_requires_context
            wants_model = policy and cfg.person_model
            wants_names = policy and (cfg.person_full_names or cfg.person_model)
            needed = (HEAD_FILE, LABELS_FILE, *((NAMES_FILE,) if wants_names else ()),
                      *((PERSON_MODEL_FILE,) if wants_model else ()))
            missing = [n for n in needed if not (model_dir / n).is_file()]
            if missing:
                raise FileNotFoundError(
                    f"PII head files {missing} not in {model_dir}; run `make models` or drop "
                    f"{sorted(LEARNED_TYPES)} from signals.pii.types"
                )
            head = PIIHead.load(model_dir)
            names = NameGazetteer.load(model_dir) if wants_names else None
            model = PersonModel.load(model_dir) if wants_model else None
            log.info("pii_head_loaded", model_dir=str(model_dir), labels=list(head.labels),
                     full_names=None if names is None else len(names.first) + len(names.last),
                     person_model=None if model is None else model.threshold)
        return cls(cfg, head, names, model)

    @property
    def wants_token_embeddings(self) -> bool:
        """True when detect() uses token embeddings (skip passing them otherwise)."""
        return self.cfg.enabled and self.head is not None and bool(self._learned)

    def detect(
        self,
        text: str,
        token_embeddings: np.ndarray | None,
        offsets: list[tuple[int, int]] | None,
        language: str | None = None,
    ) -> list[PIIEntity]:
        """Entities sorted by position, non-overlapping (validated structured matches win overlaps).

        `token_embeddings` [T,dim] and `offsets` (char span per token, (0,0) for specials) are the
        encoder's output for `text` without padding; when either is None only the patterns run.
        `language` is the language signal's ISO 639-1 code (None: not detected); with the PERSON policy
        (`person_requires_context`, `head_languages`) it decides which names count (signals/pii/person.py).
        With `person_candidates` (and a span check trained with them), words the head's decoding left out are
        proposed too (candidates.py) and count only when the span check scores them at the extra threshold.
        Raises ValueError when `token_embeddings` is not [len(offsets), dim].
        """
        if not self.cfg.enabled or not text:
            return []
        found = detect_patterns(text, self._structured) if self._structured else []
        probs = None
        if self.wants_token_embeddings and token_embeddings is not None and offsets is not None:
            assert self.head is not None
            if token_embeddings.ndim != 2 or token_embeddings.shape[0] != len(offsets):
                raise ValueError(f"token_embeddings {token_embeddings.shape} must be [T,dim] with T == len(offsets) "
                                 f"== {len(offsets)}")
            if len(offsets):
                probs = self.head.probs(token_embeddings)
                learned = self.head.decode(text, probs, offsets, self.cfg.min_score)
                found.extend(e for e in learned if e.type in self._learned)
        found = resolve_overlaps(found)
        if self._learned:
            check = extras = None
            if self.person_model is not None and token_embeddings is not None and offsets is not None:
                check = self._span_check(text, found, token_embeddings, offsets, probs)
                if (probs is not None and self._extra_threshold is not None and "PERSON" in self._learned
                        and trusted_language(language, self.cfg.head_languages)):
                    assert self.head is not None
                    extras = person_candidates(text, probs, offsets, self.head.labels, self._floor, found,
                                               self._capitalised)
            found = person_counts(text, found, language, self.cfg.person_requires_context, self.cfg.head_languages,
                                  self.names, check.accepts if check is not None else None)
            if extras and check is not None and self._extra_threshold is not None:
                threshold = self._extra_threshold  # an extra candidate counts by the span check alone
                kept = [e for e in extras if check.prob(e, extra=True) >= threshold]
                if kept:
                    found = sorted([*found, *kept], key=lambda e: e.start)
        return found

    def _span_check(self, text: str, found: list[PIIEntity], token_embeddings: np.ndarray,
                    offsets: list[tuple[int, int]], probs: np.ndarray | None) -> _Check:
        """The `person_model` evidence for PERSON spans of `text` (features of person_model.py; `found`: what the
        patterns and the head's decoding found, before the policy; `probs` [T,K]: the head's label probabilities)."""
        return _Check(self, text, found, token_embeddings, offsets, probs)


class _Check:
    """The span check of one text: the probability of any span, and whether a name of the head's counts."""

    def __init__(self, det: PIIDetector, text: str, found: list[PIIEntity], token_embeddings: np.ndarray,
                 offsets: list[tuple[int, int]], probs: np.ndarray | None) -> None:
        self._det, self._text, self._found = det, text, found
        self._emb, self._offsets, self._probs = token_embeddings, offsets, probs
        self._states: TextStates | None = None  # built on the first span that needs it (most have a cue or none)

    def prob(self, e: PIIEntity, extra: bool = False) -> float:
        """P(real person) of the span `e`."""
        if self._states is None:
            f = self._found
            head = self._det.head
            self._states = TextStates.of(self._text, self._emb, self._offsets, sum(x.type == "PERSON" for x in f),
                                         any(x.type != "PERSON" for x in f), self._probs,
                                         head.labels if head is not None else ())
        model = self._det.person_model
        assert model is not None
        return model.prob(span_features(self._states, e.start, e.end, e.score, self._det._lexicon, extra,
                                        model.version))

    def accepts(self, e: PIIEntity) -> bool:
        """The head's name `e` counts by the check (person.py's `learned`)."""
        return self.prob(e) >= self._det._person_threshold
