"""Fetching, caching and checking model files, and loading their weights without running pickled code.

Files live in one flat cache folder (`models_dir()`). Beside each file we keep `<file>.meta.json`
with its SHA-256, where that hash came from ("published" in the registry, or "recorded" from the
first download when nothing is published: trust on first use), and the size and mtime the file had
when it was last hashed, so a 2 GB checkpoint is hashed once and not on every start.

Only `download()` (and `ensure(..., allow_download=True)`) touches the network. Importing this
module switches huggingface_hub to offline mode (see `keep_hf_hub_offline`) and never imports torch.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import pickle
import socket
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from tqdm import tqdm

from engine.errors import DownloadError, ModelError
from engine.models.offline import keep_hf_hub_offline
from engine.models.registry import ModelFile, clip_entry

MODELS_DIR_ENV = "DISCO_MODELS_DIR"
USER_AGENT = "disco-discord-model-fetcher/1.0"
_CHUNK = 1 << 20
_SHOW_HASH_PROGRESS_FROM = 256 << 20  # bytes; smaller files hash too fast for a bar to help

log = logging.getLogger(__name__)


keep_hf_hub_offline()


def models_dir(*, create: bool = False) -> Path:
    """The model cache: $DISCO_MODELS_DIR, else $XDG_CACHE_HOME/disco-discord/models (~/.cache/...)."""
    configured = os.environ.get(MODELS_DIR_ENV, "").strip()
    if configured:
        path = Path(configured).expanduser()
    else:
        cache_home = os.environ.get("XDG_CACHE_HOME", "").strip()
        path = (Path(cache_home).expanduser() if cache_home else Path.home() / ".cache") / "disco-discord" / "models"
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ModelError(f"Cannot create the models folder {path}: {err.strerror}. "
                             f"Set {MODELS_DIR_ENV} to a writable folder.") from err
    return path


def model_path(entry: ModelFile, dest_dir: str | Path | None = None) -> Path:
    """Where `entry`'s file lives in the cache (whether or not it is there); a custom model
    configured with a local path is used where it is."""
    if entry.local_path is not None and dest_dir is None:
        return Path(entry.local_path)
    return Path(dest_dir if dest_dir is not None else models_dir()) / entry.filename


# ---- checksum records -------------------------------------------------------------------------

def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_meta_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_meta(path: Path, sha256: str, source: str, *, file_checked: bool = True) -> None:
    record: dict[str, Any] = {"sha256": sha256, "source": source}
    if file_checked:  # the size+mtime key says "this exact file was hashed and matched"
        stat = path.stat()
        record.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    tmp = _meta_path(path).with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, _meta_path(path))
    except OSError as err:  # a read-only cache still works; it is just hashed again on each start
        log.warning("Cannot record the checksum of %s in %s: %s", path.name, _meta_path(path), err)


def reference_sha256(entry: ModelFile, path: Path) -> tuple[str | None, str]:
    """The hash the file must have and where it comes from: 'published', 'recorded' or 'none'."""
    if entry.sha256:
        return entry.sha256, "published"
    recorded = _read_meta(path).get("sha256")
    return (recorded, "recorded") if isinstance(recorded, str) and recorded else (None, "none")


def is_marked_verified(entry: ModelFile, path: Path) -> bool:
    """True when `path` was hashed before, matched, and has not changed since (same size and mtime)."""
    meta, (expected, _) = _read_meta(path), reference_sha256(entry, path)
    try:
        stat = path.stat()
    except OSError:
        return False
    return (expected is not None and meta.get("sha256") == expected
            and meta.get("size") == stat.st_size and meta.get("mtime_ns") == stat.st_mtime_ns)


def sha256_file(path: Path, *, progress: bool = False, desc: str = "") -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as handle, tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                                          desc=f"hashing {desc or path.name}", file=sys.stderr,
                                          disable=not progress or size < _SHOW_HASH_PROGRESS_FROM) as bar:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


VerifyStatus = Literal["ok", "recorded", "mismatch", "missing"]


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a full SHA-256 check. 'recorded': no hash was known, this one is now trusted."""

    name: str
    path: Path
    status: VerifyStatus
    expected: str | None
    actual: str | None

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "recorded")

    def describe(self) -> str:
        if self.status == "ok":
            return f"OK        {self.name}  {self.path}"
        if self.status == "recorded":
            return (f"RECORDED  {self.name}  {self.path}  (no published SHA-256; recorded "
                    f"{self.actual} and will check against it from now on)")
        if self.status == "missing":
            return f"MISSING   {self.name}  {self.path}  (fetch it with `disco models download {self.name}`)"
        return (f"MISMATCH  {self.name}  {self.path}  expected {self.expected}, got {self.actual}; "
                f"the file is damaged or different: run `disco models download {self.name}` to replace it")


