"""``imgclf batch``: classify every image of a folder, ``.lst``, manifest or ``.rec`` with a
model, as a SageMaker batch transform does with the serving container: the model is served
(app.local_serving.ModelServer, its own ``code/inference.py``) and each input is POSTed to
/invocations with ``Accept: application/json;verbose`` by several client threads.

The output is one JSON line per input, in input order (imgclf_core.batch has the rules). It is
written to ``OUT.partial``, each line flushed, beside a small state file ``OUT.partial.json``
with the fingerprint of the model and the inputs; a run that is interrupted and started again
with the same model and inputs keeps the complete lines and goes on. When every input has its
line, ``OUT.partial`` becomes OUT and the state file goes: OUT only ever holds a whole run.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import http.client
import json
import os
from typing import Any, BinaryIO, Callable, Deque, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from app.local_serving import ModelServer, ServeError, connection_problem, content_type_of, invoke
from image_dataset.issues import CODES, ERROR, DatasetError, IssueSink
from image_dataset.layout import LST, MANIFEST, RECORDIO, format_of_file, is_image_file
from image_dataset.lst import parse_lst
from image_dataset.manifest import ManifestReader
from image_dataset.recordio import RecordIOReader, unpack
from image_dataset.samples import printable
from image_dataset.store import LocalStore, open_file
from imgclf_core import batch as rules

VERBOSE = "application/json;verbose"  # image_training.serving.VERBOSE: what batch transform asks for
FOLDER = "folder"
STATE_VERSION = 1


class BatchUsageError(ValueError):
    """Arguments that cannot make a run (a missing input, an unknown format, ...): exit 2."""


class BatchFailed(RuntimeError):
    """A run that cannot go on (the model cannot be served, or its server stopped): exit 1."""


class Input(NamedTuple):
    """One input: its ``source`` in the output, and how to get its bytes: the file ``path``, or
    the record at byte ``offset`` of the .rec ``path``; or an ``error`` (code, message) that
    is its line without a request. ``identity`` tells a changed input in the fingerprint."""

    source: str
    path: Optional[str] = None
    offset: Optional[int] = None
    error: Optional[Tuple[str, str]] = None
    identity: Tuple[Any, ...] = ()


class Inputs(NamedTuple):
    kind: str  # FOLDER, LST, MANIFEST or RECORDIO
    items: List[Input]
    skipped: int  # files of a folder that are not images


class _LineSink(IssueSink):
    """A list file's lines that cannot name an image become error inputs, in place."""

    def __init__(self, items: List[Input]) -> None:
        self.items = items

    def report(self, code: str, message: str, location: str) -> None:
        if CODES[code].severity == ERROR:
            self.items.append(Input(location, error=(code, message), identity=(code,)))


def _file_identity(path: str) -> Tuple[Any, ...]:
    try:
        stat = os.stat(path)
    except OSError as err:
        return ("unreadable", err.errno)
    return (stat.st_size, stat.st_mtime_ns)


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def _folder_inputs(root: str) -> Inputs:
    items: List[Input] = []
    skipped = 0
    for relative in LocalStore(root).walk_files(""):
        if _hidden(relative):
            continue
        if not is_image_file(relative):
            skipped += 1
            continue
        path = os.path.join(root, *relative.split("/"))
        items.append(Input(printable(relative), path, identity=_file_identity(path)))
    return Inputs(FOLDER, items, skipped)


def _listed(items: List[Input], folder: str, path: str) -> None:
    """The input of a list file's image ``path`` (relative to the list's ``folder``, or s3://)."""
    if path.startswith("s3://"):
        message = "an s3:// reference cannot be read on this machine; download the image and list it by a relative path"
        items.append(Input(path, error=(rules.S3_REFERENCE, message), identity=(rules.S3_REFERENCE,)))
        return
    file = os.path.join(folder, *path.split("/"))
    items.append(Input(path, file, identity=_file_identity(file)))


def _list_inputs(path: str, kind: str) -> Inputs:
    with open(path, "rb") as f:
        data = f.read()
    folder, name = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    items: List[Input] = []
    sink = _LineSink(items)
    if kind == LST:
        samples: Iterator[Any] = parse_lst(data, name, "", sink)
    else:  # class ids as the label format: samples come in file order, none held back
        samples = ManifestReader(name, "", sink, labels_required=False).parse(data)
    for sample in samples:
        _listed(items, folder, sample.path)
    return Inputs(kind, items, 0)


def _record_inputs(path: str) -> Inputs:
    """The records of a .rec in file order (its .idx, if any, is not needed); a record that
    breaks the file's framing ends the list with its error."""
    items: List[Input] = []
    reader = RecordIOReader.open(path)
    try:
        for number, (offset, data) in enumerate(reader):
            items.append(Input(rules.record_source(number), path, offset, identity=(offset, len(data))))
    except DatasetError as err:
        items.append(Input(rules.record_source(reader.record), error=(rules.IMAGE_UNREADABLE, str(err)), identity=(err.code,)))
    finally:
        reader.close()
    return Inputs(RECORDIO, items, 0)


