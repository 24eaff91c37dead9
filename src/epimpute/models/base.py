"""The interface every trained model offers to imputation, saving and loading."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from epimpute.errors import InputError
from epimpute.models.layout import Layout

ContigLoader = Callable[[str], dict[str, torch.Tensor]]
"""Returns the saved per-contig state of one contig (see :meth:`Imputer.state_contigs`)."""


class Imputer(ABC):
    """A trained model that imputes any (biosample, assay) pair over a genomic region.

    Subclasses hold their network and :class:`Layout`; they never touch files.
    """

    name: ClassVar[str]
    reduced_precision: ClassVar[bool] = False
    """Whether imputation may run under bf16 autocast (see :mod:`epimpute.hardware`); models
    whose outputs users compare exactly with exported parameters keep fp32."""
    reads_signal: ClassVar[bool] = True
    """Whether :meth:`impute_region` reads the values of ``signal`` and ``available``. When
    False it uses only the region's length, so a caller may pass zeros of the right shape
    instead of reading the input tracks."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A model that can predict uncertainty must say how: a subclass overriding
        :attr:`predicts_uncertainty` without :meth:`impute_region_spread` is refused when
        it is defined, so the base method is only ever reached by models without one."""
        super().__init_subclass__(**kwargs)
        if cls.predicts_uncertainty is not Imputer.predicts_uncertainty and \
                cls.impute_region_spread is Imputer.impute_region_spread:
            raise TypeError(f"{cls.__name__} overrides predicts_uncertainty but not "
                            "impute_region_spread")

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    @property
    def context_bins(self) -> int:
        """Bins of input signal needed on each side of an imputed region."""
        return 0

    @abstractmethod
    def impute_region(
        self,
        signal: np.ndarray,
        available: np.ndarray,
        targets: Sequence[tuple[int, int]],
        *,
        contig: str,
        start: int,
    ) -> np.ndarray:
        """Impute ``targets`` over one region.

        Parameters
        ----------
        signal
            ``(T, L + 2 * context_bins)`` arcsinh signal of the layout's input tracks, with
            ``context_bins`` of context on each side (zeros beyond the contig).
        available
            ``(T,)`` bool: which input tracks may be read.
        targets
            ``(biosample_index, assay_index)`` pairs to impute.
        contig, start
            Where the region's first imputed bin lies (used by position-aware models).

        Returns
        -------
        np.ndarray
            ``(len(targets), L)`` float32 imputed arcsinh signal.
        """

    @property
    def predicts_uncertainty(self) -> bool:
        """Whether :meth:`impute_region_spread` gives a per-bin sd (False by default)."""
        return False

    def impute_region_spread(
        self,
        signal: np.ndarray,
        available: np.ndarray,
        targets: Sequence[tuple[int, int]],
        *,
        contig: str,
        start: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Impute ``targets`` over one region with the sd of each value.

        Parameters are those of :meth:`impute_region`.

        Returns
        -------
        tuple[np.ndarray, np.ndarray]
            The ``(len(targets), L)`` float32 means (as :meth:`impute_region`) and the sd of
            each on the same (arcsinh) scale, calibrated by training (the central intervals'
            half-widths in sds: :meth:`interval_widths`).

        Raises
        ------
        InputError
            If the model predicts no spread (:attr:`predicts_uncertainty` is False).
        """
        self.require_uncertainty()
        raise TypeError(f"{type(self).__name__} predicts uncertainty but has no "
                        "impute_region_spread")  # refused by __init_subclass__ already

    def require_uncertainty(self, *, where: str = "") -> None:
        """InputError unless this model predicts uncertainty; ``where`` (the model's folder,
        say) opens the message."""
        if not self.predicts_uncertainty:
            opening = f"{where}: " if where else ""
            raise InputError(f"{opening}this {self.name} model does not predict uncertainty; "
                             "train eDICE with \"uncertainty\": true under \"model\" in "
                             "--config")

    def interval_widths(self, targets: Sequence[tuple[int, int]]) -> np.ndarray | None:
        """``(targets, len(CURVE_LEVELS))`` half-widths, in predicted sds, of the central
        intervals at :data:`epimpute.intervals.CURVE_LEVELS`; None: a Gaussian's."""
        return None

    @abstractmethod
    def config_dict(self) -> dict[str, Any]:
        """Hyperparameters as plain JSON-able values."""

    @abstractmethod
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Learnt parameters (a torch state_dict)."""

    @classmethod
    @abstractmethod
    def from_state(
        cls, layout: Layout, config: dict[str, Any], state: dict[str, torch.Tensor]
    ) -> Imputer:
        """Rebuild a model from :meth:`config_dict` and :meth:`state_dict` output."""

    def to(self, device: torch.device) -> Imputer:
        """Move the network to ``device`` (no-op for models without one)."""
        return self

    # Per-contig state: for models whose parameters grow with the genome (Avocado's genome
    # factors). Saving writes one file per contig; loading attaches a loader, so only the
    # contig being imputed needs to be in memory. Models without such state keep the defaults.

    def state_contigs(self) -> tuple[str, ...]:
        """Contigs with state kept apart from :meth:`state_dict` (none by default)."""
        return ()

    def contig_state_dict(self, contig: str) -> dict[str, torch.Tensor]:
        """The state of one contig listed by :meth:`state_contigs`."""
        raise KeyError(contig)

    def use_contig_loader(self, contigs: Sequence[str], load: ContigLoader) -> None:
        """Fetch the state of ``contigs`` on demand from ``load`` (called after loading)."""
        if contigs:
            raise ValueError(f"{self.name} models keep no per-contig state, but the saved "
                             f"model lists some for {', '.join(contigs)}")
