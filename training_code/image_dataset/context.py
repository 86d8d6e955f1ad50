"""What one validation is asked to do and shares between its checks: the options, the store,
where issues go and how progress is told."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from .images import DEFAULT_MAX_PIXELS
from .issues import CollectingSink, IssueSink
from .manifest import AUTO
from .samples import printable
from .store import Store, access_problem

Progress = Callable[[str, int, int], None]  # (what, done, total)


class ValidationOptions:
    """What the caller knows about the dataset and how deep to check."""

    def __init__(
        self,
        num_classes: Optional[int] = None,
        multi_label: Optional[bool] = None,
        image_shape: Optional[Tuple[int, int, int]] = None,
        resize: Optional[int] = None,
        mini_batch_size: Optional[int] = None,
        format: Optional[str] = None,
        decode_images: bool = True,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        label_attribute: Optional[str] = None,
        label_format: str = AUTO,
        allowed_buckets: Sequence[str] = (),
        workers: Optional[int] = None,
    ) -> None:
        self.num_classes = num_classes
        self.multi_label = multi_label
        self.image_shape = image_shape
        self.resize = resize
        self.mini_batch_size = mini_batch_size
        self.format = format
        self.decode_images = decode_images
        self.max_pixels = max_pixels
        self.label_attribute = label_attribute
        self.label_format = label_format
        self.allowed_buckets = tuple(allowed_buckets)
        self.workers = workers

    def as_dict(self) -> Dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "multi_label": self.multi_label,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "resize": self.resize,
            "mini_batch_size": self.mini_batch_size,
            "format": self.format,
            "decode_images": self.decode_images,
            "max_pixels": self.max_pixels,
        }


class Context:
    """The store, the options and the sink that every check of one validation uses.

    ``issues`` collects what the validation reports; ``sink`` is where checks report, which is
    ``issues`` unless the caller wants problems raised (:class:`~.issues.IssueSink`)."""

    def __init__(
        self,
        store: Store,
        options: ValidationOptions,
        single_file: Optional[str] = None,
        progress: Optional[Progress] = None,
    ) -> None:
        self.store = store
        self.options = options
        self.single_file = single_file  # the one file validated, when the dataset is one file
        self.progress: Progress = progress or (lambda what, done, total: None)
        self.issues = CollectingSink()
        self.sink: IssueSink = self.issues

    def unreadable(self, err: OSError, path: str, what: str = "file") -> None:
        """Report an OSError met on the dataset's ``path`` (a file, or a folder being listed)
        as FILE_MISSING or FILE_UNREADABLE at the path it is about: never skipped, never raised."""
        code, message = access_problem(err, what)
        self.sink.report(code, message, printable(self.store.error_path(err, path) or "."))
