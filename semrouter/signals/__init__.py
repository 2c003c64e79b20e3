"""Signals computed per request: keyword rules, ONNX classifiers, safety checks."""
