"""The training code as SageMaker script mode takes it: ``sourcedir.tar.gz`` with the entry
points and packages of training_code/ at its root. Built deterministically (sorted, no
timestamps) so an unchanged tree keeps its asset hash, and uploaded as a file asset: CDK's
directory assets are zips. The archive is written into the cloud assembly's folder (where CDK
then stages it as an asset), never into the source tree."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path
from typing import List

from aws_cdk import Stage
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

ROOT = Path(__file__).resolve().parents[1]
TRAINING_CODE = ROOT / "training_code"
BUILD_FOLDER = "imgclf-sourcedir"  # in the cloud assembly's folder (cdk.out)


def source_files() -> List[Path]:
    return sorted(
        p
        for p in TRAINING_CODE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def build_sourcedir() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in source_files():
            info = tarfile.TarInfo(path.relative_to(TRAINING_CODE).as_posix())
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


class SourceDir(Construct):
    """The asset; ``s3_uri`` is what the code channel points at."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        data = build_sourcedir()
        stage = Stage.of(self)
        assert stage is not None, "a SourceDir belongs to an app"
        folder = Path(stage.asset_outdir) / BUILD_FOLDER / hashlib.sha256(data).hexdigest()[:16]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "sourcedir.tar.gz"
        if not path.exists():
            path.write_bytes(data)
        self.asset = s3_assets.Asset(self, "Asset", path=str(path))
        self.s3_uri = self.asset.s3_object_url

    def grant_read(self, job_role: iam.IRole) -> None:
        """What a SageMaker job needs to download the code as an ``S3Prefix`` input: SageMaker
        lists the prefix (the object's key) before it gets the object."""
        bucket, key = self.asset.bucket, self.asset.s3_object_key
        job_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringEquals": {"s3:prefix": [key]}},
            )
        )
        job_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(key)])
        )
