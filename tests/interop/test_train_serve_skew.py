"""No train/serve skew: for the same encoded image, MXNet's ImageRecordIter (the training and
validation input, OpenCV inside) and the serving preprocessing give the same tensor."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.builders import noisy_jpeg, png, write_rec

pytestmark = pytest.mark.mxnet

COMPARE = """
import json, sys
import numpy as np
import mxnet as mx
from image_training.serving import preprocess
from image_training.mxnet_train import MEAN_RGB, STD_RGB
rec, shape, resize, n = sys.argv[1], tuple(json.loads(sys.argv[2])), int(sys.argv[3]), int(sys.argv[4])
it = mx.io.ImageRecordIter(path_imgrec=rec, data_shape=shape, batch_size=1, resize=resize, shuffle=False,
                           mean_r=MEAN_RGB[0], mean_g=MEAN_RGB[1], mean_b=MEAN_RGB[2],
                           std_r=STD_RGB[0], std_g=STD_RGB[1], std_b=STD_RGB[2])
from image_dataset.recordio import RecordIOReader, unpack
images = [unpack(r)[1] for _, r in RecordIOReader(open(rec, 'rb'))]
worst = 0.0
for i, batch in enumerate(it):
    if i >= n:
        break
    train = batch.data[0].asnumpy()
    serve = preprocess(images[i], shape, resize, MEAN_RGB, STD_RGB)
    worst = max(worst, float(np.abs(train - serve).max()))
print(json.dumps({"worst": worst}))
"""


@pytest.mark.parametrize("shape, resize", [((3, 32, 32), 40), ((3, 24, 24), 24)])
def test_imagerecorditer_and_serving_give_the_same_tensor(tmp_path, in_mxnet, shape, resize) -> None:
    images = [noisy_jpeg(60, 45, 1), noisy_jpeg(37, 80, 2), png(50, 50, (10, 200, 30)), noisy_jpeg(24, 24, 3)]
    rec = write_rec(str(tmp_path / "s.rec"), [(0, img) for img in images], with_idx=False)
    out = json.loads(
        in_mxnet(COMPARE, rec, json.dumps(list(shape)), str(resize), str(len(images))).strip().splitlines()[-1]
    )
    # the same decoder, resize and crop: equal up to float rounding (in units of normalised pixels)
    assert out["worst"] < 1e-4, out
    assert np.isfinite(out["worst"])
