"""Pixel fidelity: for every image mode Pillow opens, the pixels that pack stores, that training
input and both serving backends see equal OpenCV's ``cv2.imread(path, IMREAD_COLOR)`` (im2rec's
decoder, BGR -> RGB), within the tolerances below, on Pillow 11 (.venv), Pillow 9.5 (the
Python 3.8 container), with cv2 (.venv-mxnet) and in TensorFlow's graph (.venv-tf). And every
decoding path rejects what validation (images.check_image) rejects, with the same code."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

pytestmark = pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # exif_broken.jpg, on purpose

# max |decoded - cv2.imread| per file, in grey levels (0..255); absent: exact (0)
COLOR_TOLERANCE: Dict[str, int] = {}
GREY_TOLERANCE = {"rgb16.png": 1, "rgba16.png": 1}  # libpng converts 16-bit RGB to grey before it drops the low byte
TURNED = {f"exif{value}" for value in range(2, 9)}  # files OpenCV turns upright
RESIZE_TOLERANCE = 1  # OpenCV's bilinear fixed point, emulated in numpy
TF_TOLERANCE = 0.0  # TensorFlow's graph (accurate DCT), after the same tf.image.resize
TF_RAW_TOLERANCE = {"cmyk.jpg": 1.001}  # the graph on the file's own bytes


def _png(path: Path, array: np.ndarray, color_type: int, depth: int) -> None:
    """A PNG Pillow cannot write (16-bit RGB, RGBA, grey+alpha), chunk by chunk."""
    height, width = array.shape[:2]
    raw = array.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1).tobytes()
    row = len(raw) // height
    body = b"".join(b"\x00" + raw[i * row : (i + 1) * row] for i in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")
    )


def _save(path: Path, image: Image.Image, **options: object) -> None:
    out = io.BytesIO()
    image.save(out, "JPEG" if path.suffix == ".jpg" else "PNG", **options)
    path.write_bytes(out.getvalue())


def make_corpus(folder: Path) -> List[str]:
    """One file per mode, on a textured 61 x 43 picture (odd sizes, chroma subsampling edges)."""
    rng = np.random.default_rng(13)
    y, x = np.mgrid[0:43, 0:61]
    base = np.stack([x * 255 // 61, y * 255 // 43, (x * y) % 256], -1)
    rgb = np.clip(base + rng.integers(-30, 30, base.shape), 0, 255).astype(np.uint8)
    grey = rgb[:, :, 0]
    picture = Image.fromarray(rgb)
    _save(folder / "rgb.png", picture)
    _save(folder / "rgb.jpg", picture, quality=90)
    _save(folder / "rgb444.jpg", picture, quality=90, subsampling=0)
    _save(folder / "rgb422.jpg", picture, quality=75, subsampling=1)
    _save(folder / "progressive.jpg", picture, quality=90, progressive=True)
    _save(folder / "l.jpg", Image.fromarray(grey), quality=90)
    _save(folder / "l.png", Image.fromarray(grey))
    _save(folder / "one.png", Image.fromarray(grey > 128))
    _save(folder / "la.png", Image.merge("LA", [Image.fromarray(grey), Image.fromarray(rgb[:, :, 1])]))
    _save(folder / "rgba.png", Image.merge("RGBA", [*picture.split(), Image.fromarray(rgb[:, :, 2])]))
    palette = picture.quantize(32)
    _save(folder / "p.png", palette)
    _save(folder / "p_transparent.png", palette, transparency=3)
    _save(folder / "p_alpha.png", palette, transparency=bytes(range(0, 256, 8)))
    _save(folder / "l_transparent.png", Image.fromarray(grey), transparency=100)
    _save(folder / "rgb_transparent.png", picture, transparency=(10, 20, 30))
    wide = rgb.astype(np.uint16) * 257 + rng.integers(0, 256, rgb.shape).astype(np.uint16)
    _png(folder / "l16.png", wide[:, :, 0], 0, 16)
    _png(folder / "la16.png", np.dstack([wide[:, :, 0], wide[:, :, 1]]), 4, 16)
    _png(folder / "rgb16.png", wide, 2, 16)
    _png(folder / "rgba16.png", np.dstack([wide, wide[:, :, :1]]), 6, 16)
    _save(folder / "cmyk.jpg", picture.convert("CMYK"), quality=90)  # Adobe marker: inverted
    data = (folder / "cmyk.jpg").read_bytes()
    at = data.find(b"\xff\xee")  # the same without its Adobe APP14 marker
    (folder / "cmyk_plain.jpg").write_bytes(data[:at] + data[at + 2 + int.from_bytes(data[at + 2 : at + 4], "big") :])
    for value in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = value
        _save(folder / f"exif{value}.jpg", picture, quality=90, exif=exif.tobytes())
        _save(folder / f"exif{value}.png", picture, exif=exif.tobytes())
    # an EXIF block that does not parse (an IFD past its end): no turn, no failure
    junk = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03"
    plain = (folder / "rgb.jpg").read_bytes()
    (folder / "exif_broken.jpg").write_bytes(
        plain[:2] + b"\xff\xe1" + struct.pack(">H", len(junk) + 2) + junk + plain[2:]
    )
    # ancillary chunks whose CRCs do not match, before and after IDAT: libpng drops them and warns
    plain = (folder / "rgb.png").read_bytes()
    end = plain.rfind(b"IEND") - 4
    text = b"tEXtComment\0damaged in transit"
    bad = struct.pack(">I", len(text) - 4) + text + struct.pack(">I", zlib.crc32(text) ^ 0xFFFF)
    (folder / "ancillary_crc.png").write_bytes(plain[:33] + bad + plain[33:end] + bad + plain[end:])
    return sorted(p.name for p in folder.iterdir())


REFERENCE = """
import sys, cv2, numpy as np
folder, names = sys.argv[1], sys.argv[2].split(",")
colour = {n: cv2.imread(folder + "/" + n, cv2.IMREAD_COLOR)[:, :, ::-1] for n in names}
grey = {n: cv2.imread(folder + "/" + n, cv2.IMREAD_GRAYSCALE) for n in names}
np.savez(folder + "/colour.npz", **colour)
np.savez(folder + "/grey.npz", **grey)
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated corpus with OpenCV's pixels of every file (colour.npz, grey.npz)."""
    from tests.interop.conftest import runner

    folder = tmp_path_factory.mktemp("pixels")
    names = make_corpus(folder)
    runner(".venv-mxnet")(REFERENCE, str(folder), ",".join(names))
    return folder


