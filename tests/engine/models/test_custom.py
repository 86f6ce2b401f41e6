"""Custom diffusion models: the config file's [models.custom.NAME] tables (checks and refusals),
`disco models add`, DD's `diffusion_model: custom` resolved from a settings file, and the engine
loading a custom model from a local HTTP server with a tiny architecture."""
from __future__ import annotations

import functools
import hashlib
import http.server
import io
import threading
from pathlib import Path

import pytest

from disco.cli import main as disco_main
from disco.config import ConfigError, load_config, register_config_models
from engine.errors import DownloadError, ModelError, SpecError
from engine.models import registry
from engine.models.custom import BASE_CONFIG, parse_custom_model
from engine.spec.ddsettings import import_dd_settings
from engine.spec.render import RenderSpec

SHA = "ab" * 32
TINY = {"image_size": 64, "num_channels": 32, "num_res_blocks": 1, "num_head_channels": 16,
        "attention_resolutions": "16, 8"}


@pytest.fixture(autouse=True)
def isolated_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setenv("DISCO_MODELS_DIR", str(tmp_path / "models"))
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def custom_config(tmp_path: Path, **tables: str) -> Path:
    return config_file(tmp_path, "".join(f"[models.custom.{name}]\n{body}\n"
                                         for name, body in tables.items()))


# ---- the config file ------------------------------------------------------------------------

def test_a_custom_table_becomes_a_registered_diffusion_model(tmp_path: Path) -> None:
    path = custom_config(tmp_path, my_faces=f'url = "https://example.org/f.pt"\nsha256 = "{SHA.upper()}"\n'
                                            f'image_size = 256\nnum_heads = 4\ncut_schedules = "watercolor"')
    config = load_config(path)
    register_config_models(config)
    entry = registry.get_model("my_faces")
    assert entry.kind == "diffusion" and entry.sha256 == SHA and entry.urls == ("https://example.org/f.pt",)
    assert entry.config["image_size"] == 256 and entry.config["num_heads"] == 4
    assert entry.config["num_channels"] == BASE_CONFIG["num_channels"]  # not given: DD's 512 model's
    assert entry.cut_group == "watercolor" and entry.default_size == (512, 448)
    assert "my_faces" in registry.custom_model_names()
    spec = RenderSpec.from_dict({"diffusion_model": "my_faces"})
    assert spec.diffusion_model == "my_faces" and (spec.width, spec.height) == (512, 448)


