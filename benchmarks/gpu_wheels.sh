#!/usr/bin/env bash
# Fetches, here (where pip reaches PyPI), the wheels that benchmarks/gpu_check.sh installs on a
# GPU machine that has torch, torchvision, timm, numpy, pillow and pytest but no internet.
# They land in .whl/ (ignored by git; ~10 MB), which the device call carries:
#   benchmarks/gpu_wheels.sh        # once, here
#   device run: carry [".whl"], command "bash benchmarks/gpu_check.sh", timeout 600
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mkdir -p .whl
# Pure-Python and cp312 manylinux wheels, versions as in this project's venv.
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
    typing_extensions open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.5 lpips==0.1.4 \
    pillow==13.0.0 pillow_heif==1.9.0
# guided-diffusion-sdk is an sdist: build its (pure-Python) wheel here.
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w .whl guided-diffusion-sdk==1.0.0 \
    || "$PY" -m pip wheel --quiet --no-deps -w .whl guided-diffusion-sdk==1.0.0
ls -la .whl
du -sh .whl
