"""The built model directory: parity recorded, manifest refuses mismatches, build is idempotent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from semrouter.signals.config import SignalsConfig
from semrouter.signals.onnx.analyzer import OnnxAnalyzer
from semrouter.signals.onnx.manifest import ModelDirError, load_manifest
from tests.onnx_models import ensure_models


@pytest.fixture(scope="module")
def models() -> Path:
    return ensure_models()


def _linked_copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir():
        if p.name == "manifest.json":
            shutil.copyfile(p, dst / p.name)
        else:
            (dst / p.name).symlink_to(p.resolve())
    return dst


def test_manifest_records_parity_and_heads(models: Path) -> None:
    m = load_manifest(models)
    parity = m.raw["parity"]["min_cosine_vs_torch"]
    assert parity["encoder.onnx"] >= 0.99
    assert parity["encoder.int8.onnx"] >= 0.99
    assert m.embedding_dim == 384
    assert len(m.heads["category_head"]) == 14 and "law" in m.heads["category_head"]
    assert m.heads["jailbreak_head"] == ["jailbreak", "injection", "harmful"]
    assert m.raw["build_key"] and m.raw["versions"]["onnxruntime"]


def test_build_is_idempotent(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from modelbuild.build_all import build

    before = (models / "manifest.json").read_text()
    build(models)
    assert "up to date" in capsys.readouterr().out
    assert (models / "manifest.json").read_text() == before


def test_modified_file_is_refused(models: Path, tmp_path: Path) -> None:
    d = _linked_copy(models, tmp_path / "m")
    (d / "tokenizer.json").unlink()
    (d / "tokenizer.json").write_text((models / "tokenizer.json").read_text() + " ")
    with pytest.raises(ModelDirError, match="does not match the sha256"):
        load_manifest(d)


def test_missing_file_and_wrong_dim_are_refused(models: Path, tmp_path: Path) -> None:
    d = _linked_copy(models, tmp_path / "m")
    (d / "category_head.onnx").unlink()
    with pytest.raises(ModelDirError, match="missing"):
        load_manifest(d)
    d2 = _linked_copy(models, tmp_path / "m2")
    raw = json.loads((d2 / "manifest.json").read_text())
    raw["embedding_dim"] = 256
    (d2 / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ModelDirError, match="embedding_dim"):
        load_manifest(d2)
    with pytest.raises(ModelDirError, match="not found"):
        load_manifest(tmp_path / "nothing-here")


async def test_analyzer_refuses_bad_directory(models: Path, tmp_path: Path) -> None:
    d = _linked_copy(models, tmp_path / "m")
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(ModelDirError, match="not a valid manifest"):
        await OnnxAnalyzer.create(SignalsConfig(model_dir=str(d)), ())
