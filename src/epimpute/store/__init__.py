"""The chunked on-disk compendium of binned, arcsinh-transformed signal tracks.

:func:`ingest` builds a store from a sample sheet; :meth:`Store.open` opens one for reading;
:func:`create_store` makes an empty one to fill row by row.
"""

from epimpute.store.ingest import ingest
from epimpute.store.store import Store, Track, create_store

__all__ = ["Store", "Track", "create_store", "ingest"]
