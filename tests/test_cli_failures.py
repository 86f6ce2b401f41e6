"""The `disco` command line never prints a traceback: each known failure is one line that says
what to do, an unexpected one is one line naming the file that holds the traceback, and every
read of a user's file is bounded. In-process (`disco.cli.main`), so the cases stay fast."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from disco import cli as entry
from disco.cli import main


def disco(capsys, *argv: str) -> tuple[int, str]:
    """Exit code and stderr of `disco argv` (argparse's own usage errors exit via SystemExit)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def submit(capsys, data: Path, *extra: str) -> tuple[int, str]:
    """`disco jobs submit`; the prompt comes from the file when `extra` names a --spec."""
    prompt = [] if "--spec" in extra else ["a cat"]
    return disco(capsys, "jobs", "submit", *prompt, "--guild", "1", "--channel", "2", "--user", "3",
                 "--data-dir", str(data), *extra)


def test_a_damaged_row_is_listed_with_its_damage_not_fatal(tmp_path, capsys):
    assert submit(capsys, tmp_path)[0] == 0
    with sqlite3.connect(tmp_path / "disco.db") as conn:
        job_id = conn.execute("SELECT id FROM jobs").fetchone()[0]
        conn.execute("UPDATE jobs SET artifacts_json = '{bad', result_message_ids = '[1]'")
    assert main(["jobs", "list", "--data-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr()
    assert "queued (damaged row)" in listing.out and "Traceback" not in listing.err
    assert main(["jobs", "show", job_id, "--json", "--data-dir", str(tmp_path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["damaged"] == ["artifacts_json", "result_message_ids"] and shown["artifacts"] == []


def test_database_problems_are_one_line(tmp_path, capsys):
    assert submit(capsys, tmp_path / "dropped")[0] == 0
    with sqlite3.connect(tmp_path / "dropped" / "disco.db") as conn:
        conn.execute("DROP TABLE jobs")
    cases = {"dropped": "table jobs is missing", "file": "is a file, not a folder",
             "link": "symbolic link", "fifo": "not a regular file"}
    (tmp_path / "file").write_text("")
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "disco.db").symlink_to(tmp_path / "nowhere")
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / "disco.db")
    for folder, words in cases.items():
        code, err = disco(capsys, "jobs", "list", "--data-dir", str(tmp_path / folder))
        assert code == 2 and words in err and err.count("\n") == 1, (folder, err)
    assert not (tmp_path / "nowhere").exists()  # the link's target was not created


@pytest.mark.parametrize("argv", [
    ["--max-attempts", str(10**30)], ["--max-attempts", "0"], ["--steps", "0" * 5000 + "5"],
    ["--seed", "-1"], ["--width", "1e9"], ["--batches", "101"], ["--batches", "0"],
])
def test_numbers_on_the_command_line_are_bounded(tmp_path, capsys, argv):
    code, err = submit(capsys, tmp_path, *argv)
    assert code == 2 and "give a whole number from" in err


def test_the_batches_bound_is_render_specs_own():
    """`--batches` refuses exactly what RenderSpec's n_batches refuses, on `disco render` too."""
    from disco.cli import build_parser
    from engine.errors import SpecError
    from engine.spec.render import RenderSpec

    RenderSpec(n_batches=100)
    with pytest.raises(SpecError):
        RenderSpec(n_batches=101)
    assert build_parser().parse_args(["render", "x", "--batches", "100"]).batches == 100
    with pytest.raises(SystemExit):
        build_parser().parse_args(["render", "x", "--batches", "101"])


@pytest.mark.parametrize("content, words", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("[1, 2]", "mapping"),
    ('{"render": 5}', "render"),
    ("\xff\xfe", "as JSON"),
])
def test_spec_and_settings_files_of_any_shape_are_refused_in_one_line(tmp_path, capsys, content, words):
    path = tmp_path / "spec.json"
    path.write_text(content, encoding="latin-1")
    for option in ("--spec", "--settings"):
        code, err = submit(capsys, tmp_path / "data", option, str(path))
        assert code == 2 and err.startswith("error:") and err.count("\n") == 1, (option, err)
        assert option == "--settings" or words in err, err


@pytest.mark.parametrize("path", ["/dev/zero", "FIFO"])
def test_reads_of_user_files_are_bounded(tmp_path, capsys, path):
    if path == "FIFO":
        path = str(tmp_path / "fifo")
        os.mkfifo(path)  # opening it would wait for a writer forever
    for option in ("--spec", "--settings"):
        code, err = submit(capsys, tmp_path / "data", option, path)
        assert code == 2 and ("over 4,194,304 bytes" in err or "not a regular file" in err), err


def test_an_unexpected_failure_is_one_line_and_a_log(tmp_path, capsys, monkeypatch):
    def broken(args, config, data_dir):
        raise KeyError("boom")
    parser = entry.build_parser
    monkeypatch.setattr(entry, "build_parser", lambda: _with_func(parser(), broken))
    code, err = disco(capsys, "jobs", "list", "--data-dir", str(tmp_path))
    assert code == 1 and err.count("\n") == 1 and "unexpected KeyError" in err
    log = Path(err.split("traceback is in ")[1].split(",")[0])
    try:
        assert "Traceback" in log.read_text() and "boom" in log.read_text()
    finally:
        log.unlink()


def _with_func(parser, func):
    original = parser.parse_args
    def parse_args(argv=None):
        args = original(argv)
        args.func = func
        return args
    parser.parse_args = parse_args
    return parser


def test_the_config_file_read_is_bounded(tmp_path, capsys):
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 50_000 + "]" * 50_000)
    for config in ("/dev/zero", str(deep), str(tmp_path / "missing.toml")):
        code, err = disco(capsys, "jobs", "list", "--config", config, "--data-dir", str(tmp_path))
        assert code == 2 and err.startswith("error: --config") and err.count("\n") == 1, err


@pytest.mark.parametrize("action", ["show", "fetch", "cancel", "retry"])
def test_an_unknown_job_id_points_at_the_cli_listing_not_discord(tmp_path, capsys, action):
    code, err = disco(capsys, "jobs", action, "nosuchjob", "--data-dir", str(tmp_path))
    assert code == 2 and err.startswith("error: no job 'nosuchjob'; `disco jobs list` shows the ids")
    assert "/queue" not in err and err.count("\n") == 1


def test_a_reader_that_stops_early_is_not_a_bug(tmp_path):
    """`disco models list | head -1`: the pipe closes before disco writes; it stops quietly, as
    a process SIGPIPE stops does (141), with nothing on stderr and no traceback file."""
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        done = subprocess.run([sys.executable, "-m", "disco", "models", "list"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60,
                              env={**os.environ, "TMPDIR": str(tmp_path)})
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")
    assert not list(tmp_path.glob("disco-error-*"))
