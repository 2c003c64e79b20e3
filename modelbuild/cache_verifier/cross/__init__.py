"""Cross-encoder cache verifier: MiniLM-L6 + LoRA adapters + a small head, trained on the mix (train.py)."""