# compares image_dataset.pixels and image_training.serving with the reference, in any env
COMPARE = """
import json, sys
import numpy as np
from image_dataset import pixels
from image_training import serving
folder = sys.argv[1]
colour, grey = np.load(folder + "/colour.npz"), np.load(folder + "/grey.npz")
out = {}
for name in colour.files:
    data = open(folder + "/" + name, "rb").read()
    a, g = serving.decode(data, 3), serving.decode(data, 1)[:, :, 0]
    assert a.shape == colour[name].shape and g.shape == grey[name].shape, (name, a.shape, colour[name].shape)
    out[name] = [int(np.abs(a.astype(int) - colour[name]).max()), int(np.abs(g.astype(int) - grey[name]).max())]
print(json.dumps(out))
"""


def _check(diffs: Dict[str, List[int]]) -> None:
    for name, (colour, grey) in diffs.items():
        assert colour <= COLOR_TOLERANCE.get(name, 0), (name, colour)
        assert grey <= GREY_TOLERANCE.get(name, 0), (name, grey)


def test_the_corpus_holds_every_mode(corpus: Path) -> None:
    names = set(np.load(corpus / "colour.npz").files) - {"ancillary_crc.png"}
    modes = {Image.open(corpus / name).mode for name in names}
    assert {"1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16"} <= modes
    # what OpenCV does, measured: EXIF turns (5-8 swap the sides), 16-bit keeps the high byte,
    # an ancillary chunk with a bad CRC is dropped (Pillow alone refuses the file)
    colour = np.load(corpus / "colour.npz")
    assert np.array_equal(colour["ancillary_crc.png"], colour["rgb.png"])
    with pytest.raises(UnidentifiedImageError):
        Image.open(corpus / "ancillary_crc.png")
    assert colour["exif6.jpg"].shape == (61, 43, 3) and colour["exif6.png"].shape == (61, 43, 3)
    wide = np.asarray(Image.open(corpus / "l16.png")).astype(int)
    assert np.array_equal(colour["l16.png"][:, :, 0], wide >> 8)


