"""ONNX Runtime signals: tokenizer, encoder, heads, micro-batcher and the `OnnxAnalyzer`."""

from semrouter.signals.onnx.manifest import ModelDirError

__all__ = ["ModelDirError"]
