"""label_rules: the exact findings of each label rule (code, message, location), both sides of
each boundary (num_classes, the class-id limit, the 50 issues kept per batch) and which rows
stay good, for RecordIO batches (scanned from bytes built here) and list-format samples.

Survivors judged EQUIVALENT (no test can tell them apart):

- ``sample``: ``kind != CLASS_IDS`` for ``kind == CLASS_IDS`` and ``classes = None`` for
  ``classes = []`` in the empty-label branch (``classes`` is set again from the labels right
  after it, and ``_class_ids`` of no labels reports nothing and passes, so skipping it or not is
  the same).
- ``records``: ``astype(None)`` for ``astype(np.float64)`` (None is float64); ``good = ~mask``
  for ``good &= ~mask`` (``good`` is still all True in that loop, and only one of the two
  masks can fail ``_multi``); ``(single | good).any()`` for ``(single & good).any()`` (with no
  good single row, ``_class_id_rows`` gets no rows and does nothing); ``np.flatnonzero(single |
  good)`` for ``single & good`` (when a good single row exists, the multi-label rows, if any,
  have just been cleared from ``good``, so both are the single rows); ``sorted(shapes)`` and
  ``sorted(shapes, key=None)`` for ``key=lambda shape: shape[0]`` (the two shapes' first rows
  differ, as their masks are disjoint, so the tuples are ordered by that first item alone).
- ``_class_id_rows``: ``np.errstate(invalid=None)`` (no operation there warns: comparisons and
  ``floor`` of NaN or inf raise no floating-point warning); ``good[...] = None`` for ``= False``
  (None stored in a bool array is False).
- ``_vector_rows``: ``continue`` -> ``break`` when a flag has no good rows (the rows of every
  vector length are cleared together, by the single/multi check, so no later length has good
  rows either); ``[1.0] * flag`` for ``[0.0] * flag`` (both pass the 0/1 check; only the
  length is checked there); ``good[rows] = None`` and ``good[rows[~binary]] = None`` (False, as
  above); ``astype(None)`` for the counts of classes (float64 sums of 0/1 values, turned into
  ints when counted).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

from image_dataset.channel_stats import ChannelStats
from image_dataset.context import ValidationOptions
from image_dataset.issues import CollectingSink, Issue
from image_dataset.label_rules import LabelRules
from image_dataset.layout import RECORDIO, Channel
from image_dataset.recordio import frame, pack
from image_dataset.recordio_scan import RecordIOScanner
from image_dataset.samples import CLASS_ID, CLASS_IDS, MULTI_HOT, Sample

Label = Union[float, Sequence[float]]


def _rules(options: Optional[ValidationOptions] = None) -> Tuple[LabelRules, CollectingSink, ChannelStats]:
    sink = CollectingSink(limit_per_code=1000)
    stats = ChannelStats(Channel("train", RECORDIO, "", ("x.rec",)))
    return LabelRules(options or ValidationOptions(), sink, stats), sink, stats


def _records(labels: Sequence[Label], **options: object) -> Tuple[List[bool], CollectingSink, ChannelStats, List[int]]:
    """Scan records of ``labels`` (4-byte images) and check their labels in one batch: the good
    mask, the sink, the stats and the records' offsets."""
    data = b"".join(frame(pack(label, b"abcd", id=i)) for i, label in enumerate(labels))
    scan_sink = CollectingSink()
    batches = list(RecordIOScanner(lambda o, n: data[o : o + n], len(data), "x.rec", scan_sink).scan())
    assert scan_sink.errors == [] and len(batches) == 1
    rules, sink, stats = _rules(ValidationOptions(**options))  # type: ignore[arg-type]
    good = rules.records(batches[0], "x.rec")
    return good.tolist(), sink, stats, batches[0].offsets.tolist()


def _at(offsets: List[int], record: int) -> str:
    return f"x.rec#record {record} @byte {offsets[record]}"


# -- class ids ------------------------------------------------------------------------------


def test_one_value_vectors_are_class_ids_next_to_scalar_labels() -> None:
    good, sink, stats, _ = _records([[3.0], 2, [3.0], 0])
    assert sink.errors == [] and good == [True] * 4
    assert stats.class_counts == {0: 1, 2: 1, 3: 2} and stats.multi_label is False