@pytest.mark.parametrize("body, message", [
    ('url = "https://example.org/f.pt"\nsha256 = "abc"', "sha256: expected the file's SHA-256, 64 hex digits"),
    (f'sha256 = "{SHA}"', "give exactly one of url"),
    (f'url = "https://e.org/f.pt"\npath = "/m/f.pt"\nsha256 = "{SHA}"', "give exactly one of url"),
    (f'url = "ftp://e.org/f.pt"\nsha256 = "{SHA}"', "url: expected an http:// or https:// address"),
    (f'url = "https://e.org/f.pt"\nsha256 = "{SHA}"\nimage_size = 300', "image_size: '300' is not allowed; expected one of 64, 128, 256, 512"),
    (f'url = "https://e.org/f.pt"\nsha256 = "{SHA}"\nnum_channels = 100', "a multiple of 32"),
    (f'url = "https://e.org/f.pt"\nsha256 = "{SHA}"\nattention_resolutions = "32; 16"', 'e.g. "32, 16, 8"'),
    (f'url = "https://e.org/f.pt"\nsha256 = "{SHA}"\nlearn_sigma = 1', "expected true or false"),
    (f'url = "https://e.org/f.pt"\nsha256 = "{SHA}"\nimage_sise = 256', "unknown key 'image_sise'; known keys: url"),
    (f'url = "https://e.org/f.pt"\nsha256 = "{SHA}"\ncut_schedules = "pixel"', "cut_schedules: expected one of default, pad_or_pulp, watercolor"),
])
def test_bad_tables_are_refused_naming_the_key_and_the_fix(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(custom_config(tmp_path, mine=body))
    assert "[models.custom.mine]" in str(caught.value) and message in str(caught.value)


def test_names_must_be_new_and_plain(tmp_path: Path) -> None:
    body = f'url = "https://e.org/f.pt"\nsha256 = "{SHA}"'
    for name in ("custom", "256x256_diffusion_uncond", "secondary_model_imagenet_2"):
        with pytest.raises(ConfigError, match="give your model a name of its own"):
            load_config(custom_config(tmp_path, **{name: body}))
    with pytest.raises(ModelError, match="1-64 letters, digits"):
        parse_custom_model("has space", {"url": "https://e.org/f.pt", "sha256": SHA})
    with pytest.raises(ConfigError, match=r"\[models\] holds only \[models.custom.NAME\] tables"):
        load_config(config_file(tmp_path, "[models]\nextra = 1\n"))


def test_disco_models_add_prints_or_appends_and_reads_back(tmp_path: Path, capsys) -> None:
    assert disco_main(["models", "add", "pix", "--url", "https://e.org/p.pt", "--sha256", SHA,
                       "--image-size", "256", "--learn-sigma", "true"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("[models.custom.pix]\n") and "image_size = 256" in printed
    path = config_file(tmp_path, '# keep me\n[engine]\nmodel_set = "test-tiny"\n')
    assert disco_main(["models", "add", "pix", "--path", "/m/p.pt", "--sha256", SHA,
                       "--config", str(path)]) == 0
    text = path.read_text()
    assert text.startswith('# keep me\n[engine]\nmodel_set = "test-tiny"\n') and "[models.custom.pix]" in text
    assert load_config(path)["models"]["custom"][0].local_path == "/m/p.pt"
    capsys.readouterr()
    assert disco_main(["models", "add", "pix", "--path", "/m/p.pt", "--sha256", SHA,
                       "--config", str(path)]) == 1
    assert "already has [models.custom.pix]" in capsys.readouterr().err
    assert disco_main(["models", "add", "bad", "--url", "https://e.org/p.pt", "--sha256", "12"]) == 1
    assert "64 hex digits" in capsys.readouterr().err
    assert disco_main(["models", "list", "--config", str(path)]) == 0
    assert "Custom models (the config file's [models.custom.NAME]): pix" in capsys.readouterr().out


# ---- DD files saying diffusion_model: custom --------------------------------------------------

def register(*names: str) -> None:
    for name in names:
        registry.register_model(parse_custom_model(name, {"url": f"https://e.org/{name}.pt", "sha256": SHA}))


def test_dd_custom_without_a_configured_model_says_how_to_add_one() -> None:
    with pytest.raises(SpecError) as caught:
        import_dd_settings({"diffusion_model": "custom", "custom_path": "/content/drive/ema.pt"})
    assert caught.value.param == "diffusion_model" and "'/content/drive/ema.pt'" in str(caught.value)
    assert "disco models add NAME --url URL --sha256 HEX" in str(caught.value)


def test_dd_custom_with_one_configured_model_uses_it() -> None:
    register("my_faces")
    spec, report = import_dd_settings({"diffusion_model": "custom", "custom_path": "/content/ema.pt",
                                       "steps": 50})
    assert spec.diffusion_model == "my_faces"
    assert any("read as my_faces, the one custom model configured" in line for line in report)


def test_dd_custom_path_names_one_of_several() -> None:
    register("faces", "ukiyo")
    spec, report = import_dd_settings({"diffusion_model": "custom", "custom_path": "/content/drive/ukiyo.pt"})
    assert spec.diffusion_model == "ukiyo" and any("read as the configured ukiyo" in line for line in report)
    with pytest.raises(SpecError) as caught:
        import_dd_settings({"diffusion_model": "custom", "custom_path": "/content/other.pt"})
    assert "any of the configured custom models faces, ukiyo" in str(caught.value)
    assert "fix: set diffusion_model to one of them" in str(caught.value)


# ---- the engine loads it ------------------------------------------------------------------------

@pytest.fixture
def weights_server(tmp_path: Path):
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def tiny_weights() -> tuple[bytes, dict]:
    import torch

    from engine.models.pool import build_unet
    state = build_unet({**BASE_CONFIG, **TINY}, use_fp16=False, use_checkpoint=False, seed=99).state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue(), state


def test_engine_downloads_checks_and_loads_a_custom_model(weights_server, tmp_path: Path) -> None:
    import torch

    from engine.models.pool import ModelPool
    folder, base = weights_server
    payload, state = tiny_weights()
    (folder / "tiny.pt").write_bytes(payload)
    table = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in TINY.items())
    register_config_models(load_config(custom_config(
        tmp_path, tiny_custom=f'url = "{base}/tiny.pt"\nsha256 = "{hashlib.sha256(payload).hexdigest()}"\n{table}')))
    pool = ModelPool("dd-default", allow_download=True)
    unet, config = pool.unet("tiny_custom", use_checkpoint=False)
    assert config["image_size"] == 64 and config["num_channels"] == 32
    assert all(torch.equal(unet.state_dict()[k], v) for k, v in state.items())
    assert pool.sha256["tiny_custom"] == hashlib.sha256(payload).hexdigest()
    assert (tmp_path / "models" / "custom--tiny_custom.pt").read_bytes() == payload

    register_config_models(load_config(custom_config(
        tmp_path, tiny_custom=f'url = "{base}/tiny.pt"\nsha256 = "{"0" * 64}"\n{table}')))
    (tmp_path / "models" / "custom--tiny_custom.pt").unlink()
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        ModelPool("dd-default", allow_download=True).unet("tiny_custom", use_checkpoint=False)


def test_engine_loads_a_custom_model_from_a_local_path(tmp_path: Path) -> None:
    import torch

    from engine.models.pool import ModelPool
    payload, state = tiny_weights()
    (tmp_path / "mine.pt").write_bytes(payload)
    table = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in TINY.items())
    register_config_models(load_config(custom_config(
        tmp_path, local=f'path = "{tmp_path / "mine.pt"}"\nsha256 = "{hashlib.sha256(payload).hexdigest()}"\n{table}')))
    unet, _ = ModelPool("dd-default").unet("local", use_checkpoint=False)
    assert all(torch.equal(unet.state_dict()[k], v) for k, v in state.items())
    (tmp_path / "mine.pt").unlink()
    with pytest.raises(ModelError, match=r"Fix `path` in \[models.custom.local\]"):
        ModelPool("dd-default").unet("local", use_checkpoint=False)


def test_render_animate_study_and_gobig_register_the_config_files_custom_models(tmp_path: Path) -> None:
    """gobig too: it re-diffuses the tiles with the image's own model, which may be a custom one."""
    from disco.cli import build_parser, run
    path = custom_config(tmp_path, mine=f'url = "https://e.org/m.pt"\nsha256 = "{SHA}"')
    for command in ("render", "animate", "study", "gobig"):
        argv = [command, "a lighthouse", "--config", str(path)]
        if command == "study":
            argv += ["--x", "steps=3,4"]
        if command == "gobig":
            argv = [command, str(tmp_path / "mine_0.png"), "--config", str(path)]
        args = build_parser().parse_args(argv)
        seen = []
        args.func = lambda parsed: seen.append(registry.custom_model_names()) or 0
        assert run(args) == 0 and seen == [("mine",)]
