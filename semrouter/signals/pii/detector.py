"""PIIDetector: validated patterns for structured types + the learned head for names and addresses.

`detect` is synchronous CPU work (regexes and one small ONNX run, well under a millisecond for
a chat prompt): call it from the Analyzer's executor thread, not on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import structlog

from semrouter.signals.pii.config import LEARNED_TYPES, PIIConfig
from semrouter.signals.pii.head import HEAD_FILE, LABELS_FILE, PIIHead
from semrouter.signals.pii.names import NAMES_FILE, NameGazetteer
from semrouter.signals.pii.patterns import detect_patterns, resolve_overlaps
from semrouter.signals.pii.person import person_counts
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
        self._person_threshold = (cfg.person_model_threshold if cfg.person_model_threshold is not None
                                  else person_model.threshold if person_model is not None else 1.0)
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
        """
        if not self.cfg.enabled or not text:
            return []
        found = detect_patterns(text, self._structured) if self._structured else []
        if self.wants_token_embeddings and token_embeddings is not None and offsets is not None:
            assert self.head is not None
            learned = self.head.entities(text, token_embeddings, offsets, self.cfg.min_score)
            found.extend(e for e in learned if e.type in self._learned)
        found = resolve_overlaps(found)
        if self._learned:
            learned = None
            if (self.person_model is not None and token_embeddings is not None and offsets is not None
                    and any(e.type == "PERSON" for e in found)):
                learned = self._span_check(text, found, token_embeddings, offsets)
            found = person_counts(text, found, language, self.cfg.person_requires_context, self.cfg.head_languages,
                                  self.names, learned)
        return found

    def _span_check(self, text: str, found: list[PIIEntity], token_embeddings: np.ndarray,
                    offsets: list[tuple[int, int]]) -> Callable[[PIIEntity], bool]:
        """The `person_model` evidence for the PERSON spans of `found` (features of person_model.py)."""
        model, names = self.person_model, self._lexicon
        assert model is not None
        states: list[TextStates] = []  # built on the first name that needs it (most have a cue or none at all)

        def accept(e: PIIEntity) -> bool:
            if not states:
                states.append(TextStates.of(text, token_embeddings, offsets, sum(f.type == "PERSON" for f in found),
                                            any(f.type != "PERSON" for f in found)))
            return model.prob(span_features(states[0], e.start, e.end, e.score, names)) >= self._person_threshold

        return accept
