"""Imputing with a trained Avocado network and per-contig genome factors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from epimpute.errors import InputError
from epimpute.models.avocado.config import AvocadoConfig
from epimpute.models.avocado.genome_factors import GenomeFactors, factors_from_state
from epimpute.models.avocado.network import Avocado
from epimpute.models.base import ContigLoader, Imputer
from epimpute.models.layout import Layout

__all__ = ["FORMAT_VERSION", "AvocadoImputer", "decode_features", "genome_features"]

FORMAT_VERSION = 2
"""Version of the configuration and state an Avocado model saves. 2: the decoder is
per-member (``(M, out, in)`` weights) and ``members`` is recorded; format 1 (single-model
decoders, before ensembles) is no longer read."""


class AvocadoImputer(Imputer):
    """Imputes regions from a trained :class:`Avocado` network and per-contig genome factors.

    The genome factors are held per contig, either in memory (right after training) or
    fetched one contig at a time through a loader (after loading from a model folder);
    only the contig being imputed is kept.

    Parameters
    ----------
    network
        The trained network.
    genome
        Contig name to its trained :class:`GenomeFactors` (may be empty when a loader is
        attached later with :meth:`use_contig_loader`).
    batch_bins
        Bins decoded at once during imputation.
    """

    name = "avocado"
    reads_signal = False
    reduced_precision = True

    def __init__(self, network: Avocado, genome: Mapping[str, GenomeFactors] | None = None,
                 *, batch_bins: int = 4096) -> None:
        super().__init__(network.layout)
        self.network = network
        self.batch_bins = batch_bins
        self._genome: dict[str, GenomeFactors] = dict(genome or {})
        self._loader: ContigLoader | None = None
        self._loadable: tuple[str, ...] = ()
        self._cached: tuple[str, GenomeFactors] | None = None

    # -- genome factors ---------------------------------------------------------------------

    @property
    def contigs(self) -> tuple[str, ...]:
        """Contigs with fitted genome factors (the only ones that can be imputed)."""
        return tuple(self._genome) + tuple(c for c in self._loadable if c not in self._genome)

    def genome_factors(self, contig: str) -> GenomeFactors:
        """The genome factors of ``contig`` (loaded on demand; the last one is cached).

        Raises
        ------
        InputError
            If the model has no factors for ``contig``.
        """
        if contig in self._genome:
            return self._genome[contig]
        if self._cached is not None and self._cached[0] == contig:
            return self._cached[1]
        if contig not in self._loadable or self._loader is None:
            fitted = ", ".join(self.contigs) or "none"
            raise InputError(
                f"the avocado model has no genome factors for contig '{contig}' (fitted "
                f"contigs: {fitted}); Avocado can only impute positions it was trained on")
        factors = factors_from_state(self._loader(contig), self.network.config)
        device = next(self.network.parameters()).device
        factors.to(device)
        self._cached = (contig, factors)
        return factors

    def state_contigs(self) -> tuple[str, ...]:
        return self.contigs

    def contig_state_dict(self, contig: str) -> dict[str, torch.Tensor]:
        factors = self.genome_factors(contig)
        return {k: v.detach().cpu() for k, v in factors.state_dict().items()}

    def use_contig_loader(self, contigs: Sequence[str], load: ContigLoader) -> None:
        self._loadable = tuple(contigs)
        self._loader = load
        self._cached = None

    # -- imputation -------------------------------------------------------------------------

    def impute_region(
        self,
        signal: np.ndarray,
        available: np.ndarray,
        targets: Sequence[tuple[int, int]],
        *,
        contig: str,
        start: int,
    ) -> np.ndarray:
        """Impute ``targets`` over bins ``start .. start + L`` of ``contig``.

        ``signal`` only gives the region's length ``L``: Avocado reads no input signal, so
        ``available`` is ignored too. Under a bf16 autocast (``--precision``) the decoder's
        hidden layers run in bf16 while the factorised first layer is summed in fp32 (see
        :meth:`Avocado.decode_pairs`). Raises :class:`~epimpute.errors.InputError` when the
        model was not trained on ``contig`` or the region runs past the fitted bins.
        """
        n_bins = signal.shape[1]
        factors = self.genome_factors(contig)
        if start < 0 or start + n_bins > int(factors.n_bins):
            raise InputError(
                f"bins {start}..{start + n_bins} of contig '{contig}' lie outside the "
                f"{int(factors.n_bins)} bins the avocado model was trained on")
        device = next(self.network.parameters()).device
        pairs = torch.as_tensor(np.asarray(targets, dtype=np.int64).reshape(-1, 2), device=device)
        out = np.empty((len(pairs), n_bins), dtype=np.float32)
        dtype = (torch.get_autocast_dtype(device.type)
                 if torch.is_autocast_enabled(device.type) else torch.float32)
        was_training = self.network.training
        self.network.eval()
        try:
            with torch.inference_mode(), torch.autocast(device.type, enabled=False):
                for lo in range(0, n_bins, self.batch_bins):
                    hi = min(lo + self.batch_bins, n_bins)
                    genome = factors.span(start + lo, start + hi)
                    out[:, lo:hi] = self.network.decode_pairs(
                        genome, pairs, dtype=dtype).cpu().numpy()
        finally:
            self.network.train(was_training)
        return out

    # -- saving -----------------------------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        return {**asdict(self.network.config), "format_version": FORMAT_VERSION}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.network.state_dict().items()}

    @classmethod
    def from_state(
        cls, layout: Layout, config: dict[str, Any], state: dict[str, torch.Tensor]
    ) -> AvocadoImputer:
        config = dict(config)
        version = config.pop("format_version", 1)
        if version != FORMAT_VERSION:
            raise InputError(f"the avocado model was saved in avocado format {version}; this "
                             f"epimpute reads format {FORMAT_VERSION} only: train it again")
        with torch.random.fork_rng(devices=[]):  # initial values are overwritten anyway
            network = Avocado(layout, AvocadoConfig(**config))
        network.load_state_dict(state)
        return cls(network)

    def to(self, device: torch.device) -> AvocadoImputer:
        self.network.to(device)
        for factors in self._genome.values():
            factors.to(device)
        if self._cached is not None:
            self._cached[1].to(device)
        return self


def genome_features(factors: GenomeFactors, start: int, end: int) -> np.ndarray:
    """Genome features of contig bins ``start .. end``: ``(end - start, M * G)`` float32.

    Columns are member by member, and within a member the factors of each scale in order
    (e.g. 25 bp, then 250 bp, then 5 kb).
    """
    with torch.no_grad():
        return factors.span(start, end).float().cpu().numpy()


def decode_features(network: Avocado, genome: np.ndarray, targets: Sequence[tuple[int, int]]
                    ) -> np.ndarray:
    """Impute from exported genome features: ``(L, M * G)`` features -> ``(K, L)`` signal.

    This is what :meth:`AvocadoImputer.impute_region` computes, starting from the array
    written by ``epimpute factors`` instead of the model's own tables.
    """
    was_training = network.training
    network.eval()
    try:
        with torch.inference_mode():
            device = next(network.parameters()).device
            pairs = torch.as_tensor(np.asarray(targets, dtype=np.int64).reshape(-1, 2),
                                    device=device)
            features = torch.as_tensor(genome, dtype=torch.float32, device=device)
            return network.decode_pairs(features, pairs).cpu().numpy()
    finally:
        network.train(was_training)
