"""Entry points: the ``imgclf`` command-line tool and the local pipeline. The CDK app that cdk.json
runs is ``infra.app``."""
