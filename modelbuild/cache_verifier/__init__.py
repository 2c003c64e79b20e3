"""Learned semantic-cache hit verifier: embeddings, features, training, ONNX export."""
