"""A restricted unpickler for the one upstream pickle the project reads.

Mat2Spec ships its phonon-DOS split (``phdos/200801_trteva_indices.pkl``, Chen et al.'s
``(train, val, test)`` index lists) as a pickle. A plain :func:`pickle.load` would run whatever
callable the file names, so downloaded pickles are only ever read with :func:`safe_loads`, which
resolves nothing but plain builtin containers/scalars and the handful of numpy functions needed
to rebuild arrays and numpy scalars. Anything else (``os.system``, ``builtins.eval``, classes,
``copyreg`` reconstructors, ...) raises :class:`ValueError` before it can be called.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

__all__ = ["safe_loads", "safe_load_file", "ALLOWED_GLOBALS"]

#: (module, name) pairs the unpickler may resolve. Plain lists, tuples, dicts, ints, floats and
#: strings need no global at all; these cover sets, bytes under protocol 2, numpy arrays and scalars.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "dict"),
        ("builtins", "int"),
        ("builtins", "float"),
        ("builtins", "complex"),
        ("builtins", "bool"),
        ("builtins", "str"),
        ("builtins", "bytes"),
        ("builtins", "bytearray"),
        ("_codecs", "encode"),  # protocol-2 pickles store bytes as _codecs.encode(text, "latin1")
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)


MAX_ARRAY_ELEMENTS = 10**8
"""Largest array (elements) a pickle may declare: shapes are checked before numpy allocates anything."""

_ARRAY_BUILDERS = {"_reconstruct", "_frombuffer"}


def _checked_shape(shape: Any) -> None:
    """Refuse a declared array shape that is not a tuple of ints ≥ 0 or exceeds :data:`MAX_ARRAY_ELEMENTS`."""
    dims = shape if isinstance(shape, tuple | list) else (shape,)
    if not all(isinstance(d, int) and d >= 0 for d in dims):
        raise pickle.UnpicklingError(f"array shape {shape!r} is not a tuple of non-negative ints")
    total = 1
    for d in dims:
        total *= d
    if total > MAX_ARRAY_ELEMENTS:
        raise pickle.UnpicklingError(
            f"array of shape {tuple(dims)} declares {total} elements, more than {MAX_ARRAY_ELEMENTS}"
        )


def _reconstruct(function: Any) -> Any:
    """numpy's ``_reconstruct(subtype, shape, dtype)`` with the shape checked first."""

    def checked(subtype: Any, shape: Any, dtype: Any) -> Any:
        _checked_shape(shape)
        return function(subtype, shape, dtype)

    return checked


def _frombuffer(function: Any) -> Any:
    """numpy's ``_frombuffer(buffer, dtype, shape, order)`` with the shape checked first."""

    def checked(buffer: Any, dtype: Any, shape: Any, order: Any) -> Any:
        _checked_shape(shape)
        return function(buffer, dtype, shape, order)

    return checked


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
        function = None
        if module.startswith("numpy.core."):
            # numpy >= 2 moved numpy.core to numpy._core (numpy.core still imports, with a warning)
            try:
                function = getattr(importlib.import_module("numpy._core." + module.split(".", 2)[2]), name)
            except ImportError:
                pass
        if function is None:
            function = getattr(importlib.import_module(module), name)
        if name in _ARRAY_BUILDERS:
            return _reconstruct(function) if name == "_reconstruct" else _frombuffer(function)
        return function


def safe_loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` allowing only builtin containers/scalars and numpy arrays/scalars.

    Arrays may declare at most :data:`MAX_ARRAY_ELEMENTS` elements (checked before any allocation).

    Raises:
        ValueError: naming ``source`` when the pickle references any other global, declares too large an
            array or is malformed.
    """
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        ImportError,
        IndexError,
        TypeError,
        ValueError,  # numpy: "buffer size does not match array size" for a lying shape
        MemoryError,
    ) as error:
        raise ValueError(f"{source}: refused or unreadable pickle ({error})") from error


def safe_load_file(path: str | os.PathLike) -> Any:
    """:func:`safe_loads` on the content of ``path``."""
    path = Path(path)
    return safe_loads(path.read_bytes(), source=str(path))
