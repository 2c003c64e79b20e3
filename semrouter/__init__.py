"""semrouter: a semantic router for LLM traffic, served as an Envoy ext_proc service."""

__version__ = "0.1.0"