def test_decoding_equals_opencv_on_pillow_11(corpus: Path) -> None:
    from tests.interop.conftest import runner

    _check(json.loads(runner(".venv")(COMPARE, str(corpus)).strip().splitlines()[-1]))


@pytest.mark.mxnet
def test_decoding_equals_opencv_where_cv2_is_installed(corpus: Path, in_mxnet: Callable[..., str]) -> None:
    _check(json.loads(in_mxnet(COMPARE, str(corpus)).strip().splitlines()[-1]))


def test_decoding_equals_opencv_in_the_container(corpus: Path, in_container: Callable[..., str]) -> None:
    _check(json.loads(in_container(COMPARE, str(corpus)).strip().splitlines()[-1]))


RESIZE = """
import json, cv2, numpy as np
from image_dataset.pixels import resize_linear
rng = np.random.default_rng(5)
worst, shapes = 0, [(43, 61, 24, 17), (300, 200, 64, 96), (37, 53, 80, 120), (640, 480, 256, 341), (9, 9, 9, 9)]
for h, w, th, tw in shapes:
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    want = cv2.resize(img, (tw, th), interpolation=cv2.INTER_LINEAR).astype(int)
    worst = max(worst, int(np.abs(resize_linear(img, tw, th).astype(int) - want).max()))
print(json.dumps(worst))
"""


@pytest.mark.mxnet
def test_resize_without_cv2_equals_cv2_resize(in_mxnet: Callable[..., str]) -> None:
    assert json.loads(in_mxnet(RESIZE).strip().splitlines()[-1]) <= RESIZE_TOLERANCE


PREPROCESS = """
import json, sys
import numpy as np
from image_training.serving import preprocess
folder = sys.argv[1]
mean, std = (123.68, 116.779, 103.939), (58.393, 57.12, 57.375)
out = {}
for name in ("rgb.jpg", "exif6.jpg", "rgb16.png", "big.png"):
    tensor = preprocess(open(folder + "/" + name, "rb").read(), (3, 24, 24), 30, mean, std)
    out[name] = (tensor[0].transpose(1, 2, 0) * np.asarray(std, np.float32) + np.asarray(mean, np.float32)).tolist()
print(json.dumps(out))
"""


@pytest.mark.mxnet
def test_serving_preprocess_is_the_same_with_and_without_cv2(
    corpus: Path, in_mxnet: Callable[..., str], in_container: Callable[..., str]
) -> None:
    """Decode, shorter-side resize (a strong downscale included) and crop: the container
    without OpenCV gives the tensor that cv2 gives, within the resize tolerance."""
    rng = np.random.default_rng(8)
    _save(corpus / "big.png", Image.fromarray(rng.integers(0, 256, (300, 410, 3), dtype=np.uint8)))
    with_cv2 = json.loads(in_mxnet(PREPROCESS, str(corpus)).strip().splitlines()[-1])
    without = json.loads(in_container(PREPROCESS, str(corpus)).strip().splitlines()[-1])
    for name, pixels in with_cv2.items():
        assert np.abs(np.asarray(pixels) - np.asarray(without[name])).max() <= RESIZE_TOLERANCE + 1e-3, name


