"""Entry points: the ``imgclf`` command-line tool and (later) the CDK app that cdk.json runs."""
