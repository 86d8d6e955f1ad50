"""pack.pack_channels / pack_channel: what lands on disk for every channel of a dataset — the
records in im2rec's order (train shuffled with seed 100, validation in order), the labels a
record carries (multi-hot vectors of num_classes), the .lst paths, labels.json, the options
and the progress reported per channel."""

from __future__ import annotations

import io
import json
import os
from types import SimpleNamespace
from typing import List, Tuple

import numpy as np
import pytest
from PIL import Image

from image_dataset.issues import DatasetError, Issue
from image_dataset.layout import LST, Channel
from image_dataset.pack import (
    PackError,
    PackJob,
    PackOptions,
    PackResult,
    _encode_job,
    check_label_names,
    encode_image,
    pack_channel,
    pack_channels,
    split,
    write_label_names,
)
from image_dataset.pixels import PixelError
from image_dataset.recordio import RecordIOReader, unpack
from image_dataset.samples import CLASS_ID, CLASS_IDS, Sample
from image_dataset.store import LocalStore
from tests.builders import jpeg, png, write_file

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _records(path: str) -> List[Tuple[int, object, bytes]]:
    reader = RecordIOReader.open(path)
    try:
        out = []
        for _, data in reader:
            header, image = unpack(data)
            out.append((header.id, header.label, image))
        return out
    finally:
        reader.close()


def _dataset(root: str):
    """train: 6 single-label PNGs of widths 1..6; validation: 3 multi-label JPEGs."""
    train, images = [], {}
    for i in range(6):
        path = f"train/{i}.png"
        images[path] = png(i + 1, 2)
        write_file(os.path.join(root, path), images[path])
        train.append(Sample(path, (float(i % 3),), CLASS_ID, f"train.lst:line {i + 1}"))
    validation = []
    for i, labels in enumerate([(0.0, 2.0), (1.0,), (2.0, 1.0)]):
        path = f"validation/{i}.jpg"
        images[path] = jpeg(8 + i, 8)
        write_file(os.path.join(root, path), images[path])
        validation.append(Sample(path, labels, CLASS_IDS, f"validation.lst:line {i + 1}"))
    index = SimpleNamespace(
        store=LocalStore(root),
        channels={
            "validation": (Channel("validation", LST, "validation", ("v.lst",)), validation),
            "train": (Channel("train", LST, "train", ("t.lst",)), train),
        },
        label_names=["cat", "dog", "eel"],
        num_classes=3,
    )
    return index, images


def test_pack_channels_writes_each_channel_in_im2recs_order_with_its_labels(tmp_path) -> None:
    index, images = _dataset(str(tmp_path / "data"))
    out = str(tmp_path / "out")
    calls: list = []
    packed = pack_channels(index, out, lambda *call: calls.append(call))
    assert packed == {
        "train": PackResult(os.path.join(out, "train", "train"), 6),
        "validation": PackResult(os.path.join(out, "validation", "validation"), 3),
    }
    order = [2, 5, 0, 4, 3, 1]  # random.Random(100).shuffle, as im2rec
    train = _records(os.path.join(out, "train", "train.rec"))
    assert [(i, label) for i, label, _ in train] == [(i, float(i % 3)) for i in order]
    assert [image for _, _, image in train] == [images[f"train/{i}.png"] for i in order]  # stored unchanged
    validation = _records(os.path.join(out, "validation", "validation.rec"))
    assert [(i, label) for i, label, _ in validation] == [
        (0, (1.0, 0.0, 1.0)),
        (1, (0.0, 1.0, 0.0)),
        (2, (0.0, 1.0, 1.0)),
    ]
    assert [image for _, _, image in validation] == [images[f"validation/{i}.jpg"] for i in range(3)]
    with open(os.path.join(out, "train", "train.lst"), encoding="utf-8") as f:
        assert f.readline() == "2\t2.000000\t2.png\n"  # relative to the channel, as a list in train_lst/
    with open(os.path.join(out, "validation", "validation.lst"), encoding="utf-8") as f:
        assert f.readline() == "0\t1.000000\t0.000000\t1.000000\t0.jpg\n"
    for name in ("train", "validation"):
        with open(os.path.join(out, name, "labels.json"), encoding="utf-8") as f:
            assert json.load(f) == ["cat", "dog", "eel"]
    assert calls == [("train", n, 6) for n in range(1, 7)] + [("validation", n, 3) for n in range(1, 4)]