def verify(entry: ModelFile, *, dest_dir: str | Path | None = None, progress: bool = False) -> VerifyResult:
    """Hash the cached file in full and compare it with the published or recorded SHA-256."""
    path = model_path(entry, dest_dir)
    expected, source = reference_sha256(entry, path)
    if not path.is_file():
        return VerifyResult(entry.name, path, "missing", expected, None)
    actual = sha256_file(path, progress=progress, desc=entry.name)
    if expected is None:
        _write_meta(path, actual, "recorded")
        return VerifyResult(entry.name, path, "recorded", None, actual)
    if actual == expected:
        _write_meta(path, expected, source)
        return VerifyResult(entry.name, path, "ok", expected, actual)
    _write_meta(path, expected, source, file_checked=False)  # keep a recorded hash, drop the "verified" key
    return VerifyResult(entry.name, path, "mismatch", expected, actual)


def _check_cached(entry: ModelFile, path: Path, *, progress: bool) -> None:
    """Raise ModelError if the cached file is not the right one; hash it only when not marked verified."""
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        raise ModelError(f"{path} is {size} bytes but {entry.name} is {entry.size} bytes: the file is "
                         f"incomplete or a different file. Run `disco models download {entry.name}` to replace it.")
    if is_marked_verified(entry, path):
        return
    log.info("Checking %s once (SHA-256 of %s)", entry.name, path)
    result = verify(entry, dest_dir=path.parent, progress=progress)
    if result.status == "mismatch":
        raise ModelError(f"{path} does not match {entry.name}: SHA-256 expected {result.expected}, got "
                         f"{result.actual}. Run `disco models download {entry.name}` to replace it.")


def _missing_message(entry: ModelFile, path: Path) -> str:
    if entry.local_path is not None:
        return (f"Model file for {entry.name!r} is missing: {path} is not a file. Fix `path` in "
                f"[models.custom.{entry.name}] of the config file, or give a `url` instead.")
    where = f" (from {entry.urls[0]})" if entry.urls else ""
    return (f"Model file for {entry.name!r} is missing: expected {path}. Fetch it with "
            f"`disco models download {entry.name}`, or save the file there by hand{where}, or set "
            f"{MODELS_DIR_ENV} to the folder that holds {entry.filename}.")


def ensure(entry: ModelFile, *, allow_download: bool, dest_dir: str | Path | None = None,
           progress: bool = True, timeout: float = 10.0) -> Path:
    """The path of `entry`'s checked file. With `allow_download` a missing or damaged file is fetched;
    without it a missing file raises ModelError at once, naming the path and the command that fetches it."""
    if allow_download:  # download() keeps a good cached file and replaces a damaged one
        return download(entry, dest_dir=dest_dir, progress=progress, timeout=timeout)
    path = model_path(entry, dest_dir)
    if not path.is_file():
        raise ModelError(_missing_message(entry, path))
    _check_cached(entry, path, progress=progress)
    return path


def clip_weights_path(name: str, allow_download: bool, *, progress: bool = True) -> Path:
    """Checked local weights for a CLIP model `ARCH::TAG`, for `open_clip.create_model(arch, pretrained=str(path))`.

    Going through a path keeps open_clip (and huggingface_hub) off the network entirely. Note that
    OpenAI tags need `force_quick_gelu=True` when loaded from a path (entry.config['quick_gelu']).
    """
    return ensure(clip_entry(name), allow_download=allow_download, progress=progress)


# ---- downloading ------------------------------------------------------------------------------

