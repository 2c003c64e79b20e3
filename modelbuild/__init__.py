"""Build-time scripts that produce the ONNX models under `models/` (torch/transformers live here only)."""
