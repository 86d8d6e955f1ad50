"""Why a job failed, as SageMaker's built-in algorithms say it: ``ClientError:`` for bad data or
configuration (retrying will not help), ``AlgorithmError:`` for faults of the code."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable

from image_dataset.issues import DatasetError


class ClientError(Exception):
    """The job's input or configuration is wrong; the message says what and where."""


class HyperparameterError(ClientError):
    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"hyperparameter {name}: {message}")


def failure_text(error: BaseException) -> str:
    if isinstance(error, (ClientError, DatasetError)):
        return f"ClientError: {error}"
    return f"AlgorithmError: {type(error).__name__}: {error}"


def run_job(main: Callable[[], None], output_dir: str, file_name: str = "failure") -> int:
    """Run ``main``; on failure write the reason to ``output_dir/file_name`` and return 1
    (training jobs: output/failure; processing jobs: /opt/ml/output/message)."""
    try:
        main()
        return 0
    except BaseException as error:  # noqa: BLE001 - every failure must leave its reason
        if isinstance(error, SystemExit) and not error.code:
            return 0
        text = failure_text(error)
        if not isinstance(error, (ClientError, DatasetError)):
            traceback.print_exc()
        sys.stderr.write(text + "\n")
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, file_name), "w") as f:
            f.write(text[: 1024 * 1024])
        return 1
