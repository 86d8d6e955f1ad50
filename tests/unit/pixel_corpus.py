"""A small generated corpus of every image kind pixels.decode reads, and the OpenCV reference
for it (tests/unit/data/pixels_opencv.npz), which test_mutation_pixels.py compares with in the
main environment, where cv2 is not installed.

Regenerate the reference (needs .venv-mxnet, which has cv2) after changing the corpus:

    .venv/bin/python -m tests.unit.pixel_corpus
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 13, 9  # odd sizes: chroma subsampling edges, non-square turns
REFERENCE = os.path.join(os.path.dirname(__file__), "data", "pixels_opencv.npz")
# (rows, cols) -> (height, width) of cv2.resize(INTER_LINEAR) checks: down, up, 2x, mixed, one
# row; the last one upscales where the emulation is 1 off on a few values (RESIZE_OFF_BY_ONE)
RESIZES: List[Tuple[Tuple[int, int], Tuple[int, int]]] = [
    ((13, 19), (7, 5)),
    ((4, 6), (8, 12)),
    ((3, 5), (10, 10)),
    ((16, 16), (8, 8)),
    ((9, 4), (4, 9)),
    ((1, 6), (3, 2)),
    ((7, 3), (7, 2)),
    ((5, 7), (11, 16)),
]
RESIZE_OFF_BY_ONE = 6  # values of the last resize that differ from cv2's, by 1 (measured)


def resize_input(rows: int, cols: int) -> np.ndarray:
    """A deterministic rows x cols x 3 uint8 texture (no random generator: numpy versions differ)."""
    y, x, c = np.mgrid[0:rows, 0:cols, 0:3]
    return ((x * 73 + y * 151 + c * 89 + x * y * 17) % 256).astype(np.uint8)


def png_chunks(array: np.ndarray, color_type: int, depth: int, end: bool = True) -> bytes:
    """A PNG written chunk by chunk (kinds Pillow cannot write: 16-bit RGB(A), 2/4-bit grey)."""
    height, width = array.shape[:2]
    if depth < 8:
        per_byte = 8 // depth
        rows = []
        for row in array.reshape(height, width):
            padded = np.concatenate([row, np.zeros((-width) % per_byte, row.dtype)]).reshape(-1, per_byte)
            shifts = np.arange(per_byte - 1, -1, -1) * depth
            rows.append((padded.astype(np.uint16) << shifts).sum(axis=1).astype(np.uint8).tobytes())
    else:
        raw = array.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1)
        rows = [r.tobytes() for r in raw]
    body = b"".join(b"\x00" + r for r in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    tail = chunk(b"IEND", b"") if end else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(body)) + tail


def _saved(image: Image.Image, kind: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def corpus() -> Dict[str, bytes]:
    """name -> encoded bytes, one per image kind."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    noise = (x * 7919 + y * 104729) % 61 - 30
    base = np.stack([x * 255 // WIDTH, y * 255 // HEIGHT, (x * y * 37) % 256], -1) + noise[:, :, None]
    rgb = np.clip(base, 0, 255).astype(np.uint8)
    grey = rgb[:, :, 0]
    picture = Image.fromarray(rgb)
    files = {
        "rgb.png": _saved(picture, "PNG"),
        "rgb.jpg": _saved(picture, "JPEG", quality=90),
        "rgb444.jpg": _saved(picture, "JPEG", quality=90, subsampling=0),
        "progressive.jpg": _saved(picture, "JPEG", quality=90, progressive=True),
        "l.jpg": _saved(Image.fromarray(grey), "JPEG", quality=90),
        "l.png": _saved(Image.fromarray(grey), "PNG"),
        "one.png": _saved(Image.fromarray(grey > 128), "PNG"),
        "l2.png": png_chunks(grey >> 6, 0, 2),
        "l4.png": png_chunks(grey >> 4, 0, 4),
        "la.png": _saved(Image.merge("LA", [Image.fromarray(grey), Image.fromarray(rgb[:, :, 1])]), "PNG"),
        "rgba.png": _saved(Image.merge("RGBA", [*picture.split(), Image.fromarray(rgb[:, :, 2])]), "PNG"),
        "p.png": _saved(picture.quantize(16), "PNG"),
        "p_transparent.png": _saved(picture.quantize(16), "PNG", transparency=3),
        "p_alpha.png": _saved(picture.quantize(16), "PNG", transparency=bytes(range(0, 256, 16))),
        "l_transparent.png": _saved(Image.fromarray(grey), "PNG", transparency=100),
        "rgb_transparent.png": _saved(picture, "PNG", transparency=(10, 20, 30)),
        "cmyk.jpg": _saved(picture.convert("CMYK"), "JPEG", quality=90),
    }
    wide = rgb.astype(np.uint16) * 257 + ((x * 131 + y * 71) % 256).astype(np.uint16)[:, :, None]
    files["l16.png"] = png_chunks(wide[:, :, 0], 0, 16)
    files["la16.png"] = png_chunks(np.dstack([wide[:, :, 0], wide[:, :, 1]]), 4, 16)
    files["rgb16.png"] = png_chunks(wide, 2, 16)
    files["rgba16.png"] = png_chunks(np.dstack([wide, wide[:, :, :1]]), 6, 16)
    data = files["cmyk.jpg"]
    at = data.find(b"\xff\xee")  # the same without its Adobe APP14 marker
    files["cmyk_plain.jpg"] = data[:at] + data[at + 2 + int.from_bytes(data[at + 2 : at + 4], "big") :]
    for value in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = value
        files[f"exif{value}.jpg"] = _saved(picture, "JPEG", quality=90, exif=exif.tobytes())
        files[f"exif{value}.png"] = _saved(picture, "PNG", exif=exif.tobytes())
        files[f"exif{value}_l.jpg"] = _saved(Image.fromarray(grey), "JPEG", quality=90, exif=exif.tobytes())
    exif = Image.Exif()
    exif[0x0112] = 9  # no such orientation: no turn
    files["exif9.jpg"] = _saved(picture, "JPEG", quality=90, exif=exif.tobytes())
    junk = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03"  # an IFD past its end
    plain = files["rgb.jpg"]
    files["exif_broken.jpg"] = plain[:2] + b"\xff\xe1" + struct.pack(">H", len(junk) + 2) + junk + plain[2:]
    return files


def large_corpus() -> Dict[str, bytes]:
    """Images with every value of a formula's inputs (the reference keeps only hashes of them):
    a colour cube (every red and green level, blue varied), as PNG and CMYK JPEG, and a 16-bit
    grey PNG of every 16-bit value."""
    y, x = np.mgrid[0:256, 0:256]
    cube = np.stack([x, y, (x * 7 + y * 13) % 256], -1).astype(np.uint8)
    picture = Image.fromarray(cube)
    return {
        "cube.png": _saved(picture, "PNG"),
        "cube_cmyk.jpg": _saved(picture.convert("CMYK"), "JPEG", quality=95),
        "cube16.png": png_chunks((y * 256 + x).astype(np.uint16), 0, 16),
    }


def digest(data: bytes) -> np.ndarray:
    return np.frombuffer(hashlib.sha256(data).digest(), np.uint8)


OPENCV = """
import sys, cv2, numpy as np
folder, names = sys.argv[1], sys.argv[2].split(",")
out = {}
for n in names:
    out["colour/" + n] = cv2.imread(folder + "/" + n, cv2.IMREAD_COLOR)[:, :, ::-1]
    out["grey/" + n] = cv2.imread(folder + "/" + n, cv2.IMREAD_GRAYSCALE)
for i, path in enumerate(sys.argv[3:]):
    image = np.load(path)
    h, w = (int(v) for v in open(path + ".size").read().split())
    out["resize/%d" % i] = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
np.savez(folder + "/opencv.npz", **out)
"""


def write_reference() -> None:
    """Decode the corpus and resize the inputs with cv2 in .venv-mxnet; store the results packed
    in few arrays (one .npy per image would triple the file)."""
    files = corpus()
    names = sorted(files)
    large = large_corpus()
    files_and_large = {**files, **large}
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files_and_large.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        inputs = []
        for i, ((rows, cols), (height, width)) in enumerate(RESIZES):
            path = os.path.join(folder, f"resize{i}.npy")
            np.save(path, resize_input(rows, cols))
            with open(path + ".size", "w") as f:
                f.write(f"{height} {width}")
            inputs.append(path)
        python = os.path.join(".venv-mxnet", "bin", "python")
        subprocess.run([python, "-c", OPENCV, folder, ",".join(sorted(files_and_large)), *inputs], check=True)
        opencv = dict(np.load(os.path.join(folder, "opencv.npz")))
    os.makedirs(os.path.dirname(REFERENCE), exist_ok=True)
    np.savez_compressed(
        REFERENCE,
        names=np.array(names),
        shapes=np.array([opencv["grey/" + n].shape for n in names]),
        colour=np.concatenate([opencv["colour/" + n].ravel() for n in names]),
        grey=np.concatenate([opencv["grey/" + n].ravel() for n in names]),
        sha256=np.stack([digest(files[n]) for n in names]),
        resized=np.concatenate([opencv[f"resize/{i}"].ravel() for i in range(len(RESIZES))]),
        large_names=np.array(sorted(large)),
        large_sha256=np.stack(
            [
                np.stack(
                    [digest(large[n]), digest(opencv["colour/" + n].tobytes()), digest(opencv["grey/" + n].tobytes())]
                )
                for n in sorted(large)
            ]
        ),
    )
    print(f"{REFERENCE}: {len(files)} images, {len(RESIZES)} resizes, {os.path.getsize(REFERENCE)} bytes")


def load_large_reference() -> Dict[str, Tuple[bytes, bytes, bytes]]:
    """name -> SHA-256 of (the input, OpenCV's colour pixels, its grey pixels) of large_corpus()."""
    with np.load(REFERENCE) as stored:
        return {
            n: tuple(d.tobytes() for d in sha) for n, sha in zip(stored["large_names"].tolist(), stored["large_sha256"])
        }


def load_reference() -> Tuple[Dict[str, Tuple[np.ndarray, np.ndarray, bytes]], List[np.ndarray]]:
    """name -> (OpenCV's colour pixels, its grey pixels, the SHA-256 of the input), and the
    cv2.resize output of each of RESIZES."""
    with np.load(REFERENCE) as stored:
        names, shapes = stored["names"].tolist(), stored["shapes"]
        colour, grey, sha, resized = stored["colour"], stored["grey"], stored["sha256"], stored["resized"]
    images, at = {}, 0
    for name, (height, width), digest_bytes in zip(names, shapes, sha):
        n = int(height) * int(width)
        pixels = colour[3 * at : 3 * (at + n)].reshape(height, width, 3)
        images[name] = (pixels, grey[at : at + n].reshape(height, width), digest_bytes.tobytes())
        at += n
    outputs, at = [], 0
    for _, (height, width) in RESIZES:
        outputs.append(resized[at : at + height * width * 3].reshape(height, width, 3))
        at += height * width * 3
    return images, outputs


if __name__ == "__main__":
    write_reference()
    sys.exit(0)
