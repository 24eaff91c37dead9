"""Readers and writers for the files epimpute consumes and produces.

Each module has one job; import from the module that does the work:

- :mod:`epimpute.io.binning`: average base-level intervals into fixed-size bins (whole
  contigs or windows of bins), and the arcsinh transform used for signal.
- :mod:`epimpute.io.bigwig`: read a bigWig contig into bins, whole or window by window;
  write binned signal as bigWig.
- :mod:`epimpute.io.bedgraph`: stream a bedGraph (plain or gzipped) contig by contig, its
  bins window by window.
- :mod:`epimpute.io.arrays`: read pre-binned ``.npy`` / ``.npz`` arrays, whole or window
  by window.
- :mod:`epimpute.io.samplesheet`: parse and check the sample sheet.
- :mod:`epimpute.io.chromsizes`: parse a chromosome sizes file.

Every reader reports bad input with :class:`epimpute.errors.InputError`, whose message names
the file (and line or contig) and the problem.
"""