def test_a_bad_one_value_vector_is_reported_with_its_value() -> None:
    good, sink, _, offsets = _records([1, [2.5]])
    assert sink.errors == [Issue("LABEL_INVALID", "label 2.5 is not a class id (an integer >= 0)", _at(offsets, 1))]
    assert good == [True, False]


def test_bad_class_ids_show_their_value_as_written() -> None:
    good, sink, stats, offsets = _records([-1, 2.5, float("nan"), float("inf"), 4])
    assert sink.errors == [
        Issue("LABEL_INVALID", "label -1 is not a class id (an integer >= 0)", _at(offsets, 0)),
        Issue("LABEL_INVALID", "label 2.5 is not a class id (an integer >= 0)", _at(offsets, 1)),
        Issue("LABEL_INVALID", "label nan is not a class id (an integer >= 0)", _at(offsets, 2)),
        Issue("LABEL_INVALID", "label inf is not a class id (an integer >= 0)", _at(offsets, 3)),
    ]
    assert good == [False, False, False, False, True] and stats.class_counts == {4: 1}


def test_num_classes_is_the_first_id_out_of_range() -> None:
    good, sink, stats, offsets = _records([2, 3, 4], num_classes=3)
    assert sink.errors == [
        Issue("LABEL_OUT_OF_RANGE", "class id 3 is not below num_classes 3", _at(offsets, 1)),
        Issue("LABEL_OUT_OF_RANGE", "class id 4 is not below num_classes 3", _at(offsets, 2)),
    ]
    assert good == [True, False, False] and stats.class_counts == {2: 1}


def test_fifty_issues_per_batch_are_written_out_and_the_rest_only_counted() -> None:
    for count in (50, 51, 52):
        good, sink, _, offsets = _records([-1] * count + [7] * count + [1], num_classes=5)
        invalid = [
            Issue("LABEL_INVALID", "label -1 is not a class id (an integer >= 0)", _at(offsets, r)) for r in range(50)
        ]
        out = [
            Issue("LABEL_OUT_OF_RANGE", "class id 7 is not below num_classes 5", _at(offsets, count + r))
            for r in range(50)
        ]
        extra = count - 50
        assert sink.errors == (
            invalid
            + out
            + [Issue("LABEL_INVALID", "", "x.rec")] * extra
            + [Issue("LABEL_OUT_OF_RANGE", "", "x.rec")] * extra
        )
        assert sink.counts == {"LABEL_INVALID": count, "LABEL_OUT_OF_RANGE": count}
        assert good == [False] * (2 * count) + [True]


def test_the_class_id_limit_is_the_first_id_refused() -> None:
    good, sink, stats, _ = _records([99_999, 1])
    assert sink.errors == [] and good == [True, True] and stats.class_counts == {1: 1, 99_999: 1}
    good, sink, stats, offsets = _records([100_000, 1])
    assert sink.errors == [
        Issue("TOO_MANY_CLASSES", "class id 100000 is not below the limit of 100000", _at(offsets, 0))
    ]
    assert good == [False, True] and stats.class_counts == {1: 1}  # that record only


# -- single and multi-label together ----------------------------------------------------------


def test_multi_label_rows_after_single_ones_are_refused_where_the_first_one_is() -> None:
    good, sink, stats, offsets = _records([5, [1, 0], 5, [0, 1]])
    assert sink.errors == [Issue("LABEL_SHAPE", "single-label and multi-label samples are mixed", _at(offsets, 1))]
    assert good == [True, False, True, False]
    assert stats.class_counts == {5: 2} and stats.multi_label is False and stats.vector_length is None


def test_single_rows_refused_by_the_multi_label_option() -> None:
    good, sink, stats, offsets = _records([[1, 0], 5, [0, 1], 6], multi_label=True)
    assert sink.errors == [Issue("LABEL_SHAPE", "single label but multi_label is 1", _at(offsets, 1))]
    assert good == [True, False, True, False]
    assert stats.class_counts == {0: 1, 1: 1} and stats.multi_label is True and stats.vector_length == 2


# -- multi-hot vectors -------------------------------------------------------------------------


def test_vector_labels_count_each_class_that_is_set() -> None:
    good, sink, stats, _ = _records([[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 0, 0]])
    assert sink.errors == [] and good == [True] * 4
    assert stats.class_counts == {0: 2, 1: 1, 2: 3} and stats.vector_length == 3 and stats.multi_label is True


