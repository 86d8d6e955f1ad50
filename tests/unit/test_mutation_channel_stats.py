"""channel_stats: what a shard's stats add to the channel's when they are merged (label shapes
that differ, reported at the place given; bytes, vector length, classes) and the state a
sharded run carries, field by field.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``count``: ``np.bincount(classes) if len(classes) or True`` (the bincount of no class ids is
  empty too); ``np.zeros(0, None)``/``np.zeros(0)`` (an empty array of floats adds nothing
  either); ``np.zeros(1, np.int64)`` (class 0 with a count of 0, which is skipped).
- ``merge``: a dtype of None or left out in the two ``np.array`` calls (class ids and counts are
  Python ints: int64 either way; an empty histogram adds nothing); ``part.min_size or
  part.max_size`` (the two are always set together, by :meth:`ChannelStats.add`).
"""

from __future__ import annotations

from typing import List, Optional

from image_dataset.channel_stats import ChannelStats
from image_dataset.issues import CollectingSink, Issue
from image_dataset.layout import RECORDIO, Channel

CHANNEL = Channel("train", RECORDIO, "data/train", ("data/train/a.rec", "data/train/b.rec"))


def _stats(multi: Optional[bool] = None, length: Optional[int] = None, nbytes: int = 0) -> ChannelStats:
    stats = ChannelStats(CHANNEL)
    stats.multi_label, stats.vector_length, stats.bytes = multi, length, nbytes
    return stats


def _merge(whole: ChannelStats, part: ChannelStats) -> List[Issue]:
    sink = CollectingSink()
    whole.merge(part, sink, "the/place")
    return sink.errors


def test_state_round_trip_keeps_every_field() -> None:
    stats = _stats(True, 4, 1234)
    stats.samples = 7
    stats.class_counts = {0: 3, 3: 4}
    stats.min_size, stats.max_size, stats.images_checked = (10, 20), (30, 40), 7
    back = ChannelStats.from_state(stats.to_state())
    assert back.channel == CHANNEL
    assert (back.samples, back.class_counts, back.vector_length, back.multi_label, back.bytes) == (
        7,
        {0: 3, 3: 4},
        4,
        True,
        1234,
    )
    assert (back.min_size, back.max_size, back.images_checked) == ((10, 20), (30, 40), 7)
    assert back.to_state() == stats.to_state()


def test_single_and_multi_label_parts_are_reported_where_asked() -> None:
    whole = _stats(False)
    assert _merge(whole, _stats(True)) == [
        Issue("LABEL_SHAPE", "single-label and multi-label samples are mixed", "the/place")
    ]
    assert whole.multi_label is False


def test_vector_lengths_that_differ_are_reported_where_asked() -> None:
    whole = _stats(True, 3)
    assert _merge(whole, _stats(True, 5)) == [
        Issue("LABEL_SHAPE", "label vector has 5 values, expected 3", "the/place")
    ]
    assert whole.vector_length == 3


def test_the_same_or_a_first_vector_length_is_no_problem() -> None:
    whole = _stats(True, 3)
    assert _merge(whole, _stats(True, 3)) == [] and whole.vector_length == 3
    whole = _stats()
    assert _merge(whole, _stats(True, 4)) == [] and whole.vector_length == 4 and whole.multi_label is True
    whole = _stats(True, 4)
    assert _merge(whole, _stats(True)) == [] and whole.vector_length == 4


def test_bytes_samples_and_classes_add_up() -> None:
    whole = _stats(False, None, 100)
    whole.samples, whole.class_counts = 2, {1: 2}
    part = _stats(False, None, 50)
    part.samples, part.class_counts = 3, {1: 1, 4: 2}
    assert _merge(whole, part) == []
    assert (whole.bytes, whole.samples, whole.class_counts) == (150, 5, {1: 3, 4: 2})
