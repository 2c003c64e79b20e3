#!/bin/sh
# A separate virtual environment with the LiteLLM proxy, for benchmarks/bench_vs_litellm.py only.
# LiteLLM is never a dependency of semrouter: it lives in build/litellm-venv (gitignored), pinned by
# requirements.txt beside this script (pip freeze of litellm==1.110.2 and what its proxy imports; the
# `litellm[proxy]` extra itself names a `litellm-proxy` package that is not published, so its
# dependencies are listed one by one). Usage, from the repository root:
#     sh benchmarks/litellm/build_venv.sh
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV="$ROOT/build/litellm-venv"
PYTHON=${PYTHON:-python3.11}
STAMP="$VENV/.stamp-litellm"
if [ -f "$STAMP" ] && [ "$STAMP" -nt "$HERE/requirements.txt" ]; then
    echo "build/litellm-venv is up to date"; exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet -r "$HERE/requirements.txt"
"$VENV/bin/litellm" --version >/dev/null 2>&1 || "$VENV/bin/python" -c "import litellm.proxy.proxy_server"
touch "$STAMP"
echo "LiteLLM proxy ready: $VENV/bin/litellm"