def test_each_vector_length_is_checked_and_counted_on_its_own() -> None:
    good, sink, stats, offsets = _records([[1, 0], [1, 0, 1], [0, 1], [0, 1, 1]], num_classes=3)
    assert sink.errors == [Issue("LABEL_SHAPE", "label vector has 2 values, expected 3", _at(offsets, 0))]
    assert good == [False, True, False, True]
    assert stats.class_counts == {0: 1, 1: 1, 2: 2} and stats.vector_length == 3


def test_vector_values_other_than_0_and_1_are_refused_per_row() -> None:
    good, sink, stats, offsets = _records([[1, 0], [0.5, 1], [1, 1], [2, 0]])
    message = "multi-hot label holds values other than 0 and 1"
    assert sink.errors == [Issue("LABEL_NOT_MULTI_HOT", message, _at(offsets, r)) for r in (1, 3)]
    assert good == [True, False, True, False] and stats.class_counts == {0: 2, 1: 1}


def test_at_most_fifty_rows_of_one_length_are_reported_as_not_multi_hot() -> None:
    for count, reported in ((50, 50), (51, 50)):
        good, sink, _, _ = _records([[2, 0]] * count)
        assert len(sink.errors) == reported and sink.counts == {"LABEL_NOT_MULTI_HOT": reported}
        assert good == [False] * count


# -- list-format samples ----------------------------------------------------------------------


def _sample(labels: Sequence[float], kind: str = MULTI_HOT, line: int = 1) -> Sample:
    return Sample("a.jpg", tuple(labels), kind, f"train.lst:line {line}")


def test_a_multi_hot_vector_needs_two_values() -> None:
    rules, sink, stats = _rules()
    assert rules.sample(_sample([1.0])) is False
    assert sink.errors == [
        Issue(
            "LABEL_SHAPE",
            "a multi-hot vector of 1 value(s): it needs one per class, at least 2 (RecordIO reads a one-value "
            "label as a class id)",
            "train.lst:line 1",
        )
    ]
    assert stats.vector_length is None and stats.class_counts == {}
    assert rules.sample(_sample([0.0, 1.0], line=2)) is True and stats.class_counts == {1: 1}


def test_a_multi_hot_vector_of_other_values_is_refused() -> None:
    rules, sink, stats = _rules()
    assert rules.sample(_sample([1.0, 2.0])) is False
    assert sink.errors == [
        Issue("LABEL_NOT_MULTI_HOT", "multi-hot label holds values other than 0 and 1", "train.lst:line 1")
    ]
    assert stats.vector_length is None and stats.class_counts == {}


def test_the_first_vector_sets_the_length_without_num_classes() -> None:
    rules, sink, stats = _rules()
    assert rules.sample(_sample([1.0, 0.0, 1.0])) is True
    assert rules.sample(_sample([1.0, 0.0], line=2)) is False
    assert sink.errors == [Issue("LABEL_SHAPE", "label vector has 2 values, expected 3", "train.lst:line 2")]
    assert stats.vector_length == 3 and stats.class_counts == {0: 1, 2: 1}


def test_num_classes_sets_the_vector_length() -> None:
    rules, sink, stats = _rules(ValidationOptions(num_classes=2))
    assert rules.sample(_sample([1.0, 0.0, 1.0])) is False
    assert sink.errors == [Issue("LABEL_SHAPE", "label vector has 3 values, expected 2", "train.lst:line 1")]
    assert stats.vector_length is None and stats.class_counts == {}


def test_class_id_samples_still_count() -> None:
    rules, sink, stats = _rules()
    assert rules.sample(_sample([2.0], CLASS_ID)) is True
    assert sink.errors == [] and stats.class_counts == {2: 1}
    rules, sink, stats = _rules()
    assert rules.sample(_sample([], CLASS_IDS)) is True and stats.class_counts == {} and stats.multi_label is True


def test_vectors_after_refused_one_value_labels_are_still_checked() -> None:
    good, sink, stats, offsets = _records([[3.0], [1, 0], [0, 1, 1]], multi_label=True, num_classes=3)
    assert sink.errors == [
        Issue("LABEL_SHAPE", "single label but multi_label is 1", _at(offsets, 0)),
        Issue("LABEL_SHAPE", "label vector has 2 values, expected 3", _at(offsets, 1)),
    ]
    assert good == [False, False, True] and stats.class_counts == {1: 1, 2: 1}


