"""The domain core that the cloud workflow's Lambdas, the CDK constructs and the local pipeline
share: the backend registry, the run plan, the S3 layout and environment contract, and the gate
and trigger rules. Pure Python 3.8 with the packages of the containers only (no boto3, no CDK),
so the same rules run in a Lambda, in a training container and on a laptop."""
