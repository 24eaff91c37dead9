"""epimpute: impute unmeasured epigenomic signal tracks.

The public API mirrors the command line: :func:`epimpute.api.ingest`,
:func:`epimpute.api.train`, :func:`epimpute.api.impute`.
"""

__version__ = "0.1.0"
