# Disco Diffusion for Discord: the bot and its GPU engine in one image, for a host with an NVIDIA GPU.
#
# Build:
#   docker build -t disco-discord .
#
# Fetch the model weights once into a named volume (about 3 GB, sha256-checked, resumable):
#   docker run --rm -v disco-models:/models disco-discord models download --set dd-default
#
# Run the bot (it starts and supervises the engine inside the same container):
#   docker run -d --name disco --init --gpus all --restart unless-stopped \
#       -e DISCORD_TOKEN=your-bot-token \
#       -v disco-models:/models -v disco-data:/data \
#       -v ./config.toml:/config/config.toml:ro \
#       disco-discord
#
# Any other `disco` command works the same way, e.g. `docker exec disco disco jobs list` or
# `docker run --rm --gpus all -v disco-models:/models disco-discord bench --models random-full`.
# The token is only ever passed at run time (-e or --env-file); it is never baked into the image,
# and config.toml never holds it. `--init` reaps the engine's own children (ffmpeg) if the bot
# dies; the bot itself handles SIGTERM from `docker stop` and stops the engine first.
#
# Base image choice: python:3.11-slim rather than nvidia/cuda + a Python from a PPA. The pinned
# torch 2.14.1 wheel on PyPI is the CUDA build and brings its CUDA runtime, cuDNN, cuBLAS and NCCL
# as pip dependencies (nvidia-*/cuda-* wheels); all it needs from the host is the NVIDIA driver,
# which the NVIDIA Container Toolkit mounts in at run time (`--gpus all`). A CUDA base image
# would ship a second copy of the same libraries (several GB) that torch does not use. The host
# driver must be new enough for the CUDA version of those wheels (CUDA 13: driver 580 or newer);
# without a GPU the same image renders on the CPU (device = "auto"), just slowly.

# ---- build stage: resolve and install every dependency into a self-contained venv ----
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone, with empty packages standing in for the code:
# the multi-GB torch layer is then rebuilt only when pyproject.toml changes, not on every edit.
# The pins (torch==2.14.1, torchvision==0.29.1) come from pyproject.toml; nothing is repeated here.
COPY pyproject.toml README.md ./
RUN mkdir -p disco engine/models/configs storage commands bot \
    && touch disco/__init__.py engine/__init__.py engine/models/__init__.py storage/__init__.py commands/__init__.py bot/__init__.py \
    && pip install . \
    && pip uninstall -y disco-discord

# Then the project itself (no dependency resolution: they are all there).
COPY disco ./disco
COPY engine ./engine
COPY storage ./storage
COPY commands ./commands
COPY bot ./bot
RUN pip install --no-deps . \
    && disco --help > /dev/null

# ---- runtime stage: the venv, a non-root user and two volumes ----
FROM python:3.11-slim-bookworm

# The user `disco` with a fixed uid/gid, so files in the volumes keep one owner across rebuilds
# and hosts (chown a bind-mounted folder to 10001:10001 before the first run). USER names the
# number, so a runtime that enforces non-root (Kubernetes' runAsNonRoot) can check it.
RUN groupadd --system --gid 10001 disco \
    && useradd --system --uid 10001 --gid disco --home-dir /home/disco --create-home \
       --shell /usr/sbin/nologin disco \
    && mkdir -p /models /data /config /app \
    && chown disco:disco /models /data

COPY --from=build /opt/venv /opt/venv
COPY config.example.toml /app/config.example.toml

# DISCO_MODELS_DIR / DISCO_DATA_DIR: where `disco` keeps weights and the queue (they win over the
# config file's data_dir). HF_HUB_OFFLINE: the engine never waits on Hugging Face; weights come
# only from `disco models download`. NVIDIA_*: what the container toolkit should expose.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DISCO_MODELS_DIR=/models \
    DISCO_DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    XDG_CACHE_HOME=/home/disco/.cache \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# Declared after the chown above, so fresh named volumes start owned by disco.
VOLUME ["/models", "/data"]
WORKDIR /app
USER 10001:10001

# The database answers a read (and the `disco` command starts): a cheap sign of a stuck volume or
# a broken install. It does not prove the gateway is connected; the bot's logs tell that.
HEALTHCHECK --interval=60s --timeout=20s --start-period=60s --retries=3 \
    CMD ["disco", "jobs", "list", "--limit", "1"]

ENTRYPOINT ["disco"]
CMD ["bot", "--config", "/config/config.toml"]
