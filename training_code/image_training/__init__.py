"""Training code shared by both backends: hyperparameter schemas, the SageMaker container
contract (paths, environment, failure reasons), evaluation. Python 3.8 compatible: the MXNet
1.9 container runs it."""