def input_kind(path: str) -> str:
    """The kind of a batch input; BatchUsageError for what cannot be one."""
    if not os.path.exists(path):
        raise BatchUsageError(f"{path} does not exist")
    if os.path.isdir(path):
        return FOLDER
    kind = format_of_file(os.path.basename(path))
    if kind not in (LST, MANIFEST, RECORDIO):
        raise BatchUsageError(
            f"{path}: unknown input format; give a folder of images, a .lst, a manifest (.manifest, .jsonl) or a .rec"
        )
    return str(kind)


def list_inputs(path: str) -> Inputs:
    """Every input of a folder (recursively, hidden files ignored), .lst, manifest or .rec, in
    order. OSError when the input cannot be read."""
    kind = input_kind(path)
    if kind == FOLDER:
        return _folder_inputs(path)
    if kind == RECORDIO:
        return _record_inputs(path)
    return _list_inputs(path, kind)


def model_digest(model: str) -> str:
    """SHA-256 of a model archive; of an unpacked model folder, its files' names, sizes and times."""
    digest = hashlib.sha256()
    if os.path.isdir(model):
        for folder, folders, files in os.walk(model):
            folders.sort()
            for name in sorted(files):
                path = os.path.join(folder, name)
                digest.update(json.dumps([os.path.relpath(path, model), *_file_identity(path)]).encode())
        return "folder:" + digest.hexdigest()
    with open(model, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _image_type(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return "application/x-image"


class _Unreadable(Exception):
    pass


def read_input(item: Input) -> Tuple[bytes, str]:
    """(bytes, content type) of one input; _Unreadable with the reason when it cannot be read."""
    assert item.path is not None
    try:
        if item.offset is None:
            with open_file(item.path) as f:
                return f.read(), content_type_of(item.path)
        with open_file(item.path) as f:
            f.seek(item.offset)
            found = RecordIOReader(f, os.path.basename(item.path), item.offset).read()
        if found is None:
            raise _Unreadable(f"no record at byte {item.offset}")
        image = unpack(found[1], item.source)[1]
        return image, _image_type(image)
    except OSError as err:
        raise _Unreadable(f"cannot read {printable(item.path)}: {err.strerror or err}") from None
    except DatasetError as err:
        raise _Unreadable(str(err)) from None


class _ServerGone(Exception):
    pass


def classify(url: str, item: Input, alive: Callable[[], bool] = lambda: True) -> Dict[str, Any]:
    """The output line of one input, classified by the model server at ``url``; _ServerGone
    when the server cannot be reached and is no longer running."""
    if item.error is not None:
        return rules.error_line(item.source, *item.error)
    try:
        body, content_type = read_input(item)
    except _Unreadable as err:
        return rules.error_line(item.source, rules.IMAGE_UNREADABLE, str(err))
    try:
        status, _, answer = invoke(url, body, content_type, accept=VERBOSE)
    except (OSError, http.client.HTTPException) as err:
        if not alive():
            raise _ServerGone(connection_problem(err)) from None
        return rules.error_line(item.source, rules.MODEL_ERROR, f"no answer from the model: {connection_problem(err)}")
    return rules.answer_line(item.source, status, answer)


class Paths(NamedTuple):
    output: str
    partial: str  # the lines so far
    state: str  # the fingerprint of the run that writes ``partial``

    @classmethod
    def of(cls, output: str) -> Paths:
        return cls(output, output + ".partial", output + ".partial.json")


def check_output(output: str, input_path: str) -> Paths:
    """The run's files for OUT; BatchUsageError when OUT cannot be one."""
    if os.path.isdir(output):
        raise BatchUsageError(f"--output {output} is a folder; give a file, e.g. {os.path.join(output, 'out.jsonl')}")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise BatchUsageError(f"--output: the folder {folder} does not exist")
    if os.path.exists(input_path) and os.path.abspath(output) == os.path.abspath(input_path):
        raise BatchUsageError("--output is the input itself")
    return Paths.of(output)


def _read_state(paths: Paths) -> Optional[Dict[str, Any]]:
    try:
        with open(paths.state, encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_state(paths: Paths, state: Dict[str, Any]) -> None:
    temporary = paths.state + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(state, f)
        f.write("\n")
    os.replace(temporary, paths.state)


class Resume(NamedTuple):
    done: int  # inputs whose lines are kept
    kept: bytes  # those lines
    note: str  # what was decided, for the user ("" for a fresh run)


def resume(paths: Paths, fingerprint: str, sources: Sequence[str]) -> Resume:
    """What an earlier, interrupted run left that this one keeps."""
    state = _read_state(paths)
    has_partial = os.path.exists(paths.partial)
    if state is None and not has_partial:
        return Resume(0, b"", "")
    if state is None or state.get("fingerprint") != fingerprint or not has_partial:
        why = (
            "the model or the inputs changed since"
            if state is not None and state.get("fingerprint") != fingerprint
            else "cannot resume"
        )
        return Resume(0, b"", f"starting over: {why} the interrupted run that left {paths.partial}")
    with open(paths.partial, "rb") as f:
        data = f.read()
    keep, done = rules.resume_point(data, sources)
    dropped = "" if keep == len(data) else " (an incomplete last line was dropped)"
    return Resume(done, data[:keep], f"resuming: {done} of {len(sources)} inputs were done{dropped}")


ProgressCallback = Callable[[str, int, int], None]


class Batch:
    """One run: the constructor checks the arguments (BatchUsageError), ``prepare()`` lists the
    inputs, ``run()`` classifies those not done yet and writes the output."""

    def __init__(self, model: str, input_path: str, output: str, workers: int) -> None:
        if not os.path.exists(model):
            raise BatchUsageError(f"--model {model} does not exist")
        input_kind(input_path)
        self.model = model
        self.input_path = input_path
        self.paths = check_output(output, input_path)
        self.workers = max(1, workers)
        self.inputs = Inputs(FOLDER, [], 0)
        self.done = 0  # lines in the output so far
        self.classified = 0
        self.failed: Dict[str, int] = {}

    def prepare(self) -> None:
        self.inputs = list_inputs(self.input_path)

    @property
    def total(self) -> int:
        return len(self.inputs.items)

    def tally(self) -> rules.Tally:
        return rules.Tally(self.classified, dict(self.failed), self.inputs.skipped)

    def fingerprint(self) -> str:
        identities = ((item.source, *item.identity) for item in self.inputs.items)
        return rules.fingerprint(model_digest(self.model), identities)

    def run(self, progress: ProgressCallback, say: Callable[[str], None]) -> rules.Tally:
        """Classify every input not done yet and write the output; the counts of the whole run.
        BatchFailed when the model cannot be served (then nothing is written)."""
        items = self.inputs.items
        fingerprint = self.fingerprint()
        earlier = resume(self.paths, fingerprint, [item.source for item in items])
        if earlier.note:
            say(earlier.note)
        server = self._serve() if earlier.done < len(items) else None
        try:
            state = {
                "version": STATE_VERSION,
                "fingerprint": fingerprint,
                "model": self.model,
                "input": self.input_path,
            }
            _write_state(self.paths, state)
            with open(self.paths.partial, "wb") as out:
                out.write(earlier.kept)
                out.flush()
                for line in earlier.kept.splitlines():
                    self._count(json.loads(line))
                self.done = earlier.done
                progress("classifying", self.done, len(items))
                if server is not None:
                    self._classify(server, items[self.done :], out, progress)
        finally:
            if server is not None:
                server.stop()
        os.replace(self.paths.partial, self.paths.output)
        os.remove(self.paths.state)
        return self.tally()

    def _serve(self) -> ModelServer:
        server = ModelServer(self.model)
        try:
            server.start()
        except ServeError as err:
            raise BatchFailed(str(err)) from None
        return server

    def _classify(self, server: ModelServer, todo: Sequence[Input], out: BinaryIO, progress: ProgressCallback) -> None:
        """Classify ``todo`` on ``workers`` threads, writing the lines in input order."""
        pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="batch")
        pending: Deque[concurrent.futures.Future[Dict[str, Any]]] = collections.deque()
        try:
            for item in todo:
                pending.append(pool.submit(classify, server.url, item, server.running))
                if len(pending) >= 2 * self.workers:
                    self._write(pending.popleft().result(), out, progress)
            while pending:
                self._write(pending.popleft().result(), out, progress)
        except _ServerGone as err:
            raise BatchFailed(f"the model server stopped ({err}); {self.progress_note()}") from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _count(self, line: Dict[str, Any]) -> None:
        if rules.failed(line):
            code = str(line["error"].get("code", rules.MODEL_ERROR))
            self.failed[code] = self.failed.get(code, 0) + 1
        else:
            self.classified += 1

    def _write(self, line: Dict[str, Any], out: BinaryIO, progress: ProgressCallback) -> None:
        out.write(rules.dumps(line).encode("utf-8"))
        out.flush()
        self._count(line)
        self.done += 1
        progress("classifying", self.done, self.total)

    def progress_note(self) -> str:
        """Where an unfinished run stands, and how to finish it."""
        if not os.path.exists(self.paths.partial):
            return f"nothing was written to {self.paths.output}"
        return f"{self.done} of {self.total} lines are in {self.paths.partial}; run the same command again to continue"
