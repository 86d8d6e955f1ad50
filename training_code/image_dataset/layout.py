"""Finding the channels of a dataset and the format of each.

A dataset root holds ``train/`` and ``validation/`` and, as SageMaker's built-in algorithm
expects, optionally ``train_lst/`` and ``validation_lst/`` with the .lst of an image channel.
A path may also be a single channel folder or a single file (.rec, .lst, manifest,
annotations.json).
"""

from __future__ import annotations

import posixpath
from typing import List, NamedTuple, Optional, Tuple

from .issues import IssueSink
from .samples import IMAGE_EXTENSIONS, printable
from .store import Store, access_problem, join

RECORDIO, LST, MANIFEST, ANNOTATIONS, FOLDERS = "recordio", "lst", "manifest", "annotations", "folders"
FORMATS = (RECORDIO, LST, MANIFEST, ANNOTATIONS, FOLDERS)
CHANNELS = ("train", "validation")
LIST_FOLDERS = tuple(channel + "_lst" for channel in CHANNELS)  # beside the channel: its .lst files
ANNOTATIONS_FILE = "annotations.json"
LABELS_FILE = "labels.json"  # beside .rec files: the class names by id (RecordIO carries only ids)
MANIFEST_EXTENSIONS = (".manifest", ".jsonl")


class Channel(NamedTuple):
    name: str  # 'train' or 'validation'
    format: str
    root: str  # store path that image paths are relative to
    files: Tuple[str, ...]  # the files that describe the channel (.rec, .lst, manifest, ...)


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("_")


def _skipped(store: Store, path: str, sink: IssueSink) -> bool:
    """Whether a channel's entry is left out: names starting with '.' (``.DS_Store``, ``._x.lst``,
    ``.cache/``) quietly, names starting with '_' (``_tmp/``, ``__MACOSX/``) too, but a folder
    or a dataset file among them with a warning, since it may be a class or a list the user meant."""
    name = posixpath.basename(path)
    if not _is_hidden(name):
        return False
    if name.startswith("_") and name != "__MACOSX" and (store.is_dir(path) or format_of_file(name)):
        sink.report("FILE_EXTRA", "a name starting with '_' is not read (rename it to use it)", printable(path))
    return True


def format_of_file(name: str) -> Optional[str]:
    lower = name.lower()
    if lower.endswith(".rec"):
        return RECORDIO
    if lower.endswith(".lst"):
        return LST
    if lower.endswith(MANIFEST_EXTENSIONS):
        return MANIFEST
    if lower == ANNOTATIONS_FILE:
        return ANNOTATIONS
    return None


def list_folder(store: Store, path: str, sink: IssueSink) -> Optional[List[str]]:
    """The entries of a dataset folder; None, reported, when it cannot be listed."""
    try:
        return store.list_dir(path)
    except OSError as err:
        code, message = access_problem(err, "folder")
        sink.report(code, message, printable(path or "."))
        return None


def _vanished(store: Store, path: str, sink: IssueSink) -> bool:
    """True, reported, when a listed entry cannot be looked at: a broken symbolic link, an
    entry deleted since the listing, or one that the folder's permissions hide."""
    if store.exists(path):
        return False
    try:
        store.size(path)
    except OSError as err:
        code, message = access_problem(err, "entry")
        sink.report(code, message, printable(path))
        return True
    return False