class _AttemptFailed(Exception):
    """One URL did not deliver the file; the message says why."""


def download(entry: ModelFile, *, dest_dir: str | Path | None = None, progress: bool = True,
             timeout: float = 10.0, allow_network: bool = True) -> Path:
    """Fetch `entry` into the cache, trying its URLs in order, and return the checked file.

    A file already in place is checked and kept, a damaged one replaced. An interrupted transfer
    leaves `<file>.part`, resumed next time with an HTTP Range request. `timeout` bounds connecting
    and every read, so a dead host fails in seconds. A custom model's local file is only checked."""
    if entry.local_path is not None and dest_dir is None:
        return ensure(entry, allow_download=False, progress=progress)
    folder = Path(dest_dir) if dest_dir is not None else models_dir(create=True)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / entry.filename
    if path.is_file():
        try:
            _check_cached(entry, path, progress=progress)
            return path
        except ModelError as err:
            if not allow_network:
                raise
            log.warning("%s Downloading it again.", err)
            path.unlink()
    if not allow_network:
        raise ModelError(_missing_message(entry, path))
    if not entry.urls:
        raise DownloadError(f"{entry.name} has no download address. Save {entry.filename} by hand as {path}.")
    failures: list[tuple[str, str]] = []
    with _download_lock(path):
        for url in entry.urls:
            try:
                return _download_from(entry, url, path, timeout=timeout, progress=progress)
            except _AttemptFailed as failure:
                failures.append((url, str(failure)))
                log.warning("Downloading %s from %s failed: %s", entry.name, url, failure)
    reasons = "\n".join(f"  - {url}: {reason}" for url, reason in failures)
    raise DownloadError(
        f"Could not download {entry.name} from any of its {len(failures)} address(es):\n{reasons}\n"
        f"Check the network and run `disco models download {entry.name}` again (a partial file is resumed), "
        f"or download {entry.filename} yourself from one of the addresses above and save it as {path}, "
        f"or set {MODELS_DIR_ENV} to a folder that already holds it.")


@contextlib.contextmanager
def _download_lock(path: Path) -> Iterator[None]:
    """One downloader per file: a second process would interleave writes into the same .part."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no cross-process lock
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            raise DownloadError(f"Another process is already downloading {path.name} into {path.parent}; "
                                f"wait for it to finish, then try again.") from err
        try:
            yield
        finally:  # remove while still holding it: a waiting process fails fast rather than blocking
            lock_path.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download_from(entry: ModelFile, url: str, path: Path, *, timeout: float, progress: bool) -> Path:
    part = path.with_name(path.name + ".part")
    digest, total = _fetch_to_part(url, part, timeout=timeout, progress=progress, desc=entry.name)
    if entry.size is not None and total != entry.size:
        part.unlink(missing_ok=True)
        raise _AttemptFailed(f"the server sent {total} bytes but {entry.name} is {entry.size} bytes; discarded")
    expected, source = reference_sha256(entry, path)
    if expected is not None and digest != expected:
        part.unlink(missing_ok=True)
        hint = (f" (hash recorded at the first download; if the file legitimately changed, "
                f"delete {_meta_path(path)})" if source == "recorded" else "")
        raise _AttemptFailed(f"SHA-256 mismatch: expected {expected}, got {digest}{hint}; "
                             f"the damaged file was deleted")
    os.replace(part, path)
    _write_meta(path, digest, source if expected is not None else "recorded")
    return path


def _open(url: str, start: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _network_reason(err: BaseException, timeout: float) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    inner = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(inner, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(inner, socket.gaierror):
        return f"the host name could not be resolved (no network or DNS?): {inner}"
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused (is the server down?)"
    return f"{type(inner).__name__}: {inner}"


def _fetch_to_part(url: str, part: Path, *, timeout: float, progress: bool, desc: str) -> tuple[str, int]:
    """Stream `url` into `part` (resuming what is there); return the whole file's SHA-256 and size."""
    have = part.stat().st_size if part.exists() else 0
    try:
        try:
            response = _open(url, have, timeout)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not have:
                raise
            part.unlink()  # our partial file is longer than the server's file: start over
            have = 0
            response = _open(url, 0, timeout)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _AttemptFailed(_network_reason(err, timeout)) from err
    with response:
        if response.status == 206 and _range_start(response) != have:
            part.unlink(missing_ok=True)
            raise _AttemptFailed("the server answered the resume request with the wrong byte range; "
                                 "the partial file was discarded")
        if response.status != 206:
            have = 0  # a full answer: the server ignored our Range request, so start over cleanly
        if response.headers.get("Content-Type", "").startswith("text/html"):
            raise _AttemptFailed("the server sent a web page instead of the model file")
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        digest = hashlib.sha256()
        if have:
            with open(part, "rb") as previous:
                while chunk := previous.read(_CHUNK):
                    digest.update(chunk)
        received = 0
        with open(part, "ab" if have else "wb") as out, tqdm(
                total=None if length is None else have + length, initial=have, unit="B", unit_scale=True,
                unit_divisor=1024, desc=desc, file=sys.stderr, disable=not progress) as bar:
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:
                raise _AttemptFailed(f"transfer interrupted after {have + received} bytes "
                                     f"({_network_reason(err, timeout)}); the partial file is kept "
                                     f"and the next try resumes it") from err
            finally:
                out.flush()
                os.fsync(out.fileno())
    if length is not None and received != length:
        raise _AttemptFailed(f"the connection closed after {have + received} of {have + length} bytes; "
                             f"the partial file is kept and the next try resumes it")
    return digest.hexdigest(), have + received


