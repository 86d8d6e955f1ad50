"""Runs inside a backend environment (.venv-mxnet, .venv-tf) in the role of the SageMaker
framework container's start-up: the real sagemaker-training toolkit reads the /opt/ml-style tree
under SAGEMAKER_BASE_DIR, copies the source directory to code/, and starts the entry point with
``--key value`` arguments and the SM_* environment, exactly as in the container.

Started by app.local_sagemaker; imports only the standard library and the toolkit."""

import os
import sys


def start_parameter_servers(env) -> None:  # type: ignore[no-untyped-def]
    """What the AWS MXNet container does for ``sagemaker_parameter_server_enabled``: the first
    host runs the scheduler, every host a server, and the training script joins as a worker."""
    import subprocess

    hosts = list(env.hosts)
    role_env = {
        "DMLC_NUM_WORKER": str(len(hosts)),
        "DMLC_NUM_SERVER": str(len(hosts)),
        "DMLC_PS_ROOT_URI": "127.0.0.1",  # the local hosts are processes on this machine
        "DMLC_PS_ROOT_PORT": str(env.hyperparameters.get("_ps_port", "8000")),
        "DMLC_NODE_HOST": "127.0.0.1",
        "PS_VERBOSE": str(env.hyperparameters.get("_ps_verbose", "0")),
    }
    roles = (["scheduler"] if env.current_host == hosts[0] else []) + ["server"]
    for role in roles:  # their output goes to a file: they must not hold the job log's pipe open
        with open(f"parameter-{role}.log", "w") as log:
            subprocess.Popen(
                [sys.executable, "-c", "import mxnet"],
                env=dict(os.environ, DMLC_ROLE=role, **role_env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    os.environ.update(role_env, DMLC_ROLE="worker")


def multi_worker_config(env) -> None:  # type: ignore[no-untyped-def]
    """What the AWS TensorFlow container does for sagemaker_multi_worker_mirrored_strategy_enabled:
    TF_CONFIG naming every host as a worker (here processes on this machine, a port each)."""
    import json

    hosts = list(env.hosts)
    port = int(env.hyperparameters.get("_mwms_port", "8890"))
    config = {
        "cluster": {"worker": [f"127.0.0.1:{port + i}" for i in range(len(hosts))]},
        "task": {"type": "worker", "index": hosts.index(env.current_host)},
    }
    os.environ["TF_CONFIG"] = json.dumps(config)


# what each framework container does before the entry point when its distribution key is set:
# MXNet starts parameter servers, TensorFlow writes TF_CONFIG. The keys are the containers' own
# (imgclf_core.backends records them for the planner; tests/unit/test_container_entry_engines.py
# checks that the two agree): this module plays the container's start-up, which runs before the
# source directory, and so the core, is on the path.
ENGINES = {
    "mxnet": ("sagemaker_parameter_server_enabled", start_parameter_servers),
    "tensorflow": ("sagemaker_multi_worker_mirrored_strategy_enabled", multi_worker_config),
}


def main() -> int:
    os.environ.setdefault("SM_STUDIO_LOCAL_MODE", "true")  # hosts are local processes: no DNS wait
    from sagemaker_training import entry_point, environment, errors, runner

    env = environment.Environment()
    flag, start_engine = ENGINES.get(os.environ.get("IMGCLF_FRAMEWORK", ""), ("", None))
    if start_engine is not None and env.additional_framework_parameters.get(flag):
        start_engine(env)
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
