"""The compendium as a model sees it: biosamples, assays and which tracks are inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from epimpute.errors import InputError
from epimpute.io.trackkey import TrackKey

split_key = TrackKey.split
"""Split a ``BIOSAMPLE:ASSAY`` track key into its two parts (names checked)."""


@dataclass(frozen=True)
class Layout:
    """Biosamples ("cell types"), assays and the tracks a model takes as input.

    Attributes
    ----------
    biosamples, assays
        Names in the order of the model's embedding rows.
    tracks
        ``(biosample_index, assay_index)`` of every input track, in input-row order.
    bin_size
        Bin width in bp of the signal the model was trained on.
    excluded
        Keys of tracks that were observed but hidden from training and from inputs.
    """

    biosamples: tuple[str, ...]
    assays: tuple[str, ...]
    tracks: tuple[tuple[int, int], ...]
    bin_size: int = 25
    excluded: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_keys(
        cls,
        keys: Sequence[str],
        *,
        bin_size: int,
        excluded: Sequence[str] = (),
        biosamples: Sequence[str] | None = None,
        assays: Sequence[str] | None = None,
    ) -> Layout:
        """Build a layout from track keys; names are sorted unless given."""
        pairs = [split_key(k) for k in keys]
        bios = tuple(biosamples) if biosamples is not None else tuple(sorted({b for b, _ in pairs}))
        ass = tuple(assays) if assays is not None else tuple(sorted({a for _, a in pairs}))
        b_index = {b: i for i, b in enumerate(bios)}
        a_index = {a: i for i, a in enumerate(ass)}
        tracks = tuple((b_index[b], a_index[a]) for b, a in pairs)
        return cls(bios, ass, tracks, bin_size, tuple(excluded))

    def extended(
        self,
        keys: Sequence[str],
        *,
        biosamples: Sequence[str] = (),
        assays: Sequence[str] = (),
        excluded: Sequence[str] = (),
    ) -> Layout:
        """This layout grown by new biosamples, assays and input tracks.

        Existing biosamples and assays keep their rows; new ones (from ``biosamples``,
        ``assays`` and ``keys``, in that order of appearance) are appended. The inputs are
        ``keys``: those that are inputs here first, in this layout's order, then the others
        in the order given.
        """
        pairs = [split_key(k) for k in keys]
        bios = list(dict.fromkeys([*self.biosamples, *biosamples, *(b for b, _ in pairs)]))
        ass = list(dict.fromkeys([*self.assays, *assays, *(a for _, a in pairs)]))
        wanted = set(keys)
        kept = [k for k in self.keys if k in wanted]
        order = kept + [k for k in dict.fromkeys(keys) if k not in set(kept)]
        return Layout.from_keys(order, bin_size=self.bin_size, excluded=excluded,
                                biosamples=bios, assays=ass)

    @property
    def n_biosamples(self) -> int:
        return len(self.biosamples)

    @property
    def n_assays(self) -> int:
        return len(self.assays)

    @property
    def keys(self) -> list[str]:
        """Track keys in input-row order."""
        return [self.key(b, a) for b, a in self.tracks]

    def key(self, biosample: int, assay: int) -> str:
        return str(TrackKey.of(self.biosamples[biosample], self.assays[assay]))

    def index_of(self, key: str) -> tuple[int, int]:
        """``(biosample_index, assay_index)`` of a key; InputError if unknown."""
        biosample, assay = split_key(key)
        if biosample not in self.biosamples:
            raise InputError(f"cell type '{biosample}' is not known to the model "
                             f"(known: {', '.join(self.biosamples)})")
        if assay not in self.assays:
            raise InputError(f"assay '{assay}' is not known to the model "
                             f"(known: {', '.join(self.assays)})")
        return self.biosamples.index(biosample), self.assays.index(assay)

    def to_dict(self) -> dict[str, Any]:
        return {
            "biosamples": list(self.biosamples),
            "assays": list(self.assays),
            "tracks": [list(t) for t in self.tracks],
            "bin_size": self.bin_size,
            "excluded": list(self.excluded),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Layout:
        return cls(
            tuple(data["biosamples"]),
            tuple(data["assays"]),
            tuple((int(b), int(a)) for b, a in data["tracks"]),
            int(data["bin_size"]),
            tuple(data.get("excluded", ())),
        )
