"""The TensorFlow backend environment sees the same dataset-format core as every other part."""

from __future__ import annotations

import json

from tests.builders import jpeg, write_rec

READ_IN_TF = """
import json, sys
import tensorflow as tf
from image_dataset.recordio import RecordIOReader, unpack
shapes, labels = [], []
with open(sys.argv[1], 'rb') as f:
    for _, record in RecordIOReader(f):
        header, image = unpack(record)
        shapes.append(list(tf.io.decode_jpeg(image).shape))
        labels.append(header.label)
print(json.dumps({'version': tf.__version__, 'shapes': shapes, 'labels': labels}))
"""


def test_tensorflow_env_reads_recordio_with_the_shared_core(tmp_path, in_tensorflow) -> None:
    rec = write_rec(str(tmp_path / "d.rec"), [(i, jpeg(20 + i, 10)) for i in range(3)])
    out = json.loads(in_tensorflow(READ_IN_TF, rec).strip().splitlines()[-1])
    assert out["version"] == "2.21.0"  # the version of the AWS TensorFlow training container we target
    assert out["shapes"] == [[10, 20, 3], [10, 21, 3], [10, 22, 3]]
    assert out["labels"] == [0.0, 1.0, 2.0]