def _range_start(response: http.client.HTTPResponse) -> int | None:
    """First byte offset of a 206 answer's `Content-Range: bytes START-END/TOTAL`."""
    unit, _, spec = response.headers.get("Content-Range", "").partition(" ")
    start = spec.partition("-")[0]
    return int(start) if unit == "bytes" and start.isdigit() else None


# ---- loading ----------------------------------------------------------------------------------

def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files holding compiled code next to the tensors."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())


def load_weights(path: str | Path) -> dict[str, Any]:
    """A checkpoint's tensors by name, loaded on the CPU without executing pickled code.

    `.safetensors` files go through safetensors, everything else through `torch.load(weights_only=True)`.
    Files that need arbitrary unpickling are refused with a ModelError, never loaded unsafely."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Weights file {path} does not exist.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as err:  # safetensors raises its own error types
            raise ModelError(f"{path} is not a readable .safetensors file ({err}). Delete it and "
                             f"download it again with `disco models download NAME`.") from err
    import torch
    if _is_torchscript(path):
        raise ModelError(f"{path} is a TorchScript archive (like OpenAI's original CLIP .pt files), which "
                         f"cannot be loaded without running its code. Use a plain state_dict or .safetensors "
                         f"file instead; for CLIP, `disco models download ARCH::openai` fetches safetensors.")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:
        raise ModelError(f"{path} holds pickled Python objects besides tensors, so it was not loaded "
                         f"(unpickling them could run arbitrary code): {_unpickler_reason(err)}. Save the "
                         f"model's state_dict (torch.save(model.state_dict(), ...)) or convert it to .safetensors."
                         ) from err
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        raise ModelError(f"{path} could not be read as PyTorch weights ({err}); it may be truncated. "
                         f"Delete it and download it again with `disco models download NAME`.") from err
    return _as_state_dict(loaded, path, torch.Tensor)


def _unpickler_reason(err: Exception) -> str:
    """The one line of torch's long weights_only error that names the refused object."""
    marker = "WeightsUnpickler error:"
    for line in str(err).splitlines():
        if marker in line:
            return line.split(marker, 1)[1].strip().split(". ")[0]
    return type(err).__name__


def _as_state_dict(loaded: Any, path: Path, tensor_type: type) -> dict[str, Any]:
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]  # training checkpoints wrap the weights
    if not isinstance(loaded, dict):
        raise ModelError(f"{path} holds a {type(loaded).__name__}, not a dict of tensors (a state_dict).")
    odd = [str(key) for key, value in loaded.items() if not isinstance(value, tensor_type)]
    if odd:
        raise ModelError(f"{path} is not a plain state_dict: entries {', '.join(odd[:5])} are not tensors.")
    return dict(loaded)
