"""``synth`` and ``synth_sequence``: generated compendia written as stores."""

from __future__ import annotations

import logging
from pathlib import Path

from epimpute.errors import InputError
from epimpute.io.atomic import check_destination, publish_dir
from epimpute.store import Store

log = logging.getLogger(__name__)


def synth(
    like: str,
    out: Path,
    *,
    bins: int,
    seed: int = 0,
    bin_size: int = 25,
    contig: str = "chr1",
    jobs: int = 1,
    progress: bool = False,
) -> Store:
    """Write a generated compendium shaped like a real one into the new store ``out``.

    See :mod:`epimpute.synthetic_compendium` for the signal model.

    Parameters
    ----------
    like
        ``pilot`` (5 x 5), ``roadmap`` (127 x 24, 1,028 tracks) or a manifest TSV with
        ``Biosample`` and ``Assay`` columns (e.g. ENCODE2018-Core), whose observation
        pattern the store takes.
    out
        Store to create.
    bins
        Genome length in bins (one contig).
    seed
        Seed of every random draw.
    bin_size
        Bin width in bp.
    contig
        Name of the contig.
    jobs
        Processes drawing chunks in parallel (the store is the same for any number).
    progress
        Show a progress bar on stderr.

    Returns
    -------
    Store
        The written store.

    Raises
    ------
    InputError
        On a bad manifest, a non-positive ``bins`` or an ``out`` that exists.
    """
    from tqdm.auto import tqdm

    from epimpute.synthetic_compendium import resolve_pattern, synthesize

    if bins < 1:
        raise InputError(f"--bins must be positive, got {bins}")
    pattern = resolve_pattern(str(like), seed=seed)
    with tqdm(total=bins, unit="bin", unit_scale=True, desc="generating",
              disable=not progress) as bar:
        return synthesize(pattern, Path(out), contigs={contig: bins * bin_size},
                          bin_size=bin_size, seed=seed, jobs=jobs, on_progress=bar.update)


def synth_sequence(genome: Path, out: Path, *, cell_types: int = 6, seed: int = 0,
                   start: int | None = None, end: int | None = None, contig: str = "22",
                   accessibility: str = "ATAC", site_rule: str = "strongest",
                   variant_gc: str = "any", overwrite: bool = False,
                   progress: bool = True) -> Store:
    """Generate accessibility and histone tracks with known truth on a real genome's sequence.

    See :mod:`epimpute.synthetic_sequence` for the grammar (motif sites of active TFs,
    promoters, marks, planted variants).

    Parameters
    ----------
    genome
        FASTA (plain, gzip or bgzip) or 2bit reference holding ``contig``.
    out
        Store to create; the truth tables go to ``out/truth``.
    cell_types
        Number of generated cell types (2-8).
    seed
        Seed of every random draw.
    start
        Start of the window of ``contig`` to generate, in bp (default: 16,050,000, where
        hg19 chr22's sequence begins).
    end
        End of the window, in bp (default: 22,000,000).
    contig
        Contig of the genome to use.
    accessibility
        Name of the accessibility assay, ``ATAC`` or ``DNase``.
    site_rule
        ``strongest`` (each TF's sites are its strongest matches, heights rising with the
        match) or ``random`` (sites drawn among the matches; the earlier grammar).
    variant_gc
        ``any`` (each planted variant's substitution the one that most moves its match) or
        ``balanced`` (substitutions that keep the GC content where they cross the site
        rule, else breaks and creates paired by GC change; the tracks stay the same).
    overwrite
        Replace ``out`` if it is an epimpute store.
    progress
        Show progress bars on stderr.

    Returns
    -------
    Store
        The written store.

    Raises
    ------
    InputError
        On bad settings, a contig the genome lacks, a window that does not fit, or an
        ``out`` that may not be written.
    """
    from epimpute.io.genome import open_genome
    from epimpute.store.store import is_store
    from epimpute.synthetic_sequence import SequenceSpec, generate, write_store

    genome, out = Path(genome), Path(out)
    defaults = SequenceSpec()
    spec = SequenceSpec(n_cell_types=cell_types, seed=seed, contig=contig,
                        accessibility=accessibility, site_rule=site_rule,
                        variant_gc=variant_gc,
                        start=defaults.start if start is None else start,
                        end=defaults.end if end is None else end)
    spec.check()
    destination = {"kind": "store", "is_own": is_store, "overwrite": overwrite,
                   "inputs": [genome]}
    check_destination(out, **destination)
    with open_genome(genome) as reference:
        length = reference.contigs.get(contig)
        if length is None:
            reference.fetch(contig, 0, 1)  # raises, naming the file and any alias
        if spec.end > length:
            raise InputError(f"{genome}: contig {contig!r} has {length:,} bases; the window "
                             f"{spec.start:,}-{spec.end:,} does not fit")
        sequence = reference.fetch(contig, spec.start, spec.end)
    compendium = generate(sequence, spec, contig_length=length, progress=progress)
    with publish_dir(out, **destination) as tmp:
        write_store(compendium, tmp)
    return Store.open(out)
