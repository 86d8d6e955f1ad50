"""The TensorFlow input pipeline keeps a .rec's encoded records in memory after the first epoch
when they fit (tf_data.cacheable): later epochs give the same records, reshuffled, without the
Python reader."""

from __future__ import annotations

import json

import pytest

from tests.builders import png

CODE = """
import json, sys
from unittest import mock
from image_dataset.recordio import RecordIOWriter, pack
from image_training import tf_data, tf_hyperparameters

rec = sys.argv[1]
with RecordIOWriter(rec) as writer:
    for i in range(int(sys.argv[2])):
        writer.write(pack(float(i % 3), open(sys.argv[3], "rb").read(), id=i))
hp = tf_hyperparameters.parse({"image_size": "32", "augmentation": "False"})
out = {"cacheable": tf_data.cacheable(rec)}
with mock.patch.object(tf_data, "CACHE_SHARE", 0.0):
    out["too_big"] = tf_data.cacheable(rec)
reads = []
real = tf_data.records
def counted(*args):
    reads.append(1)
    return real(*args)
with mock.patch.object(tf_data, "records", counted):
    data = tf_data.dataset(rec, hp, 3, True, 4)
    epochs = [[int(t) for _, y in data for t in y.numpy().argmax(axis=1)] for _ in range(2)]
out["epochs"] = epochs
out["reads"] = len(reads)
print(json.dumps(out))
"""


@pytest.mark.tensorflow
def test_later_epochs_come_from_the_memory_cache(tmp_path, in_tensorflow) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(png(12, 10))
    out = json.loads(in_tensorflow(CODE, str(tmp_path / "d.rec"), "30", str(image)).strip().splitlines()[-1])
    assert out["cacheable"] is True and out["too_big"] is False
    first, second = out["epochs"]
    assert sorted(first) == sorted(second) == sorted(i % 3 for i in range(30))
    assert out["reads"] == 1  # the second epoch did not read the file again
