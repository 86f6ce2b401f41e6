"""`disco ARGS` run in the test's own process (`disco.cli.main`), answered as a child process's
would be: a child costs ~1 s of start-up, ~7 s once it loads torch. Where the process itself is
not the point (a second run over the same folder, a refusal), this checks the same."""
from __future__ import annotations

import subprocess


def disco_here(capsys, *argv: str) -> subprocess.CompletedProcess:
    """Exit code, stdout and stderr of `disco ARGV` (argparse's usage errors exit via SystemExit);
    an exception escaping `main` fails the test, as a child's traceback would."""
    from disco.cli import main

    capsys.readouterr()  # what the test printed before is not this command's
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(argv), code, out, err)
