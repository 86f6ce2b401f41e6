"""`disco worker`'s refusals (one line each, before anything heavy loads), `disco workers`,
`[engine] devices` in the config file, and a job's memory need and models fixed at enqueue.
In-process (`disco.cli.main`), so the cases stay fast."""
from __future__ import annotations

import asyncio
import json

import pytest

from bot.config import BotConfig
from commands.job_size import job_size
from disco.cli import main
from disco.config import ConfigError, load_config
from engine.cli.worker import has_password
from engine.spec.render import RenderSpec
from engine.spec.study import build_study
from storage import Database, WorkerFit


def disco(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


@pytest.mark.parametrize("url", ["postgresql://disco:s3cret@db.lan/disco",
                                 "postgresql://disco@db.lan/disco?sslmode=require&password=s3cret",
                                 "host=db.lan user=disco password=s3cret"])
def test_a_password_on_the_command_line_is_refused_in_one_line(capsys, url):
    code, _, err = disco(capsys, "worker", "--database", url)
    assert code == 2 and err.count("\n") == 1 and "s3cret" not in err
    assert all(word in err for word in ("ps", "DISCO_DATABASE_URL", "PGPASSWORD", ".pgpass", "--database-file"))


@pytest.mark.parametrize("url, says", [("mysql://disco@db.lan/disco", "scheme 'mysql' is not supported"),
                                       ("postgresql://disco@db.lan:port/disco", "port is not a number"),
                                       ("db.lan", "scheme 'none' is not supported")])
def test_a_bad_url_is_one_line(capsys, url, says):
    code, _, err = disco(capsys, "worker", "--database", url)
    assert code == 2 and err.count("\n") == 1 and says in err and "postgresql://USER@HOST" in err


def test_a_url_file_may_hold_the_password_but_is_still_checked(tmp_path, capsys):
    url_file = tmp_path / "url"
    url_file.write_text("mysql://disco:s3cret@db.lan/disco\n")
    code, _, err = disco(capsys, "worker", "--database-file", str(url_file))
    assert code == 2 and "scheme 'mysql'" in err and "s3cret" not in err
    code, _, err = disco(capsys, "worker", "--database-file", str(url_file), "--database", "sqlite:///x.db")
    assert code == 2 and "not both" in err


def test_password_detection_leaves_plain_urls_alone():
    assert not has_password("postgresql://disco@db.lan:5432/disco?sslmode=verify-full")
    assert not has_password("postgresql://disco@/disco?host=/run/postgresql")
    assert has_password("postgres://u:p@h/d")


def test_worker_bounds_are_argparse_errors(capsys):
    for flag, value in (("--memory-gb", "-1"), ("--max-pixels", "1e12")):
        code, _, err = disco(capsys, "worker", "--database", "sqlite:///x.db", flag, value)
        assert code == 2 and flag in err


def test_memory_gb_takes_a_fraction_as_the_config_key_does():
    """A card's memory is rarely whole (22.5, 79.6): `--memory-gb` reads what `[engine]
    gpu_memory_gb` reads."""
    from disco.cli import build_parser

    args = build_parser().parse_args(["worker", "--database", "sqlite:///x.db", "--memory-gb", "22.5"])
    assert args.memory_gb == 22.5


def test_disco_workers_lists_the_fleet(tmp_path, capsys):
    async def fill():
        async with await Database.open(tmp_path / "disco.db") as db:
            await db.workers.register("worker:gpu-a:cuda:1:9", host="gpu-a", device="cuda:1",
                                      fit=WorkerFit(model_sets=("dd-default",), memory_gb=24))
    assert "no workers" in disco(capsys, "workers", "--data-dir", str(tmp_path))[1]
    asyncio.run(fill())
    code, out, _ = disco(capsys, "workers", "--data-dir", str(tmp_path))
    assert code == 0 and "gpu-a" in out and "cuda:1" in out and "dd-default" in out and "1 live of 1" in out
    code, out, _ = disco(capsys, "workers", "--json", "--data-dir", str(tmp_path))
    row = json.loads(out)
    assert row["device"] == "cuda:1" and row["live"] is True and row["jobs_done"] == 0


def test_disco_workers_names_the_queued_jobs_no_live_worker_can_run(tmp_path, capsys):
    """Jobs queued for a model set no live worker runs (or too large for every one) wait
    forever without a word: `disco workers` says so, and which worker to start."""
    from dataclasses import replace
    from tests.support.workers import tiny_still

    async def fill():
        async with await Database.open(tmp_path / "disco.db") as db:
            await db.workers.register("worker:gpu-a:cuda:0:9", host="gpu-a", device="cuda:0",
                                      fit=WorkerFit(model_sets=("test-tiny",), memory_gb=8))
            await db.jobs.enqueue(tiny_still(1, 1, 1, seed=1))  # fits
            await db.jobs.enqueue(replace(tiny_still(1, 1, 2, seed=2), model_set="dd-default"))
            await db.jobs.enqueue(replace(tiny_still(1, 1, 3, seed=3), model_set="dd-default"))
            await db.jobs.enqueue(replace(tiny_still(1, 1, 4, seed=4), memory_gb=12.0))
    asyncio.run(fill())
    code, out, _ = disco(capsys, "workers", "--data-dir", str(tmp_path))
    assert code == 0 and "1 live of 1 registered" in out
    assert ("2 queued job(s) need model set dd-default, which no live worker runs; start one with "
            "`disco worker --models dd-default`") in out
    assert ("1 queued job(s) of model set test-tiny are larger than every live worker takes "
            "(--memory-gb, --max-pixels); start one that takes them, or cancel them") in out


def test_a_worker_without_its_model_files_refuses_to_start_and_claims_nothing(tmp_path, capsys):
    """A new GPU host started before `disco models download`: the worker would claim every
    dd-default job and fail each for good (a missing file is no retry), emptying the queue
    into failures. It refuses to start, naming the command that fetches the files."""
    from dataclasses import replace
    from tests.support.workers import tiny_still

    async def queue():
        async with await Database.open(tmp_path / "disco.db") as db:
            return await db.jobs.enqueue(replace(tiny_still(1, 1, 1, seed=1), model_set="dd-default"))
    job = asyncio.run(queue())
    code, _, err = disco(capsys, "worker", "--database", f"sqlite:///{tmp_path / 'disco.db'}", "--device", "cpu",
                         "--models", "dd-default", "--models-dir", str(tmp_path / "empty-cache"), "--burst")
    assert code == 2 and err.count("\n") == 1
    assert "model set dd-default: none of its default files are in " in err and str(tmp_path / "empty-cache") in err
    assert "run `disco models download --set dd-default` on this host first (or start with --allow-download)" in err

    async def after():
        async with await Database.open(tmp_path / "disco.db") as db:
            return await db.jobs.get(job.id)
    assert asyncio.run(after()).state == "queued"


def test_engine_devices_in_the_config_file(tmp_path):
    config = tmp_path / "disco.toml"
    config.write_text('[engine]\ndevices = ["cuda:0", "cuda:1"]\n')
    sections = load_config(config)
    bot = BotConfig.from_sections(sections, tmp_path)
    assert bot.engine.devices == ("cuda:0", "cuda:1")
    assert bot.engine.arguments("cuda:1")[bot.engine.arguments("cuda:1").index("--device") + 1] == "cuda:1"
    for bad in ('devices = ["cuda:0", 1]', 'devices = ["' + "x" * 40 + '"]', f"devices = {['cpu'] * 17}"):
        config.write_text(f"[engine]\n{bad}\n")
        with pytest.raises(ConfigError, match="devices is a list"):
            load_config(config)


def test_a_job_carries_its_memory_need_and_models():
    small, large = RenderSpec(width=256, height=256), RenderSpec(width=1024, height=768)
    assert 0 < job_size(small).memory_gb < job_size(large).memory_gb
    assert job_size(small).models == job_size(large).models
    assert job_size(small).models.startswith(f"{small.diffusion_model}+")
    two_models = RenderSpec(clip_models=["ViT-B-32::openai"])
    assert job_size(two_models).models != job_size(small).models
    study = build_study(RenderSpec(width=256, height=256), x="width=256,512")
    assert job_size(study).memory_gb == job_size(RenderSpec(width=512, height=256)).memory_gb


def test_the_database_url_may_come_from_a_file(tmp_path, monkeypatch):
    from storage import database_url
    from storage.errors import InvalidValue

    monkeypatch.delenv("DISCO_DATABASE_URL", raising=False)
    secret = tmp_path / "database_url"
    secret.write_text("postgresql://disco:s3cret@postgres/disco\n")
    monkeypatch.setenv("DISCO_DATABASE_URL_FILE", str(secret))
    assert database_url(tmp_path, "sqlite:///other.db") == "postgresql://disco:s3cret@postgres/disco"
    monkeypatch.setenv("DISCO_DATABASE_URL", "postgresql://disco@env/disco")
    assert database_url(tmp_path) == "postgresql://disco@env/disco"  # the variable itself wins
    monkeypatch.delenv("DISCO_DATABASE_URL")
    monkeypatch.setenv("DISCO_DATABASE_URL_FILE", str(tmp_path / "missing"))
    with pytest.raises(InvalidValue, match="DISCO_DATABASE_URL_FILE: cannot read"):
        database_url(tmp_path)
    secret.write_bytes(b"x" * 5000)
    monkeypatch.setenv("DISCO_DATABASE_URL_FILE", str(secret))
    with pytest.raises(InvalidValue, match="over 4096 bytes"):
        database_url(tmp_path)