def test_pack_channels_packs_again_into_the_same_folders(tmp_path) -> None:
    index, _ = _dataset(str(tmp_path / "data"))
    out = str(tmp_path / "out")
    pack_channels(index, out)
    again = pack_channels(index, out)
    assert again["train"].records == 6 and len(_records(os.path.join(out, "train", "train.rec"))) == 6


def test_pack_channels_applies_the_options_given(tmp_path) -> None:
    index, _ = _dataset(str(tmp_path / "data"))
    out = str(tmp_path / "out")
    pack_channels(index, out, options=PackOptions(encoding=".png", quality=1, shuffle=False))
    train = _records(os.path.join(out, "train", "train.rec"))
    assert [i for i, _, _ in train] == list(range(6))  # not shuffled
    validation = _records(os.path.join(out, "validation", "validation.rec"))
    assert all(image.startswith(PNG_SIGNATURE) for _, _, image in validation)  # the JPEGs re-encoded


def test_pack_channels_needs_a_local_store(tmp_path) -> None:
    index, _ = _dataset(str(tmp_path / "data"))
    remote = SimpleNamespace(store=SimpleNamespace(local_path=lambda path: None), channels=index.channels)
    with pytest.raises(ValueError) as caught:
        pack_channels(remote, str(tmp_path / "out"))
    assert str(caught.value) == "packing needs the dataset on a local disk"


def test_pack_channel_stores_files_unchanged_by_default_and_shuffles_when_asked(tmp_path) -> None:
    root = str(tmp_path / "data")
    index, images = _dataset(root)
    samples = index.channels["validation"][1]
    calls: list = []
    result = pack_channel(samples, 3, str(tmp_path / "v"), root, False, lambda *call: calls.append(call))
    assert result == PackResult(str(tmp_path / "v"), 3)
    assert [(i, image) for i, _, image in _records(str(tmp_path / "v.rec"))] == [
        (i, images[f"validation/{i}.jpg"]) for i in range(3)
    ]
    assert [label for _, label, _ in _records(str(tmp_path / "v.rec"))][0] == (1.0, 0.0, 1.0)
    assert calls == [(1, 3), (2, 3), (3, 3)]
    pack_channel(samples, 3, str(tmp_path / "s"), root, True)
    assert [i for i, _, _ in _records(str(tmp_path / "s.rec"))] == [2, 1, 0]
    with open(str(tmp_path / "s.lst"), encoding="utf-8") as f:
        assert [line.split("\t")[-1] for line in f] == [
            "validation/2.jpg\n",
            "validation/1.jpg\n",
            "validation/0.jpg\n",
        ]
    pack_channel(samples, 3, str(tmp_path / "p"), root, False, options=PackOptions(encoding=".png"))
    assert all(image.startswith(PNG_SIGNATURE) for _, _, image in _records(str(tmp_path / "p.rec")))


# -- labels.json beside packed records ------------------------------------------------------


def test_labels_json_is_written_as_readable_utf8_one_name_a_line(tmp_path) -> None:
    path = write_label_names(str(tmp_path), ["chat", "été", "猫"])
    assert path == str(tmp_path / "labels.json")
    with open(path, "rb") as f:
        assert f.read() == '[\n "chat",\n "été",\n "猫"\n]'.encode()
    assert not os.path.exists(path + ".partial")
    write_label_names(str(tmp_path), ["chat", "été", "猫"])  # the same names again: fine


def test_a_labels_json_with_a_byte_order_mark_is_read(tmp_path) -> None:
    with open(tmp_path / "labels.json", "wb") as f:
        f.write(b"\xef\xbb\xbf" + json.dumps(["cat", "dog"]).encode("utf-8"))
    check_label_names(str(tmp_path), ["cat", "dog"])


def test_an_unreadable_labels_json_is_not_replaced(tmp_path) -> None:
    path = str(tmp_path / "labels.json")
    write_file(path, "[cat")
    with pytest.raises(DatasetError) as caught:
        write_label_names(str(tmp_path), ["cat"])
    assert caught.value.issue == Issue(
        "LABEL_NAMES_INVALID",
        "already exists and cannot be read as a list of names (Expecting value: line 1 column 2 (char 1)); not replaced",
        path,
    )
    with open(path, encoding="utf-8") as f:
        assert f.read() == "[cat"