def test_pack_stores_opencv_pixels(corpus: Path) -> None:
    """Lossless packing stores exactly imread's pixels; pass-through keeps portable files and
    re-encodes EXIF-turned and CMYK ones upright."""
    from image_dataset.pack import PackOptions, encode_image
    from image_dataset.pixels import decode

    colour = np.load(corpus / "colour.npz")
    for name in colour.files:
        data = (corpus / name).read_bytes()
        stored = encode_image(data, PackOptions(encoding=".png"))
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored)).convert("RGB")), colour[name]), name
        kept = encode_image(data, PackOptions(pass_through=True, encoding=".png"))
        turned_or_cmyk = name[:5] in TURNED or name.startswith("cmyk")
        assert (kept != data) == turned_or_cmyk, name
        assert decode(kept).portable, name


TF_COMPARE = """
import json, sys
import numpy as np
import tensorflow as tf
from image_training.tf_data import make_preprocess
from image_training.tf_inference import graph_bytes
from image_dataset.pack import PackOptions, encode_image
folder = sys.argv[1]
colour = np.load(folder + "/colour.npz")
preprocess = make_preprocess(40, "bilinear")
out = {}
for name in colour.files:
    data = open(folder + "/" + name, "rb").read()
    want = tf.image.resize(tf.constant(colour[name]), (40, 40), method="bilinear").numpy()
    served = preprocess(tf.constant(graph_bytes(data))).numpy()
    packed = preprocess(tf.constant(encode_image(data, PackOptions(encoding=".png")))).numpy()
    raw = preprocess(tf.constant(data)).numpy()
    out[name] = [float(np.abs(served - want).max()), float(np.abs(packed - want).max()), float(np.abs(raw - want).max())]
print(json.dumps(out))
"""


@pytest.mark.tensorflow
def test_tensorflow_graph_sees_opencv_pixels(corpus: Path, in_tensorflow: Callable[..., str]) -> None:
    """The serving handler's bytes and packed records, decoded by the graph, equal imread's
    pixels; a file's own bytes do too (EXIF turned in the graph), but for CMYK, which TensorFlow
    converts otherwise (which is why the handler and pack re-encode it)."""
    diffs = json.loads(in_tensorflow(TF_COMPARE, str(corpus)).strip().splitlines()[-1])
    for name, (served, packed, raw) in diffs.items():
        assert served <= TF_TOLERANCE and packed <= TF_TOLERANCE, (name, served, packed)
        # raw bytes (records of im2rec --pass-through): the graph turns EXIF orientations itself;
        # CMYK is TensorFlow's conversion (1 level off with Adobe's marker, inverted without)
        if name != "cmyk_plain.jpg":
            assert raw <= TF_RAW_TOLERANCE.get(name, TF_TOLERANCE), (name, raw)


