"""Config schema: the shipped files validate; bad ones are refused with the key and the fix named."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from semrouter.cli import main as cli_main
from semrouter.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [ROOT / "config" / "semrouter.yaml", ROOT / "config" / "semrouter.example.yaml"]


def base() -> dict:
    return {
        "routing": {"default_model": "small"},
        "models": [{"name": "small", "endpoints": [{"address": "127.0.0.1", "port": 8001}]},
                   {"name": "big", "endpoints": [{"address": "127.0.0.1", "port": 8002}]}],
        "categories": [{"name": "Math", "model_scores": [{"model": "big", "score": 0.9}]}],
        "keyword_rules": [{"name": "m", "category": "math", "keywords": ["integral"]}],
    }


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.model(cfg.routing.default_model) is not None


def test_defaults_and_normalisation() -> None:
    cfg = parse_config(base())
    assert cfg.routing.auto_model_names == ("auto", "MoM")
    assert cfg.categories[0].name == "math"  # lower-cased as configured labels are compared
    assert cfg.server.listen == "127.0.0.1:50051"
    assert cfg.models[1].cluster_name == "big"


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["routing"].update(default_model="nope"), "routing.default_model: 'nope' is not a configured model"),
    (lambda d: d["models"][0]["endpoints"][0].update(port=70000), "models[0].endpoints[0].port"),
    (lambda d: d["models"][0].update(endpoints=[]), "models[0].endpoints"),
    (lambda d: d["routing"].update(defualt_model="x"), "routing.defualt_model: unknown key"),
    (lambda d: d["categories"][0]["model_scores"][0].update(model="ghost"),
     "categories[0].model_scores[0].model: 'ghost' is not a configured model"),
    (lambda d: d["keyword_rules"][0].update(category="poetry"), "keyword_rules[0].category: 'poetry'"),
    (lambda d: d["keyword_rules"][0].update(regex=True, keywords=["(unclosed"]), "not a valid regex"),
    (lambda d: d["models"].append(copy.deepcopy(d["models"][0])), "duplicate model name"),
    (lambda d: d["server"].__setitem__("listen", "nowhere") if "server" in d else d.update(server={"listen": "nowhere"}),
     "server.listen: expected host:port"),
    (lambda d: d.setdefault("server", {}).update(listen="127.0.0.1:7000", admin_listen="0.0.0.0:7000"),
     "server.admin_listen '0.0.0.0:7000' uses the ext_proc port"),
    (lambda d: d["routing"].update(auto_model_names=["small"]), "is also a model name"),
    (lambda d: d.pop("routing"), "routing: required key is missing"),
    (lambda d: d.setdefault("signals", {}).update(jailbreak={"read": ["tool_results", "assistants"]}),
     "signals.jailbreak.read: unknown part(s) ['assistants']; use any of ['tool_results', 'system', "
     "'earlier_user', 'assistant']"),
    (lambda d: d.setdefault("signals", {}).update(jailbreak={"read": "tool_results"}),
     "signals.jailbreak.read: must be a list"),
])
def test_errors_name_key_and_fix(mutate, expected: str) -> None:
    d = base()
    mutate(d)
    with pytest.raises(ConfigError) as e:
        parse_config(d, "test.yaml")
    assert expected in str(e.value)
    assert str(e.value).startswith("test.yaml:")


def test_not_a_mapping_and_not_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        parse_config([1, 2])
    p = tmp_path / "bad.yaml"
    p.write_text("routing: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_validate_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(base()))
    assert cli_main(["validate-config", str(good)]) == 0
    assert "ok (2 models" in capsys.readouterr().out
    d = base()
    d["routing"]["default_model"] = "nope"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(d))
    assert cli_main(["validate-config", str(bad)]) == 2
    assert "routing.default_model" in capsys.readouterr().err


def test_example_config_is_current_and_documents_every_key() -> None:
    from semrouter.config.example import generate

    expected = generate(str(ROOT / "config" / "semrouter.yaml"))
    actual = (ROOT / "config" / "semrouter.example.yaml").read_text()
    assert actual == expected, "regenerate: python -m semrouter.config.example > config/semrouter.example.yaml"
    for section in ("server:", "routing:", "models:", "categories:", "keyword_rules:", "signals:", "cache:"):
        assert f"\n{section}" in actual


def test_spin_wait_modes_reach_onnxruntime() -> None:
    """`spin_wait` accepts the old booleans; `run` spins only inside a run (force_spinning_stop), `off` never."""
    from semrouter.signals.config import SignalsConfig
    from semrouter.signals.onnx.sessions import session_options

    assert SignalsConfig(spin_wait=True).spin_wait == "always"
    assert SignalsConfig(spin_wait=False).spin_wait == "off"
    with pytest.raises(ValueError, match="spin_wait"):
        SignalsConfig(spin_wait="sometimes")
    entry = "session.intra_op.allow_spinning"
    assert session_options(2, spin="off").get_session_config_entry(entry) == "0"
    run = session_options(2, spin="run")
    assert run.get_session_config_entry(entry) == "1"
    assert run.get_session_config_entry("session.force_spinning_stop") == "1"
    always = session_options(2, spin="always")
    assert always.get_session_config_entry(entry) == "1"
    with pytest.raises(Exception):  # noqa: B017, PT011 - onnxruntime raises a plain Fail for a missing entry
        always.get_session_config_entry("session.force_spinning_stop")
