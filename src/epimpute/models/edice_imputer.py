"""The imputer of a trained :class:`~epimpute.models.edice.Edice` network."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from epimpute.models.base import Imputer
from epimpute.models.edice import Edice, EdiceConfig
from epimpute.models.features import context_margin, window_means
from epimpute.models.layout import Layout


class EdiceImputer(Imputer):
    """Imputes regions with a trained :class:`Edice` network.

    ``batch_bins`` bins go through the network at a time; small batches keep activations
    in cache and are faster on a CPU than large ones. On a CPU a region is split into one
    contiguous part per torch thread, each run by its own worker with single-threaded
    operations: the network's matrices are too small for one operation to use several
    cores well, so parts in parallel are faster than threads within each operation.
    """

    name = "edice"
    reduced_precision = True

    def __init__(self, network: Edice, *, batch_bins: int = 512) -> None:
        super().__init__(network.layout)
        self.network = network
        self.batch_bins = batch_bins

    @property
    def context_bins(self) -> int:
        return context_margin(self.network.config.windows)

    @property
    def predicts_uncertainty(self) -> bool:
        return self.network.config.uncertainty

    def impute_region(
        self,
        signal: np.ndarray,
        available: np.ndarray,
        targets: Sequence[tuple[int, int]],
        *,
        contig: str,
        start: int,
    ) -> np.ndarray:
        return self._impute(signal, available, targets, spread=False)[0]

    def impute_region_spread(
        self,
        signal: np.ndarray,
        available: np.ndarray,
        targets: Sequence[tuple[int, int]],
        *,
        contig: str,
        start: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        self.require_uncertainty()
        mean, sd = self._impute(signal, available, targets, spread=True)
        return mean, sd

    def _impute(self, signal: np.ndarray, available: np.ndarray,
                targets: Sequence[tuple[int, int]], *, spread: bool
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """Means ``(targets, L)`` and, with ``spread``, calibrated sds (else None)."""
        device = next(self.network.parameters()).device
        margin = self.context_bins
        n_bins = signal.shape[1] - 2 * margin
        target_pairs = torch.as_tensor(np.asarray(targets, dtype=np.int64).reshape(-1, 2),
                                       device=device)
        mask = torch.as_tensor(np.asarray(available, dtype=bool), device=device)
        out = np.empty((len(targets), n_bins), dtype=np.float32)
        sd = np.empty((len(targets), n_bins), dtype=np.float32) if spread else None
        # Autocast and inference mode are per thread: workers re-enter the caller's.
        reduced = torch.is_autocast_enabled(device.type)
        reduced_dtype = torch.get_autocast_dtype(device.type)

        def run(lo: int, hi: int) -> None:
            features = torch.from_numpy(window_means(
                signal[:, lo:hi + 2 * margin], self.network.config.windows, margin=margin))
            with torch.inference_mode(), torch.autocast(device.type, dtype=reduced_dtype,
                                                        enabled=reduced):
                for first in range(0, hi - lo, self.batch_bins):
                    chunk = features[first:first + self.batch_bins].to(device)
                    n = chunk.shape[0]
                    pairs = target_pairs.expand(n, -1, -1)
                    predicted = self.network(chunk, mask.expand(n, -1), pairs, spread=spread)
                    where = slice(lo + first, lo + first + n)
                    if spread:
                        predicted, log_variance = predicted
                        spread_sd = self.network.output_sd(log_variance, pairs, predicted)
                        sd[:, where] = spread_sd.float().T.cpu().numpy()
                    out[:, where] = predicted.float().T.cpu().numpy()

        threads = torch.get_num_threads()
        workers = min(threads, -(-n_bins // self.batch_bins)) if device.type == "cpu" else 1
        step = -(-n_bins // max(workers, 1) // self.batch_bins) * self.batch_bins
        parts = [(lo, min(lo + step, n_bins)) for lo in range(0, n_bins, max(step, 1))]
        was_training = self.network.training
        self.network.eval()
        try:
            if len(parts) <= 1:
                run(0, n_bins)
            else:
                torch.set_num_threads(1)
                with ThreadPoolExecutor(len(parts)) as pool:
                    for finished in [pool.submit(run, lo, hi) for lo, hi in parts]:
                        finished.result()
        finally:
            torch.set_num_threads(threads)
            self.network.train(was_training)
        return out, sd

    def interval_widths(self, targets: Sequence[tuple[int, int]]) -> np.ndarray | None:
        if not self.predicts_uncertainty:
            return None
        pairs = torch.as_tensor(np.asarray(targets, dtype=np.int64).reshape(-1, 2),
                                device=self.network.spread_widths.device)
        return self.network.interval_widths(pairs).cpu().numpy()

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.network.config)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.network.state_dict().items()}

    @classmethod
    def from_state(
        cls, layout: Layout, config: dict[str, Any], state: dict[str, torch.Tensor]
    ) -> EdiceImputer:
        network = Edice(layout, EdiceConfig(**config))
        network.load_state_dict(state)
        return cls(network)

    def to(self, device: torch.device) -> EdiceImputer:
        self.network.to(device)
        return self
