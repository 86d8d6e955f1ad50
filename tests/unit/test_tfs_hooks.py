"""The TensorFlow backend's hooks for the AWS TensorFlow Serving container (input_handler,
output_handler) run where that container runs them: a Python with the standard library only (its
image installs no numpy or Pillow, and a network-isolated endpoint cannot pip-install), from the
model archive's code/ folder alone. A refused request raises ValueError("STATUS message"), which
the container turns into a 500 whose status the API proxy restores."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Tuple

import pytest
from PIL import Image

from image_training.serving import copy_inference_code, header_size

HOOKS = textwrap.dedent(
    """
    import base64, io, json, sys
    sys.path[:] = [sys.argv[1]] + [p for p in sys.path if "site-packages" not in p and "training_code" not in p]
    for module in ("numpy", "PIL"):
        try:
            __import__(module)
        except ImportError:
            pass
        else:
            raise SystemExit(module + " is importable: the test does not model the container")
    import os
    os.environ["SAGEMAKER_TFS_MODEL_DIR"] = sys.argv[2]
    from inference import input_handler, output_handler

    class Context:
        request_content_type = "image/jpeg"
        accept_header = "application/json;verbose"

    class Response:
        def __init__(self, status, content):
            self.status_code, self.content = status, content

    results = {}
    jpeg = b"\\xff\\xd8\\xff\\xe0" + bytes(100)
    body = json.loads(input_handler(io.BytesIO(jpeg), Context()))
    results["sent"] = base64.b64decode(body["instances"][0]["image_bytes"]["b64"]) == jpeg
    import struct, zlib
    ihdr = struct.pack(">II5B", 20000, 20000, 8, 2, 0, 0, 0)
    bomb = b"\\x89PNG\\r\\n\\x1a\\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    for name, data in (("gif", b"GIF89a" + bytes(10)), ("empty", b""), ("bomb", bomb)):
        try:
            input_handler(io.BytesIO(data), Context())
        except ValueError as err:
            results[name] = str(err)
    answer, kind = output_handler(Response(200, json.dumps({"predictions": [[0.2, 0.8]]}).encode()), Context())
    results["answer"] = [json.loads(answer)["predicted_label"], kind]
    try:
        output_handler(Response(400, b'{"error": "Invalid JPEG data"}'), Context())
    except ValueError as err:
        results["graph"] = str(err)
    from image_dataset.recordio import frame, pack  # shipped in code/: RecordIO bodies need no numpy either

    class Records(Context):
        request_content_type = "application/x-recordio"

    records = Records()
    rec = frame(pack(0.0, jpeg)) + frame(pack(1.0, b"GIF89a" + bytes(10))) + frame(pack(2.0, jpeg))
    results["records_sent"] = len(json.loads(input_handler(io.BytesIO(rec), records))["instances"])
    answer, kind = output_handler(Response(200, json.dumps({"predictions": [[0.2, 0.8], [0.9, 0.1]]}).encode()), records)
    results["records"] = [kind] + [sorted(json.loads(line)) for line in answer.split("\\n")]
    try:
        input_handler(io.BytesIO(rec[:-9]), Records())
    except ValueError as err:
        results["truncated"] = str(err)
    print(json.dumps(results))
    """
)


def test_the_serving_hooks_need_only_the_standard_library(tmp_path: Path) -> None:
    code = tmp_path / "code"
    copy_inference_code(str(code), "tf_inference.py")
    (code / "inference.py").write_text("from image_training.tf_inference import input_handler, output_handler\n")
    info = {"labels": ["cat", "dog"], "top_k": 2}
    (tmp_path / "model-info.json").write_text(json.dumps(info))
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", HOOKS, str(code), str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout)
    assert results["sent"] is True
    assert results["gif"].startswith("400 ") and results["empty"].startswith("400 ")
    assert results["bomb"].startswith("400 the image has 20000x20000 pixels")
    assert results["answer"] == ["dog", "application/json;verbose"]
    assert results["graph"].startswith("400 ") and "Invalid JPEG data" in results["graph"]
    assert results["records_sent"] == 2  # the GIF record is refused before the model, in its place
    assert results["records"] == ["application/jsonlines", ["labels", "predicted_label", "probabilities", "top_k"],
                                  ["error"], ["labels", "predicted_label", "probabilities", "top_k"]]  # fmt: skip
    assert results["truncated"].startswith("400 the RecordIO body is broken at request#record 2 @byte ")


@pytest.mark.parametrize("fmt", ["JPEG", "progressive JPEG", "EXIF JPEG", "PNG", "grey PNG"])
@pytest.mark.parametrize("size", [(1, 1), (37, 21), (640, 480), (3000, 7)])
def test_the_header_size_is_what_pillow_reads(fmt: str, size: Tuple[int, int]) -> None:
    """The decoder-free size check (the pixel cap where no Pillow is installed) reads the size
    that the image's header announces."""
    image = Image.new("L" if "grey" in fmt else "RGB", size)
    out = io.BytesIO()
    if fmt == "EXIF JPEG":
        exif = image.getexif()
        exif[0x0112] = 6
        image.save(out, format="JPEG", exif=exif.tobytes())
    else:
        image.save(out, format=fmt.split()[-1], progressive="progressive" in fmt)
    assert header_size(out.getvalue()) == size
    assert header_size(out.getvalue()[:20]) is None
