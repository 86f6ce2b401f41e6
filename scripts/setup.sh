#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install the project into it.
# torch 2.14.1 / torchvision 0.29.1 are pinned in pyproject.toml; pip takes them from the local
# wheel cache where one exists. Use pip (not uv/poetry) so that cache is used.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.disco-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -m pip install --quiet -e ".[test]" 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -c "import torch, torchvision, open_clip, guided_diffusion, lpips, pydantic" \
        || { echo "setup: the install is incomplete (see pip's messages above)" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
