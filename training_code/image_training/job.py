"""The SageMaker training-container contract, read once: paths, channels, hosts, GPUs and the
hyperparameters as SageMaker passes them (strings in hyperparameters.json, ``--key value``)."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, NamedTuple, Optional, Sequence


def _base() -> str:
    return os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml")


def _read_json(path: str, default: Any) -> Any:
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


class TrainingJob(NamedTuple):
    model_dir: str
    output_dir: str  # where the failure reason goes
    output_data_dir: str
    checkpoint_dir: str
    channels: Dict[str, str]  # channel name -> local folder
    input_modes: Dict[str, str]  # channel name -> File, FastFile or Pipe
    hyperparameters: Dict[str, Any]
    hosts: List[str]
    current_host: str
    num_gpus: int

    @classmethod
    def from_environment(cls, argv: Optional[Sequence[str]] = None) -> TrainingJob:
        """Read the job as the container sees it: SM_* variables first, then the /opt/ml tree
        (SAGEMAKER_BASE_DIR moves it, as in the sagemaker-training toolkit)."""
        base = _base()
        config = os.path.join(base, "input", "config")
        data_config = _read_json(os.path.join(config, "inputdataconfig.json"), {})
        resources = _read_json(os.path.join(config, "resourceconfig.json"), {})
        data_root = os.path.join(base, "input", "data")
        channels = {
            name: os.environ.get("SM_CHANNEL_" + name.upper(), os.path.join(data_root, name)) for name in data_config
        }
        for key, value in os.environ.items():  # channels that only the environment names
            if key.startswith("SM_CHANNEL_") and key[11:].lower() not in channels:
                channels[key[11:].lower()] = value
        hyperparameters = _read_json(os.path.join(config, "hyperparameters.json"), {})
        if argv:
            from .hyperparameters import parse_cli_args

            hyperparameters.update(parse_cli_args(argv))
        hosts = json.loads(os.environ["SM_HOSTS"]) if "SM_HOSTS" in os.environ else resources.get("hosts", ["algo-1"])
        return cls(
            model_dir=os.environ.get("SM_MODEL_DIR", os.path.join(base, "model")),
            output_dir=os.environ.get("SM_OUTPUT_DIR", os.path.join(base, "output")),
            output_data_dir=os.environ.get("SM_OUTPUT_DATA_DIR", os.path.join(base, "output", "data")),
            checkpoint_dir=os.environ.get("IMGCLF_CHECKPOINT_DIR", os.path.join(base, "checkpoints")),
            channels=channels,
            input_modes={name: cfg.get("TrainingInputMode", "File") for name, cfg in data_config.items()},
            hyperparameters=hyperparameters,
            hosts=list(hosts),
            current_host=os.environ.get("SM_CURRENT_HOST", resources.get("current_host", "algo-1")),
            num_gpus=int(os.environ.get("SM_NUM_GPUS", "0")),
        )
