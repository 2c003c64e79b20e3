"""Non-English prompts in their language's space (cache.multilingual) end to end through Envoy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import served_from_cache as _hit, start_stack, store_in_cache as _stored
from semrouter.devstack import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not (ROOT / "models" / "e5" / "encoder.int8.onnx").exists(),
                                                  reason="models/e5 not built: run `make models`")]


def _cli(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "semrouter", "cache", *args], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_spanish_paraphrase_hits_spanish_entry_and_never_crosses_languages(tmp_path: Path) -> None:
    stack, c = start_stack(tmp_path, {"cache.milvus.uri": str(tmp_path / "m" / "cache.db"),
                                      "cache.lookup_timeout_ms": 2000})
    try:
        es = {"authorization": "Bearer spanish"}
        _stored(c, "¿Cuáles son los beneficios de beber agua todos los días?", es)
        _stored(c, "¿Es seguro comer huevos crudos?", es)
        assert _hit(c, "¿Qué beneficios tiene beber agua todos los días?", es)  # a paraphrase, same language
        assert not _hit(c, "¿No es seguro comer huevos crudos?", es)  # negated
        assert not _hit(c, "What are the benefits of drinking water every day?", es)  # English never gets Spanish
        mixed = {"authorization": "Bearer mixed"}
        _stored(c, "What are the benefits of drinking water every day?", mixed)
        assert not _hit(c, "¿Cuáles son los beneficios de beber agua todos los días?", mixed)  # nor the reverse
        router = f"127.0.0.1:{stack.port(50052)}"
        st = _cli("stats", "--router", router)
        counters = st.get("counters") or json.loads(st["details"]["counters"])
        assert counters["hits_multilingual"] >= 1 and counters["stores_multilingual"] >= 3
        from semrouter.cache.config import CacheConfig
        from semrouter.cache.keys import tenancy
        out = _cli("explain", "¿Qué beneficios tiene beber agua todos los días?", "--tenant",
                   tenancy(CacheConfig()).tenant(es), "--router", router)
        assert out["space"] == "e5:es" and out["verdict"] == "hit"
    finally:
        stack.stop()


def test_a_translation_into_another_language_misses_in_the_space(tmp_path: Path) -> None:
    """In a language space only the e5 cosine and the vetoes decide (no cross-encoder): asking for a translation into
    German instead of French scored e5 0.977 and was served the French translation (review13). The `languages`
    family vetoes two prompts that name different languages; a reworded request for the same language still hits."""
    stack, c = start_stack(tmp_path, {"cache.milvus.uri": str(tmp_path / "m" / "cache.db"),
                                      "cache.lookup_timeout_ms": 2000})
    try:
        es = {"authorization": "Bearer spanish"}
        _stored(c, "Por favor, traduce al francés esta frase: buenos días, ¿cómo estás?", es)
        assert not _hit(c, "Por favor, traduce al alemán esta frase: buenos días, ¿cómo estás?", es)
        assert not _hit(c, "Por favor, traduce al italiano esta frase: buenos días, ¿cómo estás?", es)
        assert _hit(c, "Por favor traduce al francés esta frase: buenos días, ¿cómo estás?", es)
    finally:
        stack.stop()
