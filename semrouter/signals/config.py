"""Configuration of the model-based signals (ONNX encoder, heads, PII)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from semrouter.signals.pii.config import PIIConfig


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JailbreakOverride(_Cfg):
    """Per-category jailbreak setting (category = the request's routed category)."""

    enabled: bool = Field(default=True, description="off: requests of this category are not checked")
    threshold: float | None = Field(
        default=None, ge=0, le=1, description="probability at or above which it counts as a jailbreak; None = global"
    )


class JailbreakConfig(_Cfg):
    enabled: bool = Field(default=True, description="score every request with the jailbreak head")
    threshold: float = Field(
        default=0.42,
        ge=0,
        le=1,
        description="probability at or above which a request counts as a jailbreak (0.42: recall 92%, FPR 1.1% on the held-out set)",
    )
    block: bool = Field(default=True, description="refuse detected jailbreaks (false: only report/log them)")
    category_overrides: dict[str, JailbreakOverride] = Field(
        default_factory=dict, description="per-category enable/threshold, keyed by category name"
    )

    def threshold_for(self, category: str | None) -> float | None:
        """The threshold that applies to a request of `category`, or None when it is not checked."""
        if not self.enabled:
            return None
        o = self.category_overrides.get(category.lower()) if category else None
        if o is None:
            return self.threshold
        if not o.enabled:
            return None
        return self.threshold if o.threshold is None else o.threshold


class ClassifierConfig(_Cfg):
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="minimum category probability to trust the classifier's label"
    )
    prototype_temperature: float = Field(
        default=0.05, gt=0, le=1, description="softmax temperature over cosine similarities (operator categories)"
    )


class SignalsConfig(_Cfg):
    enabled: bool = Field(default=True, description="off: only keyword rules decide (no ONNX session is loaded)")
    model_dir: str = Field(default="models", description="directory built by `make models` (has manifest.json)")
    precision: Literal["int8", "fp32"] = Field(default="int8", description="which encoder variant to run")
    max_tokens: int = Field(
        default=256, ge=16, le=512, description="longer prompts keep their first and last tokens (head+tail)"
    )
    intra_op_threads: int = Field(default=1, ge=1, le=64, description="ONNX Runtime threads per encoder run")
    spin_wait: Literal["off", "run", "always"] = Field(
        default="off",
        description="with intra_op_threads >= 2, let the encoder's worker threads busy-wait for their share of each "
        "operator instead of sleeping: `run` only while an encoder run is in progress (they sleep between runs), "
        "`always` also between runs (burns a core while idle); true/false mean always/off. See benchmarks/RESULTS.md",
    )

    @field_validator("spin_wait", mode="before")
    @classmethod
    def _spin_bool(cls, v: object) -> object:
        return {True: "always", False: "off"}.get(v, v) if isinstance(v, bool) else v

    graph_optimization: Literal["disable", "basic", "extended", "all"] = Field(
        default="all", description="ONNX Runtime graph optimisation level"
    )
    batch_max_size: int = Field(default=16, ge=1, le=256, description="most requests per encoder run")
    batch_max_wait_ms: float = Field(
        default=2.0,
        ge=0,
        le=100,
        description="longest a request waits for others to share its encoder run (only under concurrency)",
    )
    jailbreak: JailbreakConfig = Field(default_factory=JailbreakConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    complexity: bool = Field(default=True, description="score complexity when complexity_head.onnx is present")
    pii: PIIConfig = Field(default_factory=PIIConfig)
