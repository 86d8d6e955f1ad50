"""Fixtures of the unit tests that touch the serving handlers' module state."""

from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest

from image_training import tf_inference


@pytest.fixture
def tf_loaded() -> Iterator[Dict[str, Any]]:
    """tf_inference keeps the loaded model's info in a module global; restore it afterwards."""
    saved = dict(tf_inference._LOADED)
    yield tf_inference._LOADED
    tf_inference._LOADED.clear()
    tf_inference._LOADED.update(saved)
