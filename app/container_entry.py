"""Runs inside a backend environment (.venv-mxnet, .venv-tf) in the role of the SageMaker
framework container's start-up: the real sagemaker-training toolkit reads the /opt/ml-style tree
under SAGEMAKER_BASE_DIR, copies the source directory to code/, and starts the entry point with
``--key value`` arguments and the SM_* environment, exactly as in the container.

Started by app.local_sagemaker; imports only the standard library and the toolkit."""

import os
import sys


def main() -> int:
    os.environ.setdefault("SM_STUDIO_LOCAL_MODE", "true")  # hosts are local processes: no DNS wait
    from sagemaker_training import entry_point, environment, errors, runner

    env = environment.Environment()
    try:
        entry_point.run(
            uri=env.module_dir,
            user_entry_point=env.user_entry_point,
            args=env.to_cmd_args(),
            env_vars=env.to_env_vars(),
            runner_type=runner.ProcessRunnerType,
        )
    except errors.ExecuteUserScriptError as error:
        return int(getattr(error, "return_code", 1) or 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