def test_other_names_in_labels_json_are_shown_first_ten(tmp_path) -> None:
    path = str(tmp_path / "labels.json")
    existing = [f"n{i}" for i in range(12)]
    write_file(path, json.dumps(existing))
    with pytest.raises(DatasetError) as caught:
        check_label_names(str(tmp_path), ["é"] * 11)
    assert caught.value.issue == Issue(
        "LABEL_NAMES_INVALID",
        f"already exists with other class names ({json.dumps(existing[:10])}) than this dataset's "
        f"({json.dumps(['é'] * 10, ensure_ascii=False)}); records packed beside it would be named wrongly, so it is "
        "not replaced: pack into another folder or remove it",
        path,
    )
    write_file(path, '{"0": "猫"}')
    with pytest.raises(DatasetError) as caught:
        check_label_names(str(tmp_path), ["cat"])
    assert caught.value.issue.message.startswith('already exists with other class names ({"0": "猫"}) than')


# -- encoding one image --------------------------------------------------------------------


def _textured_png(width: int, height: int) -> bytes:
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x * y * 37) % 256], -1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _size(data: bytes) -> Tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_the_pixel_cap_applies_with_and_without_pass_through() -> None:
    for options in (PackOptions(pass_through=True, max_pixels=99), PackOptions(max_pixels=99)):
        with pytest.raises(PixelError) as caught:
            encode_image(png(10, 10), options)
        assert (caught.value.code, str(caught.value)) == ("IMG_TOO_LARGE", "10x10 = 100 pixels, over the cap of 99")
    assert encode_image(png(10, 10), PackOptions(pass_through=True, max_pixels=100)) == png(10, 10)


def test_pass_through_re_encodes_a_png_without_its_end_chunk() -> None:
    """libpng reads it and validation passes it, TensorFlow's PNG decoder refuses it."""
    data = _textured_png(6, 5)
    cut = data[: data.rfind(b"IEND") - 4]
    packed = encode_image(cut, PackOptions(pass_through=True, encoding=".png"))
    assert packed != cut and packed.endswith(b"IEND\xaeB`\x82")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(packed))), np.asarray(Image.open(io.BytesIO(data))))
    assert encode_image(data, PackOptions(pass_through=True)) == data


def test_resize_scales_the_shorter_side_keeping_the_aspect_rounded_down() -> None:
    options = PackOptions(resize=3, encoding=".png")
    assert _size(encode_image(_textured_png(7, 10), options)) == (3, 4)  # portrait: 10 * 3 // 7
    assert _size(encode_image(_textured_png(10, 7), options)) == (4, 3)  # landscape
    assert _size(encode_image(_textured_png(5, 5), options)) == (3, 3)


def _zlib_level(png_bytes: bytes) -> int:
    """FLEVEL of the PNG's zlib stream: 0 for level 1, 1 for 2-5, 2 for 6, 3 for 7-9."""
    at = png_bytes.index(b"IDAT") + 4
    return png_bytes[at + 1] >> 6


def test_png_quality_is_the_compress_level_up_to_9_else_level_3() -> None:
    data = _textured_png(16, 16)
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    levels = {q: _zlib_level(encode_image(data, PackOptions(encoding=".png", quality=q))) for q in (1, 9, 10, 95)}
    assert levels == {1: 0, 9: 3, 10: 1, 95: 1}
    at_three = io.BytesIO()
    Image.fromarray(pixels).save(at_three, format="PNG", compress_level=3)
    assert encode_image(data, PackOptions(encoding=".png", quality=95)) == at_three.getvalue()


def test_jpeg_quality_is_applied() -> None:
    data = _textured_png(32, 32)
    low, high = (encode_image(data, PackOptions(quality=q)) for q in (20, 95))
    assert low[:2] == high[:2] == b"\xff\xd8" and len(low) < len(high)


def test_an_image_gone_since_validation_is_file_missing(tmp_path) -> None:
    job = PackJob(4, str(tmp_path / "gone.png"), (1.0,))
    assert _encode_job((job, PackOptions())) == (
        4,
        None,
        "FILE_MISSING",
        "the image does not exist (deleted while it was read, or a broken symbolic link)",
    )


