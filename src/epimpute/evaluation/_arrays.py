"""Argument handling shared by the metric functions (private).

Every public metric takes ``(y_true, y_pred, mask=None)``. :func:`per_track` lets a metric
written for one track of shape ``(n_bins,)`` also accept a stack of shape
``(n_tracks, n_bins)`` and return one value per track.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from epimpute.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


def as_signal(values: ArrayLike, *, name: str) -> NDArray[np.floating]:
    """Return ``values`` as a floating array; float32 input stays float32."""
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    if array.ndim not in (1, 2):
        raise InputError(f"{name} must have shape (n_bins,) or (n_tracks, n_bins), got {array.shape}")
    return array


def as_mask(
    mask: ArrayLike | None, shape: tuple[int, ...], *, name: str = "mask"
) -> NDArray[np.bool_] | None:
    """Return ``mask`` as a boolean array of ``shape``, or None."""
    if mask is None:
        return None
    array = np.asarray(mask)
    if array.dtype != np.bool_:
        raise InputError(f"{name} must be a boolean array, got dtype {array.dtype}")
    if array.shape != shape:
        raise InputError(f"{name} has shape {array.shape} but the signal has shape {shape}")
    return array


def as_weights(weights: ArrayLike, shape: tuple[int, ...], *, name: str) -> NDArray[np.float64]:
    """Return per-bin weights of ``shape`` as float64, rejecting negative values."""
    array = np.asarray(weights, dtype=np.float64)
    if array.shape != shape:
        raise InputError(f"{name} has shape {array.shape} but the signal has shape {shape}")
    if array.size and array.min() < 0:
        raise InputError(f"{name} has negative values")
    return array


def select(
    y_true: NDArray[np.floating], y_pred: NDArray[np.floating], mask: ArrayLike | None
) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.bool_] | None]:
    """Check that one track pair matches and return it restricted to ``mask``.

    Returns ``(y_true[mask], y_pred[mask], mask)``; with no mask the arrays come back as
    they are and the mask as None.
    """
    if y_true.shape != y_pred.shape:
        raise InputError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    checked = as_mask(mask, y_true.shape)
    if checked is None:
        return y_true, y_pred, None
    return y_true[checked], y_pred[checked], checked


def per_track(func: F) -> F:
    """Let a one-track metric also score a ``(n_tracks, n_bins)`` stack row by row.

    For 2-D input the mask may be shared ``(n_bins,)`` or per track ``(n_tracks, n_bins)``;
    keyword arrays with the stack's shape are sliced by row, other keywords are shared.
    The result is then a float64 array of shape ``(n_tracks,)``.
    """

    @functools.wraps(func)
    def wrapper(y_true: ArrayLike, y_pred: ArrayLike, mask: ArrayLike | None = None, **kwargs: Any) -> Any:
        yt = as_signal(y_true, name="y_true")
        yp = as_signal(y_pred, name="y_pred")
        if yt.shape != yp.shape:
            raise InputError(f"y_true has shape {yt.shape} but y_pred has shape {yp.shape}")
        if yt.ndim == 1:
            return func(yt, yp, mask, **kwargs)
        mask_array = None if mask is None else np.asarray(mask)
        values = []
        for row in range(yt.shape[0]):
            row_mask = mask_array[row] if mask_array is not None and mask_array.ndim == 2 else mask_array
            row_kwargs = {
                key: value[row] if isinstance(value, np.ndarray) and value.shape == yt.shape else value
                for key, value in kwargs.items()
            }
            values.append(func(yt[row], yp[row], row_mask, **row_kwargs))
        return np.asarray(values, dtype=np.float64)

    return wrapper  # type: ignore[return-value]