def _describe_channel(
    store: Store, name: str, root: str, lst_dir: Optional[str], forced: Optional[str], sink: IssueSink
) -> Optional[Channel]:
    entries = list_folder(store, root, sink)
    if entries is None:
        return None
    files = {fmt: [] for fmt in FORMATS}  # type: dict
    indexes = []
    class_dirs = []
    for entry in entries:
        path = join(root, entry)
        if _skipped(store, path, sink):
            continue
        if store.is_dir(path):
            class_dirs.append(entry)
            continue
        if _vanished(store, path, sink):
            continue
        fmt = format_of_file(entry)
        if fmt:
            files[fmt].append(path)
        elif entry.lower().endswith(".idx"):
            indexes.append(path)
    if lst_dir is not None:
        lst_entries = list_folder(store, lst_dir, sink)
        if lst_entries is None:
            return None
        lists = [
            join(lst_dir, e) for e in lst_entries if e.lower().endswith(".lst") and not _skipped(store, join(lst_dir, e), sink)
        ]
        if lists:
            for own in files[LST]:
                sink.report("FILE_EXTRA", f"not read: the channel's lists are those in {lst_dir}/", printable(own))
            files[LST] = lists
        else:
            sink.report("FILE_EXTRA", "holds no .lst file; ignored", lst_dir)
    if forced:
        chosen = forced
    elif files[RECORDIO]:
        chosen = RECORDIO
    else:
        found = [fmt for fmt in (ANNOTATIONS, MANIFEST, LST) if files[fmt]]
        if len(found) > 1:
            sink.report(
                "FORMAT_AMBIGUOUS",
                "the channel holds {} files; keep one kind or pass --format".format(" and ".join(found)),
                root or ".",
            )
            return None
        chosen = found[0] if found else (FOLDERS if class_dirs else "")
    if not chosen:
        sink.report(
            "FORMAT_UNKNOWN",
            "no .rec, .lst, manifest, annotations.json or class folders found",
            root or ".",
        )
        return None
    _unread(files, indexes, chosen, sink)
    if chosen == FOLDERS:
        return Channel(name, FOLDERS, root, tuple(join(root, d) for d in class_dirs))
    if not files[chosen]:
        sink.report("FORMAT_UNKNOWN", f"no {chosen} file in the channel", root or ".")
        return None
    return Channel(name, chosen, root, tuple(files[chosen]))


def _unread(files: dict, indexes: List[str], chosen: str, sink: IssueSink) -> None:
    """FILE_EXTRA for the list files of another format than the channel's (a .lst beside a .rec
    is im2rec's and expected), and for a .idx with no .rec of its name."""
    for fmt in (LST, MANIFEST, ANNOTATIONS):
        if fmt != chosen and not (fmt == LST and chosen == RECORDIO):
            for path in files[fmt]:
                sink.report("FILE_EXTRA", f"not read: the channel is read as {chosen}", printable(path))
    recs = {posixpath.splitext(p)[0] for p in files[RECORDIO]}
    for path in indexes:
        if posixpath.splitext(path)[0] not in recs:
            sink.report("FILE_EXTRA", "an index with no .rec of its name; ignored", printable(path))


def single_file_root(path: str, fmt: str) -> str:
    """The folder a single file's image paths are relative to: its own, except for a .lst in
    ``train_lst/`` or ``validation_lst/``, whose paths are relative to ``train/`` or
    ``validation/`` beside it (as in a dataset root)."""
    folder = posixpath.dirname(path)
    base = posixpath.basename(folder)
    if fmt == LST and base in LIST_FOLDERS:
        return posixpath.join(posixpath.dirname(folder), base[: -len("_lst")])
    return folder


def discover(store: Store, forced: Optional[str], sink: IssueSink, single_file: Optional[str] = None) -> List[Channel]:
    """The channels under the store's root (a dataset root, or one channel folder)."""
    if single_file is not None:
        fmt = forced or format_of_file(posixpath.basename(single_file)) or ""
        if fmt not in FORMATS or fmt == FOLDERS:
            sink.report("FORMAT_UNKNOWN", "cannot tell the format of this file; pass --format", single_file)
            return []
        return [Channel("train", fmt, single_file_root(single_file, fmt), (single_file,))]
    listed = list_folder(store, "", sink)
    if listed is None:
        return []
    names = set(listed)
    if not names & {*CHANNELS, *LIST_FOLDERS}:
        channel = _describe_channel(store, "train", "", None, forced, sink)
        return [channel] if channel else []
    if "train" not in names:
        sink.report("CHANNEL_MISSING", "the dataset has no train/ folder", ".")
    if "validation" not in names:
        sink.report("VALIDATION_CHANNEL_MISSING", "no validation/ folder", ".")
    channels = []
    for name in CHANNELS:
        if name not in names:
            continue
        if not store.is_dir(name):
            if not _vanished(store, name, sink):
                code = "CHANNEL_MISSING" if name == "train" else "VALIDATION_CHANNEL_MISSING"
                sink.report(code, f"{name} is a file, not a channel folder", name)
            continue
        lst_dir = name + "_lst" if name + "_lst" in names else None
        channel = _describe_channel(store, name, name, lst_dir, forced, sink)
        if channel:
            channels.append(channel)
    return channels


def is_image_file(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)