def test_the_validated_pixel_cap_is_the_cap_while_encoding(tmp_path) -> None:
    path = write_file(str(tmp_path / "big.png"), png(30, 30))
    saved = Image.MAX_IMAGE_PIXELS
    key, record, code, message = _encode_job((PackJob(1, path, (0.0,)), PackOptions(max_pixels=899)))
    assert (key, record, code) == (1, None, "IMG_TOO_LARGE")
    assert message == "cannot pack the image: 30x30 = 900 pixels, over the cap of 899"
    assert saved == Image.MAX_IMAGE_PIXELS
    assert _encode_job((PackJob(1, path, (0.0,)), PackOptions(max_pixels=900)))[1] is not None


def test_an_encoder_error_is_img_corrupt(tmp_path) -> None:
    path = write_file(str(tmp_path / "a.png"), png(4, 4))
    _, record, code, message = _encode_job((PackJob(1, path, (0.0,)), PackOptions(encoding=".png", quality=-5)))
    assert (record, code, message) == (
        None,
        "IMG_CORRUPT",
        "cannot pack the image: codec configuration error when writing image file",
    )


def test_a_failing_image_stops_the_pack_and_leaves_no_files(tmp_path) -> None:
    root = str(tmp_path / "data")
    write_file(os.path.join(root, "a.png"), png(4, 4))
    write_file(os.path.join(root, "b.png"), b"\x89PNG\r\n\x1a\n broken")
    samples = [Sample(p, (0.0,), CLASS_ID, f"x.lst:line {i + 1}") for i, p in enumerate(["a.png", "b.png"])]
    seen: list = []
    prefix = str(tmp_path / "out" / "x")
    os.makedirs(os.path.dirname(prefix))
    with pytest.raises(DatasetError) as caught:
        pack_channel(samples, 1, prefix, root, False, lambda *_: seen.append(sorted(os.listdir(tmp_path / "out"))))
    assert caught.value.issue.code == "IMG_CORRUPT" and caught.value.issue.location == "x.lst:line 2"
    assert caught.value.issue.message.startswith("cannot pack the image: ")
    assert seen == [["x.idx.partial", "x.lst.partial", "x.rec.partial"]]  # written aside until complete
    assert os.listdir(tmp_path / "out") == []


def test_many_images_are_encoded_by_a_pool_in_order(tmp_path) -> None:
    root = str(tmp_path / "data")
    images = [png(i % 7 + 1, 2) for i in range(40)]
    for i, data in enumerate(images):
        write_file(os.path.join(root, f"{i}.png"), data)
    samples = [Sample(f"{i}.png", (float(i % 3),), CLASS_ID, f"x.lst:line {i + 1}") for i in range(40)]
    prefix = str(tmp_path / "x")
    options = PackOptions(encoding=".png", quality=1, shuffle=False)
    assert pack_channel(samples, 3, prefix, root, False, options=options, workers=2).records == 40
    records = _records(prefix + ".rec")
    assert [(i, label) for i, label, _ in records] == [(i, float(i % 3)) for i in range(40)]
    assert [_size(image) for _, _, image in records] == [(i % 7 + 1, 2) for i in range(40)]


def test_split_cuts_at_the_ratio_and_names_the_empty_part() -> None:
    items = [(i, None, (0.0,)) for i in range(2)]
    assert split(items, "p", 1.0) == [("p", items)]
    assert split(items, "p", 0.5) == [("p_train", items[:1]), ("p_val", items[1:])]
    with pytest.raises(PackError) as caught:
        split(items[:1], "p", 0.5)
    assert str(caught.value) == "--train-ratio 0.5: 1 sample(s) cannot be split into train and validation"
    with pytest.raises(PackError) as caught:
        split([(i, None, (0.0,)) for i in range(3)], "p", 0.3)
    assert str(caught.value) == (
        "--train-ratio 0.3 of 3 samples leaves the train part empty; it must be at least 0.3333"
    )


def test_long_name_lists_are_cut_to_200_characters_in_the_message(tmp_path) -> None:
    existing = [f"existing-{i:02d}-" + "x" * 20 for i in range(12)]
    wanted = [f"wanted-{i:02d}-" + "y" * 20 for i in range(12)]
    write_file(str(tmp_path / "labels.json"), json.dumps(existing))
    with pytest.raises(DatasetError) as caught:
        check_label_names(str(tmp_path), wanted)
    shown, ours = json.dumps(existing[:10])[:200], json.dumps(wanted[:10])[:200]
    assert len(shown) == len(ours) == 200
    assert caught.value.issue.message.startswith(
        f"already exists with other class names ({shown}) than this dataset's ({ours}); "
    )