# -- serving rejects what validation rejects ----------------------------------------------------
def broken_images() -> Dict[str, bytes]:
    """Damaged JPEGs and PNGs: truncated at several points, corrupted, oversized headers."""
    rng = np.random.default_rng(3)
    picture = Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=90)
    jpeg = out.getvalue()
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=90, progressive=True)
    progressive = out.getvalue()
    out = io.BytesIO()
    picture.save(out, "PNG")
    png = out.getvalue()
    cases = {
        "jpeg_half": jpeg[: len(jpeg) // 2],
        "jpeg_90pct": jpeg[: len(jpeg) * 9 // 10],
        "jpeg_header_only": jpeg[:200],
        "progressive_half": progressive[: len(progressive) // 2],
        "png_half": png[: len(png) // 2],
        "png_no_iend": png[:-12],
        "png_bad_crc": png[:40] + bytes([png[40] ^ 0xFF]) + png[41:],
        "jpeg_garbage_body": jpeg[:600] + bytes(rng.integers(0, 256, 2000, dtype=np.uint8)),
        "signature_only": b"\xff\xd8\xff\xe0",
    }
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    cases["png_oversized"] = (
        png[:8] + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + png[33:]
    )
    return cases


REJECT = """
import json, sys
from image_dataset.images import check_image
from image_dataset.pixels import PixelError, decode
from image_training.serving import RequestError, decode as serve_decode, MAX_PIXELS
cases = json.load(open(sys.argv[1]))
out = {}
for name, hexed in cases.items():
    data = bytes.fromhex(hexed)
    code = check_image(0, data, MAX_PIXELS).code
    seen = []
    for channels in (3, 1):
        try:
            decode(data, channels, MAX_PIXELS)
            seen.append(None)
        except PixelError as err:
            seen.append(err.code)
        try:
            serve_decode(data, channels)
            seen.append(200)
        except RequestError as err:
            seen.append(err.status)
    out[name] = [code, seen]
print(json.dumps(out))
"""


ACCEPTED = {"png_no_iend"}


def _check_rejections(output: str) -> None:
    results = json.loads(output.strip().splitlines()[-1])
    assert results
    for name, (code, seen) in results.items():
        if name in ACCEPTED:  # damage that no decoder minds: accepted everywhere
            assert code is None and seen == [None, 200, None, 200], (name, code, seen)
        else:
            assert code is not None, f"{name}: validation accepts it; the case is not broken"
            assert seen == [code, 400, code, 400], (name, code, seen)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("broken") / "cases.json"
    path.write_text(json.dumps({name: data.hex() for name, data in broken_images().items()}))
    return str(path)


def test_decoders_reject_what_validation_rejects(broken: str) -> None:
    from tests.interop.conftest import runner

    _check_rejections(runner(".venv")(REJECT, broken))


@pytest.mark.mxnet
def test_decoders_reject_what_validation_rejects_with_cv2(broken: str, in_mxnet: Callable[..., str]) -> None:
    _check_rejections(in_mxnet(REJECT, broken))


def test_decoders_reject_what_validation_rejects_in_the_container(
    broken: str, in_container: Callable[..., str]
) -> None:
    _check_rejections(in_container(REJECT, broken))


def test_tensorflow_serving_handler_sends_the_graph_what_it_decodes_right(corpus: Path) -> None:
    """TF Serving's pre-processing hook: portable images travel as sent, EXIF-turned and CMYK
    ones as a lossless PNG of imread's pixels, broken ones are refused with 400."""
    import base64
    from types import SimpleNamespace

    from image_training.tf_inference import input_handler

    colour = np.load(corpus / "colour.npz")
    context = SimpleNamespace(request_content_type="image/jpeg")
    for name in ("rgb.jpg", "exif6.jpg", "cmyk.jpg", "l16.png"):
        body = (corpus / name).read_bytes()
        request = json.loads(input_handler(io.BytesIO(body), context))
        sent = base64.b64decode(request["instances"][0]["image_bytes"]["b64"])
        if name in ("rgb.jpg", "l16.png"):
            assert sent == body, name
        else:
            assert sent.startswith(b"\x89PNG") and np.array_equal(
                np.asarray(Image.open(io.BytesIO(sent))), colour[name]
            )
    with pytest.raises(ValueError, match="^400 "):
        input_handler(io.BytesIO(broken_images()["jpeg_half"]), context)


ARCHIVE = """
import json, os, sys
code = sys.argv[1]
sys.path[:] = [code] + [p for p in sys.path if "training_code" not in p and p not in ("", os.getcwd())]
from image_training.serving import decode
from image_training.mxnet_inference import input_fn
import image_dataset.pixels
assert image_dataset.pixels.__file__.startswith(code), image_dataset.pixels.__file__
print(json.dumps(list(decode(open(sys.argv[2], "rb").read()).shape)))
"""


def test_a_model_archive_code_folder_decodes_on_its_own(
    corpus: Path, tmp_path: Path, in_container: Callable[..., str]
) -> None:
    """Serving runs from the archive's code/ alone (no training_code on the path): what both
    backends' exports copy there (serving.copy_inference_code) is all that decode needs."""
    from image_training.serving import copy_inference_code

    copy_inference_code(str(tmp_path), "mxnet_inference.py")
    copy_inference_code(str(tmp_path), "tf_inference.py")
    shape = in_container(ARCHIVE, str(tmp_path), str(corpus / "exif6.jpg")).strip().splitlines()[-1]
    assert json.loads(shape) == [61, 43, 3]
