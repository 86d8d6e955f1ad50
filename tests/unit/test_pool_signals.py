"""A pool's workers die when the pool terminates them, whatever SIGTERM handler the process that
forked them had: a process that ran ``imgclf train`` in-process (its SIGTERM handler raises
KeyboardInterrupt) and a handler that only records the signal once left ``pack``'s Pool waiting
forever for a worker that ran the handler and lived on."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

PACK_WITH_A_HANDLER = textwrap.dedent(
    """
    import signal, sys
    from app.cli.main import main
    from tests.builders import folder_dataset

    signal.signal(signal.SIGTERM, lambda *_: None)  # a handler that does not exit
    root = sys.argv[1]
    folder_dataset(root + "/data", {"a": 40, "b": 40}, channels=("train",))
    sys.exit(main(["pack", root + "/data/train", root + "/out", "--workers", "2"]))
    """
)


def test_pack_finishes_under_a_sigterm_handler_that_does_not_exit(tmp_path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", PACK_WITH_A_HANDLER, str(tmp_path)],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "80" in run.stdout, run.stdout


def test_decode_workers_take_the_default_signals() -> None:
    import signal

    from image_dataset.images import default_signals

    previous = signal.signal(signal.SIGTERM, lambda *_: None), signal.getsignal(signal.SIGINT)
    try:
        default_signals()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
