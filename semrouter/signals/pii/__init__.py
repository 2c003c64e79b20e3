"""PII detection: validated patterns for structured types, an ONNX head for names and addresses."""

from semrouter.signals.pii.config import ALL_TYPES, LEARNED_TYPES, PIIConfig
from semrouter.signals.pii.detector import PIIDetector
from semrouter.signals.pii.patterns import detect_patterns
from semrouter.signals.pii.policy import violations

__all__ = ["ALL_TYPES", "LEARNED_TYPES", "PIIConfig", "PIIDetector", "detect_patterns", "violations"]
