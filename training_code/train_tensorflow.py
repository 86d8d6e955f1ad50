"""Script-mode entry point of the TensorFlow backend (``sagemaker_program``): what the AWS
TensorFlow 2.21 training container runs, with the hyperparameters as ``--key value``."""

import sys

from image_training.errors import run_job
from image_training.job import TrainingJob

if __name__ == "__main__":
    from image_training.tf_train import main

    sys.exit(run_job(lambda: main(sys.argv[1:]), TrainingJob.from_environment().output_dir))
