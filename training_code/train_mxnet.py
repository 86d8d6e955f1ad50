"""Script-mode entry point of the MXNet backend (``sagemaker_program``): what the AWS MXNet 1.9
training container runs, with the hyperparameters as ``--key value`` arguments."""

import sys

from image_training.errors import run_job
from image_training.job import TrainingJob

if __name__ == "__main__":
    from image_training.mxnet_train import main

    sys.exit(run_job(lambda: main(sys.argv[1:]), TrainingJob.from_environment().output_dir))
