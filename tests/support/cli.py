"""`disco ARGS` run in the test's own process (`disco.cli.main`), answered as a child process's
would be: a child costs ~1 s of start-up, ~7 s once it loads torch. Where the process itself is
not the point (a second run over the same folder, a refusal, a report's JSON), this checks the
same; the command as a user starts it (`python -m disco`) keeps a child test of its own."""
from __future__ import annotations

import logging
import subprocess
import sys


def disco_here(capture, *argv: str) -> subprocess.CompletedProcess:
    """Exit code, stdout and stderr of `disco ARGV`. `capture` is pytest's capsys, or capfd to
    also catch what C code writes to the file descriptors (stdout that must be JSON alone).
    argparse's usage errors exit via SystemExit; an exception escaping `main` fails the test, as
    a child's traceback would; log records at WARNING and above reach stderr, as in a child."""
    from disco.cli import main

    capture.readouterr()  # what the test printed before is not this command's
    to_stderr = logging.StreamHandler(sys.stderr)  # the captured stream, as the CLI's basicConfig
    to_stderr.setLevel(logging.WARNING)
    logging.getLogger().addHandler(to_stderr)
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    finally:
        logging.getLogger().removeHandler(to_stderr)
    out, err = capture.readouterr()
    return subprocess.CompletedProcess(list(argv), code, out, err)
