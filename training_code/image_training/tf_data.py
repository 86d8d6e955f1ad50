"""The TensorFlow backend's input pipeline: RecordIO records streamed into tf.data, decoded and
resized in parallel by the same function the serving signature uses, batched and prefetched."""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import tensorflow as tf

from image_dataset.recordio import RecordIOReader, unpack


def records(rec: str, shard: int = 0, shards: int = 1) -> Iterator[Tuple[bytes, int]]:
    """(encoded image, class id) of every ``shards``-th record of a .rec file from ``shard``,
    streamed; a record with a vector label counts by its first value, as im2rec's do."""
    with open(rec, "rb") as f:
        for number, (_, record) in enumerate(RecordIOReader(f, os.path.basename(rec))):
            if number % shards != shard:
                continue
            header, image = unpack(record)
            label = header.label if not isinstance(header.label, tuple) else header.label[0]
            yield image, int(label)


CHUNK = 256  # records handed from Python to tf.data at a time


def record_chunks(rec: str, shard: int = 0, shards: int = 1) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """``records`` in arrays of up to CHUNK (encoded images, class ids): one Python-to-TensorFlow
    hand-over per chunk instead of per image."""
    images: List[bytes] = []
    labels: List[int] = []
    for image, label in records(rec, shard, shards):
        images.append(image)
        labels.append(label)
        if len(images) == CHUNK:
            yield np.array(images, dtype=object), np.array(labels, dtype=np.int32)
            images, labels = [], []
    if images:
        yield np.array(images, dtype=object), np.array(labels, dtype=np.int32)


def make_preprocess(size: int, interpolation: str) -> Any:
    """Encoded image bytes -> a float32 size x size x 3 tensor in [0, 255]. The same function
    feeds training, validation and the serving signature, and decodes as OpenCV's imread does
    (image_dataset.pixels): JPEGs with the accurate integer DCT, as OpenCV and Pillow (TensorFlow's
    default, the fast DCT, is up to 35 levels off); PNGs with alpha dropped and 16-bit samples
    reduced to their high byte; EXIF orientation applied when its IFD0 entry lies in the first
    1 KiB (where cameras and Pillow write it; the check costs microseconds). CMYK JPEGs come out
    within 1 level (Adobe polarity): ``imgclf pack`` stores those and EXIF-turned images upright
    RGB anyway, and the serving handler sends them as PNG (image_dataset.pixels.portable_bytes)."""
    exif_window = 1024
    # IFD0's orientation entry (tag 0x0112, SHORT, count 1, value 2-8), big or little endian
    entry = "(?:\x01\x12\x00\x03\x00\x00\x00\x01\x00{0}|\x12\x01\x03\x00\x01\x00\x00\x00{0}\x00)"
    has_orientation = "\\C*" + entry.format("[\x02-\x08]") + "\\C*"  # no groups: RE2's fast automaton
    orientation = "\\C*?" + entry.format("([\x02-\x08])") + "\\C*"  # captures; only where it matched

    def decode(data: tf.Tensor) -> tf.Tensor:
        return tf.cond(
            tf.io.is_jpeg(data),
            lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
            lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
        )

    def upright(image: tf.Tensor, value: tf.Tensor) -> tf.Tensor:
        """The transposition EXIF orientation ``value`` (2-8) asks for."""
        swapped = tf.transpose(image, [1, 0, 2])
        return tf.switch_case(
            value - 2,
            [
                lambda: tf.reverse(image, [1]),  # 2: mirror left-right
                lambda: tf.reverse(image, [0, 1]),  # 3: rotate 180 degrees
                lambda: tf.reverse(image, [0]),  # 4: mirror top-bottom
                lambda: swapped,  # 5: transpose
                lambda: tf.reverse(swapped, [1]),  # 6: rotate 90 degrees clockwise
                lambda: tf.reverse(swapped, [0, 1]),  # 7: transverse
                lambda: tf.reverse(swapped, [0]),  # 8: rotate 90 degrees counter-clockwise
            ],
        )

    def turned(image: tf.Tensor, head: tf.Tensor) -> tf.Tensor:
        value = tf.strings.substr(tf.strings.regex_replace(head, orientation, "\\1\\2"), 0, 1)
        return upright(image, tf.cast(tf.io.decode_raw(value, tf.uint8)[0], tf.int32))

    def preprocess(data: tf.Tensor) -> tf.Tensor:
        image = decode(data)
        head = tf.strings.substr(data, 0, exif_window)
        image = tf.cond(tf.strings.regex_full_match(head, has_orientation), lambda: turned(image, head), lambda: image)
        image = tf.image.resize(image, (size, size), method=interpolation)
        return tf.ensure_shape(tf.cast(image, tf.float32), (size, size, 3))

    return preprocess


def augmentation(hp: Dict[str, Any]) -> tf.keras.Sequential:
    """The TF algorithm's augmentation: random flip, rotation and zoom of training batches."""
    layers: List[tf.keras.layers.Layer] = []
    if hp["augmentation_random_flip"] != "None":
        layers.append(tf.keras.layers.RandomFlip(hp["augmentation_random_flip"]))
    if hp["augmentation_random_rotation"] > 0:
        layers.append(tf.keras.layers.RandomRotation(hp["augmentation_random_rotation"]))
    if hp["augmentation_random_zoom"] > 0:
        layers.append(tf.keras.layers.RandomZoom(hp["augmentation_random_zoom"]))
    return tf.keras.Sequential(layers)


def encode_label(num_classes: int, binary: bool) -> Any:
    """Class id -> the training target: one-hot, or one 0/1 value for the binary head."""
    if binary:
        return lambda y: tf.reshape(tf.cast(y, tf.float32), (1,))
    return lambda y: tf.one_hot(y, num_classes)


CACHE_SHARE = 0.25  # the most of the machine's memory that the cached encoded records may take


def cacheable(rec: str) -> bool:
    """Whether the encoded records of ``rec`` fit the memory cache: at most CACHE_SHARE of the
    machine's physical memory (the workers on one machine hold shares of one file)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return False
    return os.path.getsize(rec) <= CACHE_SHARE * memory


def dataset(
    rec: str,
    hp: Dict[str, Any],
    num_classes: int,
    train: bool,
    batch_size: int,
    shard: Tuple[int, int] = (0, 1),
    repeat: bool = False,
) -> tf.data.Dataset:
    """Batches of (images, targets) from a .rec file. ``shard`` (index, count) keeps one worker's
    share of the records, chosen before decoding; ``repeat`` makes the stream endless (workers
    with shares of unequal size then run the same number of steps)."""
    preprocess = make_preprocess(hp["image_size"], hp["image_resize_interpolation"])
    target = encode_label(num_classes, hp["binary_mode"])
    data = tf.data.Dataset.from_generator(
        lambda: record_chunks(rec, *shard),
        output_signature=(tf.TensorSpec((None,), tf.string), tf.TensorSpec((None,), tf.int32)),
    ).unbatch()
    if cacheable(rec):  # later epochs read the encoded records from memory, not Python
        data = data.cache()
    if train:
        data = data.shuffle(2048, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()
    # training order is random anyway: let whichever decode finishes first go first
    data = data.map(
        lambda x, y: (preprocess(x), target(y)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=not train
    )
    data = data.batch(batch_size)
    if train and hp["augmentation"]:
        augment = augmentation(hp)
        data = data.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    # each worker reads its own share (``shard``): tf.distribute must not shard again
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return data.with_options(options).prefetch(tf.data.AUTOTUNE)
