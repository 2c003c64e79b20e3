"""Semantic cache: backends behind one interface, lookup and store policies.

Entry point: `SemanticCache.create(cfg.cache, embed)`; see semantic.py for the request-path API,
keys.py for what is cached and how it is scoped, verify.py for near-miss rejection.
"""

from semrouter.cache.config import CacheConfig, MilvusConfig
from semrouter.cache.semantic import SemanticCache
from semrouter.cache.types import CacheBackendError, CacheHit, CacheKey, CacheSchemaError, Embedder

__all__ = ["CacheBackendError", "CacheConfig", "CacheHit", "CacheKey", "CacheSchemaError", "Embedder",
           "MilvusConfig", "SemanticCache"]
