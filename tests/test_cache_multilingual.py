"""Language spaces of the semantic cache (semrouter/cache/multilingual.py, `cache.multilingual`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from semrouter.cache import CacheConfig, SemanticCache
from semrouter.cache.keys import in_space
from semrouter.cache.testing import HashEmbedder, completion, put_answer, user_request
from semrouter.cache.verify import RULES, Verifier

H = {"x-user-id": "alice"}


class FakeE5(HashEmbedder):
    """Another encoder: the hashed bag of words, negated (its vectors are never those of the English one)."""

    def __init__(self) -> None:
        super().__init__(64)
        self.texts: list[str] = []

    async def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += list(texts)
        return -(await super().__call__(texts))


async def _cache(e5: FakeE5 | None, **over: Any) -> SemanticCache:
    cfg = CacheConfig.model_validate({"enabled": True, "backend": "memory", "dimension": 64, "verifier": "rules",
                                      "similarity_threshold": 0.9, "lookup_timeout_ms": 5000, **over})
    return await SemanticCache.create(cfg, HashEmbedder(64), maintenance=False, embed_multilingual=e5)


async def _store(cache: SemanticCache, text: str, language: str | None, answer: str) -> None:
    """Look `text` up (as the router does before forwarding), then store `answer` for it."""
    key = cache.key_for(user_request(text), H)
    assert key is not None
    hit, _ = await cache.lookup_with_reason(key, None, stage="semantic", language=language)
    assert hit is None
    cache.store_in_background(key, None, 200, "application/json", completion(answer), has_pii=False,
                              language=language)
    await cache.flush()


async def _ask(cache: SemanticCache, text: str, language: str | None) -> tuple[bytes | None, str]:
    key = cache.key_for(user_request(text), H)
    assert key is not None
    hit, reason = await cache.lookup_with_reason(key, None, stage="semantic", language=language)
    return (hit.body if hit else None), reason


async def test_a_spanish_prompt_hits_spanish_entries_only_and_one_e5_pass_serves_lookup_and_store() -> None:
    e5 = FakeE5()
    cache = await _cache(e5)
    await _store(cache, "¿Cuál es la capital de Argentina?", "es", "Buenos Aires")
    assert e5.texts == ["¿Cuál es la capital de Argentina?"]  # the store took the lookup's vector
    await put_answer(cache, "Cuál es la capital de Argentina", H, "english-path answer")  # English path, same words
    body, _ = await _ask(cache, "¿La capital de Argentina cuál es?", "es")
    assert body is not None and b"Buenos Aires" in body
    # the same words detected as English (or unknown) never reach the Spanish entry, nor the reverse
    body, _ = await _ask(cache, "¿La capital de Argentina cuál es?", "en")
    assert body is not None and b"english-path" in body
    body, _ = await _ask(cache, "¿La capital de Argentina cuál es?", None)
    assert body is not None and b"english-path" in body
    # another language's space is another scope: a French prompt is never served the Spanish answer
    body, reason = await _ask(cache, "¿La capital de Argentina cuál es?", "fr")
    assert body is None and reason == "no_candidates"
    stats = (await cache.stats())["counters"]
    assert stats["stores_multilingual"] == 1 and stats["hits_multilingual"] == 1 and stats["lookups_multilingual"] == 3
    await cache.close()


async def test_an_exact_repeat_is_found_in_its_space() -> None:
    cache = await _cache(FakeE5())
    await _store(cache, "Wie hoch ist die Einwohnerzahl von Berlin?", "de", "3,7 Millionen")
    key = cache.key_for(user_request("Wie hoch ist die Einwohnerzahl von Berlin?"), H)
    assert key is not None
    hit, _ = await cache.lookup_with_reason(key, None, stage="semantic", language="de")
    assert hit is not None and hit.exact
    await cache.close()


async def test_digits_and_negation_veto_in_a_space() -> None:
    cache = await _cache(FakeE5(), **{"multilingual": {"threshold": 0.5}})
    await _store(cache, "¿Es seguro comer huevos crudos?", "es", "depende")
    await _store(cache, "La galaxia M31 está lejos", "es", "sí")
    assert (await _ask(cache, "¿No es seguro comer huevos crudos?", "es")) == (None, "negation")
    assert (await _ask(cache, "La galaxia M33 está lejos", "es")) == (None, "digits")
    await cache.close()


async def test_an_english_prompt_taken_for_another_language_keeps_the_english_vetoes() -> None:
    """The language signal detects "How do I convert Celsius to Fahrenheit?" as German: in the e5:de space the swap
    scored 0.996 and only digits and negation vetoed."""
    cache = await _cache(FakeE5())
    await _store(cache, "How do I convert Celsius to Fahrenheit?", "de", "multiply by 9/5, add 32")
    body, reason = await _ask(cache, "How do I convert Fahrenheit to Celsius?", "de")
    assert body is None and reason in ("units", "direction")  # the English families apply in the space too
    await cache.close()


async def test_without_the_multilingual_encoder_every_prompt_uses_the_english_path() -> None:
    for cache in (await _cache(None), await _cache(FakeE5(), **{"multilingual": {"enabled": False}})):
        await put_answer(cache, "Cuál es la capital de Argentina", H, "english-path answer")
        body, _ = await _ask(cache, "¿La capital de Argentina cuál es?", "es")
        assert body is not None and b"english-path" in body
        assert "lookups_multilingual" not in (await cache.stats())["counters"]
        await cache.close()


async def test_explain_names_the_space_and_its_threshold() -> None:
    cache = await _cache(FakeE5())
    await _store(cache, "¿Cuál es la capital de Argentina?", "es", "Buenos Aires")
    key = cache.key_for(user_request("¿La capital de Argentina cuál es?"), H)
    assert key is not None
    out = await cache.explain(key, language="es")
    assert out["space"] == "e5:es" and out["threshold"] == CacheConfig().multilingual.threshold
    assert out["verdict"] == "hit" and out["candidates"][0]["verifier_score"] is None
    assert (await cache.explain(key))["space"] == ""
    await cache.close()


def test_a_space_is_another_scope() -> None:
    from semrouter.cache.types import CacheKey

    k = CacheKey("t", "m", "c" * 64, "p" * 64, "hola", "h" * 64)
    assert in_space(k, "") == k
    es, fr = in_space(k, "e5:es"), in_space(k, "e5:fr")
    assert len({k.scope, es.scope, fr.scope}) == 3 and len(es.params_hash) == 64
    assert es.prompt_hash == k.prompt_hash


def test_config_names_the_key_and_the_fix() -> None:
    with pytest.raises(ValidationError, match="cache.multilingual.languages.*English path"):
        CacheConfig.model_validate({"multilingual": {"languages": ["es", "en"]}})
    with pytest.raises(ValidationError):
        CacheConfig.model_validate({"multilingual": {"veto": ["colour"]}})
    assert CacheConfig().multilingual.veto == ("digits", "languages", "numbers", "negation", "antonym", "units",
                                               "direction", "order")


def test_negation_markers_of_portuguese_japanese_chinese_and_digit_runs() -> None:
    v = Verifier()
    assert v.check("O café não faz bem para a saúde?", "O café faz bem para a saúde?").reason == "negation"
    assert v.check("コーヒーは体に良くないですか？", "コーヒーは体に良いですか？").reason == "negation"
    assert v.check("为什么我的手机不能充电？", "为什么我的手机能充电？").reason == "negation"
    assert v.check("アンドロメダ銀河(M31)", "アンドロメダ銀河(M33)", ("digits",)).reason == "digits"
    assert v.check("ｐｐ１２３", "pp123", ("digits",)).ok  # full-width digits fold
    assert "digits" not in RULES  # `rules` / `both` mode keep their families


def test_the_languages_family_reads_language_names_in_every_spaces_language() -> None:
    """Two prompts that name different languages (a translation target, in the prompt's own language) differ;
    a language named in only one of them (a nationality beside a country) does not veto."""
    v = Verifier()
    swaps = [("Traduce al francés: buenos días", "Traduce al alemán: buenos días"),
             ("Übersetze ins Englische: guten Morgen", "Übersetze ins Französische: guten Morgen"),
             ("Переведи на английский: доброе утро", "Переведи на немецкий: доброе утро"),
             ("Przetłumacz na angielski: dzień dobry", "Przetłumacz na hiszpański: dzień dobry"),
             ("この文を英語に翻訳してください", "この文を中国語に翻訳してください"),
             ("把这句话翻译成英语", "把这句话翻译成法语")]
    for a, b in swaps:
        assert v.check(a, b, rules=("languages",)).reason == "languages", (a, b)
        assert v.check(a, a, rules=("languages",)).ok
    assert v.check("El ejército ruso cruzó el río", "El ejército de Rusia cruzó el río", rules=("languages",)).ok
    assert "languages" not in RULES  # English prompts keep their own families (and the cross-encoder)


async def test_a_translation_target_swap_is_refused_in_a_space() -> None:
    cache = await _cache(FakeE5(), **{"multilingual": {"threshold": 0.5}})
    await _store(cache, "Traduce al francés: buenos días", "es", "Bonjour")
    assert (await _ask(cache, "Traduce al alemán: buenos días", "es")) == (None, "languages")
    await cache.close()
