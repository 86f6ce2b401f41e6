"""Keeping huggingface_hub off the network: without one, its retry loop takes ~46 s to fail.
Torch-free; the registry and the downloader call it before open_clip reads its settings."""
from __future__ import annotations

import os
import sys

ALLOW_HF_HUB_ENV = "DISCO_ALLOW_HF_HUB"


def keep_hf_hub_offline() -> None:
    """Put huggingface_hub in offline mode unless DISCO_ALLOW_HF_HUB=1: without a network its retry
    loop takes ~46 s to fail. We never fetch through it (CLIP weights come through `download()`)."""
    if os.environ.get(ALLOW_HF_HUB_ENV, "").strip().lower() in {"1", "true", "yes"}:
        return
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # imported earlier: it read the variable at import time
        constants.HF_HUB_OFFLINE = True
