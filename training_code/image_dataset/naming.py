"""Which dataset names and versions a cloud run can carry, in one place for ``imgclf upload``
and the trigger Lambda.

A dataset lives at ``s3://<bucket>/datasets/<name>/<version>/``. Most names derived from it
are made valid whatever the name: the Step Functions execution name, and from it the job names,
are mapped to ``[A-Za-z0-9-_]`` and shortened with a hash (lambdas/trigger, lambdas/training).
One value cannot be mapped, since it must name the real object: the validation report's S3 URI,
which the workflow records in the model package's ``CustomerMetadataProperties``. SageMaker takes
there at most 256 characters of letters, digits, separators and ``_ . : / = + - @`` (the
model's pattern is ``[\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@]*``), and refuses anything else after
the GPU job has run. So a name and a version are each 1 to 64 characters of letters, digits,
spaces and ``_ . : = + - @``: the URI then has at most
5 + 63 (bucket) + 1 + 9 + 64 + 1 + 64 + 1 + 22 = 230 characters. Line and paragraph separators
are refused too: the ``S3Uri`` members' patterns (Java's ``.*``) do not match them.
"""

from __future__ import annotations

import unicodedata
from typing import Optional

MAX_PART = 64  # characters of a dataset name or version
MAX_METADATA_VALUE = 256  # SageMaker's CustomerMetadataValue
METADATA_PUNCTUATION = "_.:/=+-@"  # what CustomerMetadataValue allows besides letters, digits, separators
NAME_PUNCTUATION = "_.:=+-@"
RULE = f"a dataset name and version are each 1-{MAX_PART} characters of letters, digits, spaces and " + " ".join(
    NAME_PUNCTUATION
)


class DatasetNameError(ValueError):
    """A dataset name or version that a cloud run cannot carry; the message names the rule."""


def _metadata_character(char: str) -> bool:
    """SageMaker's ``[\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@]``."""
    return char in METADATA_PUNCTUATION or unicodedata.category(char)[0] in "LZN"


def metadata_value_problem(value: str) -> Optional[str]:
    """Why SageMaker would refuse ``value`` in ``CustomerMetadataProperties``, or None."""
    if not 1 <= len(value) <= MAX_METADATA_VALUE:
        return f"{len(value)} characters, not 1-{MAX_METADATA_VALUE}"
    bad = sorted({c for c in value if not _metadata_character(c)})
    if bad:
        return "{} not allowed (letters, digits, spaces and {} only)".format(
            " ".join(repr(c) for c in bad), " ".join(METADATA_PUNCTUATION)
        )
    return None


def metadata_value(text: str) -> str:
    """``text`` made a valid ``CustomerMetadataProperties`` value: each other character becomes
    ``-``, and it is cut to 256 characters."""
    mapped = "".join(c if _metadata_character(c) else "-" for c in text)[:MAX_METADATA_VALUE]
    return mapped or "-"


def _name_character(char: str) -> bool:
    return char in NAME_PUNCTUATION or unicodedata.category(char) in ("Zs",) or unicodedata.category(char)[0] in "LN"


def name_problem(what: str, value: str) -> Optional[str]:
    """Why ``value`` cannot be a dataset ``what`` ("name" or "version"), or None."""
    if value in (".", ".."):
        return f"dataset {what} {value!r} is a path step; {RULE}"
    if not 1 <= len(value) <= MAX_PART:
        return f"dataset {what} {value[:80]!r} has {len(value)} characters; {RULE}"
    bad = sorted({c for c in value if not _name_character(c)})
    if bad:
        listed = " ".join(repr(c) for c in bad)
        return f"dataset {what} {value!r}: {listed} not allowed; {RULE}"
    return None


def check_dataset_location(name: str, version: str) -> None:
    """:class:`DatasetNameError` unless every request a run of ``datasets/<name>/<version>/``
    makes can be valid."""
    for what, value in (("name", name), ("version", version)):
        problem = name_problem(what, value)
        if problem:
            raise DatasetNameError(problem)
