"""Export Avocado's learnt representation: genome factors of a contig, cell-type and assay
embeddings, as one ``.npz`` file for downstream machine learning.

File layout (arrays of the ``.npz``)::

    factors              float32 (n_bins, M*G)  genome factors of every bin at 25-bp
                                              resolution, member by member: for each of the
                                              model's M ensemble members, the factors of each
                                              scale, coarser ones repeated over the bins that
                                              share them (G = 110 with the paper's sizes:
                                              25 + 40 + 45; 60 with the small ones)
    chrom                str ()               the contig
    start, end           int64 (n_bins,)      bin coordinates in bp (0-based, end exclusive;
                                              the last bin's end is a whole bin past its
                                              start, the model does not know contig lengths)
    factor_scale_bp      int64 (M*G,)         resolution of each column (25, 250 or 5000 bp)
    factor_member        int64 (M*G,)         ensemble member of each column (0 .. M-1)
    members              int64 ()             M
    bin_size             int64 ()             bp per bin
    cell_types, assays   str (C,), (A,)       names, in embedding-row order
    cell_type_embedding  float32 (C, M*c)     member by member (columns m*c .. (m+1)*c)
    assay_embedding      float32 (A, M*a)     member by member

The factors are streamed to disk a block of bins at a time, so a chromosome's export needs
no more memory than its factor tables. To re-impute from the file, feed member ``m``'s
``[cell_type_embedding[c, m], assay_embedding[a, m], factors[p, factor_member == m]]``
through member ``m``'s slice of the decoder (``decoder.<i>.weight[m]``, ``bias[m]``) and
average over the members (see :func:`epimpute.models.avocado.decode_features`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from epimpute.errors import InputError
from epimpute.io.npz_stream import NpzStreamWriter
from epimpute.models.avocado import AvocadoImputer, genome_features
from epimpute.models.base import Imputer

__all__ = ["export_factors", "is_factors_file"]

_CHUNK_BINS = 262_144


def export_factors(imputer: Imputer, out: Path, *, chrom: str,
                   chunk_bins: int = _CHUNK_BINS) -> Path:
    """Write the genome factors of ``chrom`` and the embeddings of ``imputer`` to ``out``.

    Parameters
    ----------
    imputer
        A trained Avocado model.
    out
        The ``.npz`` file to write (appears only when complete).
    chrom
        A contig the model has genome factors for.
    chunk_bins
        Bins written at a time.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputError
        If the model is not an Avocado model or has no factors for ``chrom``.
    """
    if not isinstance(imputer, AvocadoImputer):
        raise InputError(f"only avocado models have genome factors, this is a "
                         f"{imputer.name} model")
    out = Path(out)
    factors = imputer.genome_factors(chrom)
    network = imputer.network
    config = network.config
    n_bins, bin_size = int(factors.n_bins), imputer.layout.bin_size
    scale_bp = np.tile(np.concatenate([
        np.full(size, scale * bin_size, dtype=np.int64)
        for scale, size in zip(config.scales, config.genome_factors)]), config.members)
    member = np.repeat(np.arange(config.members, dtype=np.int64), config.n_genome_features)

    spans = [(lo, min(lo + chunk_bins, n_bins)) for lo in range(0, n_bins, chunk_bins)]
    with NpzStreamWriter(out) as archive:
        archive.begin("factors", n_bins, columns=factors.size)
        for lo, hi in spans:
            archive.write(genome_features(factors, lo, hi))
        for name, first in (("start", 0), ("end", 1)):
            archive.begin(name, n_bins, dtype="<i8")
            for lo, hi in spans:
                archive.write((np.arange(lo, hi, dtype=np.int64) + first) * bin_size)
        with torch.no_grad():
            small = {
                "chrom": np.array(chrom),
                "factor_scale_bp": scale_bp,
                "factor_member": member,
                "members": np.array(config.members, dtype=np.int64),
                "bin_size": np.array(bin_size, dtype=np.int64),
                "cell_types": np.array(imputer.layout.biosamples),
                "assays": np.array(imputer.layout.assays),
                "cell_type_embedding": network.celltype.weight.detach().cpu().numpy(),
                "assay_embedding": network.assay.weight.detach().cpu().numpy(),
            }
        for name, array in small.items():
            archive.add(name, array)
    return out


def is_factors_file(path: Path) -> bool:
    """Whether ``path`` is a factors file written by :func:`export_factors`."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {"factors.npy", "factor_scale_bp.npy"} <= set(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