def test_a_multi_label_sample_refused_by_the_multi_label_option_says_so() -> None:
    rules, sink, stats = _rules(ValidationOptions(multi_label=False))
    assert rules.sample(_sample([1.0, 0.0])) is False
    assert sink.errors == [Issue("LABEL_SHAPE", "multi-label label but multi_label is 0", "train.lst:line 1")]
    assert stats.multi_label is None and stats.class_counts == {}


def test_a_multi_label_sample_after_single_ones_is_refused_at_its_line() -> None:
    rules, sink, stats = _rules()
    assert rules.sample(_sample([1.0], CLASS_ID)) is True
    assert rules.sample(_sample([0.0, 1.0], line=2)) is False
    assert sink.errors == [Issue("LABEL_SHAPE", "single-label and multi-label samples are mixed", "train.lst:line 2")]
    assert stats.multi_label is False and stats.class_counts == {1: 1}


def test_a_sample_with_a_bad_class_id_is_refused_and_not_counted() -> None:
    rules, sink, stats = _rules()
    assert rules.sample(_sample([2.5], CLASS_ID)) is False
    assert sink.errors == [Issue("LABEL_INVALID", "label 2.5 is not a class id (an integer >= 0)", "train.lst:line 1")]
    assert stats.class_counts == {}


def test_a_sample_with_a_class_id_out_of_range_is_refused_and_not_counted() -> None:
    rules, sink, stats = _rules(ValidationOptions(num_classes=3))
    assert rules.sample(_sample([2.0], CLASS_ID)) is True
    assert rules.sample(_sample([3.0], CLASS_ID, line=2)) is False
    assert sink.errors == [Issue("LABEL_OUT_OF_RANGE", "class id 3 is not below num_classes 3", "train.lst:line 2")]
    assert stats.class_counts == {2: 1}


def _twice(ids: str) -> Issue:
    return Issue(
        "LABEL_INVALID",
        f"class id {ids} appears twice in the label list (a multi-hot vector? pass --label-format multi-hot or "
        "--num-classes)",
        "train.lst:line 1",
    )


def test_a_class_id_listed_twice_is_named_and_the_sample_refused() -> None:
    rules, sink, stats = _rules()
    assert rules.sample(_sample([1.0, 2.0, 1.0, 3.0, 1.0], CLASS_IDS)) is False
    assert sink.errors == [_twice("1")]  # only the id that repeats, once, however often it does
    assert stats.class_counts == {}


def test_at_most_five_class_ids_listed_twice_are_named_in_order() -> None:
    rules, sink, stats = _rules()
    assert rules.sample(_sample([5.0, 4.0, 3.0, 2.0, 1.0, 0.0] * 2, CLASS_IDS)) is False
    assert sink.errors == [_twice("0, 1, 2, 3, 4")]
    assert stats.class_counts == {}


def test_the_class_id_limit_is_the_first_id_refused_in_a_sample() -> None:
    rules, sink, stats = _rules()
    assert rules.sample(_sample([99_999.0], CLASS_ID)) is True
    assert rules.sample(_sample([100_000.0], CLASS_ID, line=2)) is False
    assert sink.errors == [
        Issue("TOO_MANY_CLASSES", "class id 100000 is not below the limit of 100000", "train.lst:line 2")
    ]
    assert stats.class_counts == {99_999: 1}
    rules, sink, stats = _rules()
    assert rules.sample(_sample([3.0, 100_001.0, 7.0], CLASS_IDS)) is False  # the largest id is named
    assert sink.errors == [
        Issue("TOO_MANY_CLASSES", "class id 100001 is not below the limit of 100000", "train.lst:line 1")
    ]
    assert stats.class_counts == {}


def test_fifty_ids_over_the_class_id_limit_are_written_out_and_the_rest_only_counted() -> None:
    for count in (50, 51, 52):
        good, sink, stats, offsets = _records([100_000] * count + [1])
        written = [
            Issue("TOO_MANY_CLASSES", "class id 100000 is not below the limit of 100000", _at(offsets, r))
            for r in range(50)
        ]
        assert sink.errors == written + [Issue("TOO_MANY_CLASSES", "", "x.rec")] * (count - 50)
        assert sink.counts == {"TOO_MANY_CLASSES": count}
        assert good == [False] * count + [True] and stats.class_counts == {1: 1}
