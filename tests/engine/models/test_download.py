"""Downloads, cache checks, safe weight loading and the `disco models` commands, against a local HTTP server."""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.server
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import engine.models.download as download_mod
from engine.cli.models import add_models_commands
from engine.errors import DownloadError, ModelError
from engine.models import registry
from engine.models.download import (
    clip_weights_path,
    download,
    ensure,
    load_weights,
    model_path,
    models_dir,
    verify,
)
from engine.models.registry import ModelFile
from tests.support import REPO_ROOT

PAYLOAD = random.Random(7).randbytes(300_000)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FakeFileServer:
    """Serves PAYLOAD on 127.0.0.1 with a behaviour per path; records each request's Range header."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                server.respond(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.truncated_once: set[str] = set()

    def url(self, path: str) -> str:
        return self.base + path

    def respond(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        path = handler.path
        if path.startswith("/missing"):
            handler.send_error(404)
            return
        if path.startswith("/hang"):
            self.release.wait(5)
            return
        start = 0
        range_header = handler.headers.get("Range")
        if range_header and not path.startswith("/ignore-range"):
            start = int(range_header.removeprefix("bytes=").split("-")[0])
        body = PAYLOAD[start:]
        handler.send_response(206 if start else 200)
        handler.send_header("Content-Type", "text/html" if path.startswith("/html") else "application/octet-stream")
        handler.send_header("Content-Length", str(len(body)))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        handler.end_headers()
        if path.startswith("/truncate") and path not in self.truncated_once:
            self.truncated_once.add(path)
            body = body[: len(body) // 3]  # promise everything, send a third, hang up
            handler.close_connection = True
        handler.wfile.write(body)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("DISCO_MODELS_DIR", str(folder))
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # tests may register entries
    return folder


@pytest.fixture
def server() -> FakeFileServer:
    fake = FakeFileServer()
    yield fake
    fake.close()


def entry_for(*urls: str, sha256: str | None = PAYLOAD_SHA, size: int | None = len(PAYLOAD),
              name: str = "test-file") -> ModelFile:
    return ModelFile(name=name, filename=f"{name}.bin", urls=tuple(urls), sha256=sha256, size=size,
                     kind="diffusion", notes="served by the test's local HTTP server")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- download -----------------------------------------------------------------------------------

def test_download_places_checked_file_and_removes_part(server: FakeFileServer, isolated_cache: Path) -> None:
    path = download(entry_for(server.url("/file.bin")), progress=False)
    assert path == isolated_cache / "test-file.bin" == model_path(entry_for())
    assert path.read_bytes() == PAYLOAD
    assert not path.with_name(path.name + ".part").exists()
    meta = json.loads(path.with_name(path.name + ".meta.json").read_text())
    assert meta["sha256"] == PAYLOAD_SHA and meta["source"] == "published"
    # A second call finds the file and does not touch the network.
    assert download(entry_for(server.url("/file.bin")), progress=False) == path
    assert len(server.requests) == 1


def test_wrong_checksum_leaves_nothing_in_place(server: FakeFileServer, isolated_cache: Path) -> None:
    entry = entry_for(server.url("/file.bin"), sha256="0" * 64)
    with pytest.raises(DownloadError) as caught:
        download(entry, progress=False)
    message = str(caught.value)
    assert "expected " + "0" * 64 in message and PAYLOAD_SHA in message
    assert "disco models download test-file" in message
    assert not (isolated_cache / "test-file.bin").exists()
    assert not (isolated_cache / "test-file.bin.part").exists()


def test_truncated_transfer_keeps_part_and_resumes_with_range(server: FakeFileServer, isolated_cache: Path) -> None:
    entry = entry_for(server.url("/truncate.bin"))
    with pytest.raises(DownloadError, match="resumes"):
        download(entry, progress=False)
    part = isolated_cache / "test-file.bin.part"
    kept = part.stat().st_size
    assert 0 < kept < len(PAYLOAD)
    assert not (isolated_cache / "test-file.bin").exists()

    path = download(entry, progress=False)
    assert path.read_bytes() == PAYLOAD and not part.exists()
    assert server.requests[-1] == ("/truncate.bin", f"bytes={kept}-")


def test_server_that_ignores_range_restarts_cleanly(server: FakeFileServer, isolated_cache: Path) -> None:
    isolated_cache.mkdir(parents=True)
    (isolated_cache / "test-file.bin.part").write_bytes(b"stale bytes from some earlier attempt")
    path = download(entry_for(server.url("/ignore-range.bin")), progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.requests[-1][1] is not None  # we asked to resume; the server sent everything instead


def test_dead_server_fails_within_seconds() -> None:
    url = f"http://127.0.0.1:{closed_port()}/file.bin"
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        download(entry_for(url), progress=False, timeout=2.0)
    assert time.monotonic() - started < 2.0
    message = str(caught.value)
    assert url in message and "connection refused" in message
    assert str(models_dir() / "test-file.bin") in message and "DISCO_MODELS_DIR" in message


def test_silent_server_times_out(server: FakeFileServer) -> None:
    started = time.monotonic()
    with pytest.raises(DownloadError, match="no answer within 0.5 s"):
        download(entry_for(server.url("/hang.bin")), progress=False, timeout=0.5)
    assert time.monotonic() - started < 2.0


def test_mirror_fallback_after_404_and_web_page(server: FakeFileServer, caplog: pytest.LogCaptureFixture) -> None:
    entry = entry_for(server.url("/missing.bin"), server.url("/html.bin"), server.url("/file.bin"))
    path = download(entry, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert [request[0] for request in server.requests] == ["/missing.bin", "/html.bin", "/file.bin"]
    assert "HTTP 404" in caplog.text and "web page" in caplog.text


def test_a_second_downloader_of_the_same_file_is_refused(server: FakeFileServer, isolated_cache: Path) -> None:
    import fcntl
    isolated_cache.mkdir(parents=True)
    with open(isolated_cache / "test-file.bin.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(DownloadError, match="Another process is already downloading test-file.bin"):
            download(entry_for(server.url("/file.bin")), progress=False)
    assert server.requests == []
    download(entry_for(server.url("/file.bin")), progress=False)
    assert sorted(p.name for p in isolated_cache.iterdir()) == ["test-file.bin", "test-file.bin.meta.json"]


def test_download_replaces_a_damaged_cached_file(server: FakeFileServer, isolated_cache: Path) -> None:
    isolated_cache.mkdir(parents=True)
    (isolated_cache / "test-file.bin").write_bytes(b"x" * len(PAYLOAD))
    assert download(entry_for(server.url("/file.bin")), progress=False).read_bytes() == PAYLOAD


# ---- ensure / verify --------------------------------------------------------------------------

def test_missing_file_without_download_fails_fast_with_the_fix(server: FakeFileServer) -> None:
    entry = entry_for(server.url("/file.bin"))
    started = time.monotonic()
    with pytest.raises(ModelError) as caught:
        ensure(entry, allow_download=False)
    assert time.monotonic() - started < 1.0
    assert str(models_dir() / "test-file.bin") in str(caught.value)
    assert "disco models download test-file" in str(caught.value)
    assert server.requests == []


def test_ensure_hashes_once_then_trusts_the_marker(server: FakeFileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = entry_for(server.url("/file.bin"))
    path = ensure(entry, allow_download=True, progress=False)
    calls: list[Path] = []
    real_hash = download_mod.sha256_file
    monkeypatch.setattr(download_mod, "sha256_file", lambda p, **kw: calls.append(p) or real_hash(p, **kw))
    assert ensure(entry, allow_download=False) == path
    assert calls == []  # size and mtime unchanged: no re-hash
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    assert ensure(entry, allow_download=False) == path
    assert calls == [path]


def test_cached_file_with_wrong_size_or_content_is_refused(isolated_cache: Path) -> None:
    isolated_cache.mkdir(parents=True)
    (isolated_cache / "test-file.bin").write_bytes(PAYLOAD[:-1])
    with pytest.raises(ModelError, match="incomplete or a different file"):
        ensure(entry_for("http://127.0.0.1:9/unused"), allow_download=False)
    (isolated_cache / "test-file.bin").write_bytes(PAYLOAD[::-1])
    with pytest.raises(ModelError, match="SHA-256 expected"):
        ensure(entry_for("http://127.0.0.1:9/unused"), allow_download=False)


def test_unpublished_hash_is_recorded_on_first_download_and_checked_after(server: FakeFileServer) -> None:
    entry = entry_for(server.url("/file.bin"), sha256=None, size=None)
    path = download(entry, progress=False)
    meta = json.loads(path.with_name(path.name + ".meta.json").read_text())
    assert meta == {**meta, "sha256": PAYLOAD_SHA, "source": "recorded"}
    assert verify(entry).status == "ok"
    path.write_bytes(PAYLOAD[::-1])
    result = verify(entry)
    assert result.status == "mismatch" and result.expected == PAYLOAD_SHA and not result.ok
    with pytest.raises(ModelError, match="does not match"):
        ensure(entry, allow_download=False)


def test_verify_reports_missing_and_records_unknown(isolated_cache: Path) -> None:
    entry = entry_for("http://127.0.0.1:9/unused", sha256=None, size=None)
    assert verify(entry).status == "missing"
    isolated_cache.mkdir(parents=True)
    (isolated_cache / "test-file.bin").write_bytes(PAYLOAD)
    result = verify(entry)
    assert result.status == "recorded" and result.actual == PAYLOAD_SHA and result.ok


# ---- loading ----------------------------------------------------------------------------------

class NotATensor:
    """Pickled as an arbitrary Python object, which weights_only loading must refuse."""


def test_load_weights_torch_state_dict_and_wrapped_checkpoint(tmp_path: Path) -> None:
    import torch
    weights = {"layer.weight": torch.arange(6.0).reshape(2, 3), "layer.bias": torch.ones(2)}
    torch.save(weights, tmp_path / "plain.pt")
    torch.save({"state_dict": weights}, tmp_path / "wrapped.pth")
    for name in ("plain.pt", "wrapped.pth"):
        loaded = load_weights(tmp_path / name)
        assert set(loaded) == set(weights)
        assert torch.equal(loaded["layer.weight"], weights["layer.weight"])


def test_load_weights_safetensors(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file
    save_file({"w": torch.full((3,), 2.5)}, str(tmp_path / "model.safetensors"))
    assert torch.equal(load_weights(tmp_path / "model.safetensors")["w"], torch.full((3,), 2.5))


def test_load_weights_refuses_pickled_objects_and_torchscript(tmp_path: Path) -> None:
    import torch
    torch.save({"w": torch.ones(1), "extra": NotATensor()}, tmp_path / "pickled.pt")
    with pytest.raises(ModelError, match="pickled Python objects.*NotATensor"):
        load_weights(tmp_path / "pickled.pt")
    torch.save({"w": torch.ones(1), "step": 3}, tmp_path / "mixed.pt")
    with pytest.raises(ModelError, match="not a plain state_dict: entries step"):
        load_weights(tmp_path / "mixed.pt")
    with pytest.warns(FutureWarning):
        torch.jit.script(torch.nn.Linear(2, 2)).save(str(tmp_path / "scripted.pt"))
    with pytest.raises(ModelError, match="TorchScript"):
        load_weights(tmp_path / "scripted.pt")


# ---- Hugging Face hub stays offline -----------------------------------------------------------

def test_import_turns_huggingface_hub_offline() -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "DISCO_ALLOW_HF_HUB")}
    probe = "import os, sys, engine.models.download; print(os.environ.get('HF_HUB_OFFLINE'), 'torch' in sys.modules)"
    run = lambda extra: subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, env={**env, **extra},
                                       capture_output=True, text=True, check=True).stdout.split()
    assert run({}) == ["1", "False"]
    assert run({"DISCO_ALLOW_HF_HUB": "1"}) == ["None", "False"]


def test_open_clip_hub_tags_fail_at_once_and_local_paths_come_from_our_cache(
        server: FakeFileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import open_clip
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    started = time.monotonic()
    with pytest.raises(RuntimeError):
        open_clip.create_model("RN50", pretrained="yfcc15m")
    assert time.monotonic() - started < 10  # the online retry loop would take ~46 s

    with pytest.raises(ModelError, match="disco models download RN50::yfcc15m"):
        clip_weights_path("RN50::yfcc15m", allow_download=False)
    # Stand in for the real weights with the local server's file, keeping the real cache name.
    served = dataclasses.replace(registry.clip_entry("RN50::yfcc15m"), urls=(server.url("/file.bin"),),
                                 sha256=PAYLOAD_SHA)
    monkeypatch.setattr(download_mod, "clip_entry", lambda name: served)
    path = clip_weights_path("RN50::yfcc15m", allow_download=True, progress=False)
    assert path == models_dir() / served.filename and path.read_bytes() == PAYLOAD
    assert clip_weights_path("RN50::yfcc15m", allow_download=False) == path


# ---- `disco models` commands ------------------------------------------------------------------

def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="disco")
    add_models_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["models", *argv])
    return args.func(args)


def test_cli_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("list", "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    names = {row["name"] for row in listing["models"]}
    assert {"512x512_diffusion_uncond_finetune_008100", "secondary_model_imagenet_2", "ViT-B-32::openai"} <= names
    assert set(listing["sets"]) == {"dd-default", "random-full", "test-tiny"}
    assert listing["models_dir"] == str(models_dir())
    assert not any(row["cached"] for row in listing["models"])


def test_cli_download_and_verify(server: FakeFileServer, isolated_cache: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    registry.register_model(entry_for(server.url("/file.bin")))
    assert run_cli("download", "test-file", "--no-progress") == 0
    assert (isolated_cache / "test-file.bin").read_bytes() == PAYLOAD
    assert run_cli("verify") == 0
    assert "OK        test-file" in capsys.readouterr().out

    (isolated_cache / "test-file.bin").write_bytes(PAYLOAD[::-1])
    assert run_cli("verify", "test-file") == 1
    assert "MISMATCH  test-file" in capsys.readouterr().out

    registry.register_model(entry_for("http://127.0.0.1:9/unused", name="never-fetched"))
    assert run_cli("verify", "never-fetched") == 1
    assert "MISSING   never-fetched" in capsys.readouterr().out


def test_cli_download_failure_prints_the_error_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    registry.register_model(entry_for(f"http://127.0.0.1:{closed_port()}/file.bin"))
    assert run_cli("download", "test-file", "--no-progress", "--timeout", "1") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Could not download test-file") and "Traceback" not in err
    assert run_cli("download", "no-such-model") == 1
    assert "Unknown model 'no-such-model'" in capsys.readouterr().err
    assert run_cli("download", "--set", "test-tiny") == 0
    assert "nothing to download" in capsys.readouterr().out
    assert run_cli("download") == 2


def test_cli_list_shows_partial_downloads(server: FakeFileServer, capsys: pytest.CaptureFixture[str]) -> None:
    registry.register_model(entry_for(server.url("/truncate.bin")))
    assert run_cli("download", "test-file", "--no-progress") == 1
    capsys.readouterr()
    assert run_cli("list", "--json") == 0
    row = next(r for r in json.loads(capsys.readouterr().out)["models"] if r["name"] == "test-file")
    assert row["cached"] is False and 0 < row["partial_bytes"] < len(PAYLOAD)
    assert row["sha256_source"] == "published" and row["urls"] == [server.url("/truncate.bin")]
