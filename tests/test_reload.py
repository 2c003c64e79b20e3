"""Live configuration: file change and SIGHUP swap the config; an invalid file keeps the old one."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml
from conftest import eventually, start_stack, user

pytestmark = pytest.mark.e2e


def test_reload_on_file_change_and_sighup(tmp_path: Path) -> None:
    stack, client = start_stack(tmp_path, {"signals.enabled": False, "cache.enabled": False,
                                           "server.watch_config_seconds": 0.2})
    try:
        path = tmp_path / "semrouter.yaml"
        cfg = yaml.safe_load(path.read_text())
        assert client.chat(user("tell me about pirates")).headers["x-demo-model"] == "llama-3.1-8b"

        # 1. a valid change on disk is picked up by the watcher
        cfg["keyword_rules"].append({"name": "pirates", "category": "math", "keywords": ["pirates"]})
        path.write_text(yaml.safe_dump(cfg))
        assert eventually(lambda: client.chat(user("tell me about pirates")).headers.get("x-demo-model") == "qwen3-32b")

        # 2. an invalid file is rejected; the old config keeps serving
        path.write_text(path.read_text().replace("default_model: llama-3.1-8b", "default_model: ghost"))
        time.sleep(1.0)
        r = client.chat(user("tell me about pirates"))
        assert r.status == 200 and r.headers["x-demo-model"] == "qwen3-32b"
        assert "config_reload_rejected" in (tmp_path / "logs" / "router.log").read_text()

        # 3. SIGHUP reloads too (watcher off: rewrite the file with a new rule and signal)
        cfg["keyword_rules"][-1]["keywords"] = ["buccaneers"]
        cfg["server"]["watch_config_seconds"] = 0
        path.write_text(yaml.safe_dump(cfg))
        time.sleep(0.5)  # the watcher reloads this one (it turns itself off only after restart)
        stack.procs["router"].send_signal(signal.SIGHUP)
        assert eventually(lambda: client.chat(user("buccaneers ahoy")).headers.get("x-demo-model") == "qwen3-32b")
        assert client.chat(user("tell me about pirates")).headers["x-demo-model"] == "llama-3.1-8b"
    finally:
        stack.stop()
