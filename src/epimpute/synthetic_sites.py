"""Where the generator of :mod:`epimpute.synthetic_sequence` puts its sites and variants.

Two rules (``SequenceSpec.site_rule``), on the same candidates (FIMO matches with p below
``site_p``, at least ``min_spacing`` apart, the strongest match winning, clear of promoters):

- ``strongest``: each TF's sites are its strongest candidates; a role's site count is split
  evenly among its TFs (largest remainder, a TF short of candidates leaving its share to
  the others; equal p-values in random order). A TF's *cutoff* is the p-value of its
  weakest site, and a site's height rises with how far its match is below the cutoff. A
  variant breaks a site when it takes the match above the cutoff and creates one when it
  takes a match of a TF below the cutoff (matches *at* it tie with sites that are not).
- ``random``: sites drawn at random among the candidates, heights independent of the match;
  a variant breaks a site when the match is gone at ``site_p``, creates one when a
  near-match (``site_p`` to ``5 * site_p``) passes ``site_p``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from epimpute.motifs import Motif, scan

if TYPE_CHECKING:
    from epimpute.synthetic_sequence import SequenceSpec

ROLES = ("ubiquitous", "lineage", "specific")
SITE_RULES = ("strongest", "random")
COLUMNS = ["start", "end", "tf", "role", "strand", "p_value"]


def spaced(order: np.ndarray, centres: np.ndarray, spacing: int, taken: list[int]) -> np.ndarray:
    """Indices of ``centres`` accepted in the given order, each ``spacing`` from the ones
    accepted before and from ``taken`` (a sorted list, updated)."""
    kept = []
    for i in order:
        c = int(centres[i])
        j = bisect.bisect_left(taken, c)
        if (j < len(taken) and taken[j] - c < spacing) or (j > 0 and c - taken[j - 1] < spacing):
            continue
        taken.insert(j, c)
        kept.append(i)
    return np.sort(np.array(kept, dtype=np.int64))


def _role_counts(available: dict[str, int], shares: tuple[float, ...], n_wanted: int
                 ) -> np.ndarray:
    feasible = min(available[r] / s for r, s in zip(ROLES, shares) if s > 0)
    total = min(n_wanted, int(np.floor(feasible + 1e-9)))
    raw = total * np.array(shares)
    counts = np.floor(raw + 1e-9).astype(int)
    for k in np.argsort(-(raw - counts), kind="stable")[: total - counts.sum()]:
        counts[k] += 1  # largest remainders, so the counts add up to the total
    return counts


def even_quotas(capacity: dict[str, int], count: int) -> dict[str, int]:
    """``count`` split as evenly as ``capacity`` allows (extra ones to the first names)."""
    quota = dict.fromkeys(capacity, 0)
    while (left := count - sum(quota.values())) > 0:
        room = [n for n in capacity if quota[n] < capacity[n]]
        if not room:
            break
        share, extra = divmod(left, len(room))
        for i, name in enumerate(room):
            quota[name] += min(share + (i < extra), capacity[name] - quota[name])
    return quota


def choose_sites(hits: pd.DataFrame, spec: SequenceSpec, rng: np.random.Generator,
                 blocked: list[int], n_wanted: int, role: Callable[[str], str]
                 ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Sites (``COLUMNS``) to the shares of ``spec.peak_shares``, as many as ``n_wanted``
    and the candidates allow, and each TF's cutoff (``strongest`` rule; else empty).
    ``role``: TF name to its role."""
    hits = hits.sort_values("p_value", kind="stable")  # of a palindrome's two strands,
    hits = hits.drop_duplicates(["start", "end", "tf"], ignore_index=True)  # the better one
    centres = ((hits["start"] + hits["end"]) // 2).to_numpy()
    # the strongest match wins where matches crowd (ties in random order)
    order = np.lexsort((rng.random(len(hits)), hits["p_value"].to_numpy()))
    candidates = hits.iloc[spaced(order, centres, spec.min_spacing, list(blocked))]
    candidates = candidates.reset_index(drop=True)
    candidates["role"] = [role(tf) for tf in candidates["tf"]]
    available = {r: int((candidates["role"] == r).sum()) for r in ROLES}
    counts = _role_counts(available, spec.peak_shares, n_wanted)
    chosen = []
    for name, count in zip(ROLES, counts):
        rows = np.flatnonzero(candidates["role"] == name)
        if spec.site_rule == "random":
            chosen.append(rng.choice(rows, size=min(count, rows.size), replace=False))
            continue
        tfs = candidates["tf"].to_numpy()[rows]
        quota = even_quotas({tf: int((tfs == tf).sum()) for tf in sorted(set(tfs))}, count)
        for tf, n in quota.items():
            own = rows[tfs == tf]
            p = candidates["p_value"].to_numpy()[own]
            chosen.append(own[np.lexsort((rng.random(own.size), p))[:n]])
    keep = np.sort(np.concatenate(chosen)).astype(np.int64)
    sites = candidates.iloc[keep].reset_index(drop=True)
    cutoffs = {} if spec.site_rule == "random" else \
        sites.groupby("tf")["p_value"].max().to_dict()
    return sites, cutoffs


def site_heights(sites: pd.DataFrame, cutoffs: dict[str, float],
                 rng: np.random.Generator) -> np.ndarray:
    """Peak heights: gamma(3, 5) without cutoffs; else ``10 (1 + s) u``, ``s`` the decades
    the match's p-value lies below its TF's cutoff (at most 3), ``u`` uniform in 0.8-1.25."""
    if not cutoffs:
        return rng.gamma(3.0, 5.0, len(sites))
    tiny = np.finfo(np.float64).tiny  # the exact p-value of a long consensus can be 0
    cut = np.maximum([cutoffs[tf] for tf in sites["tf"]], tiny)
    p = np.maximum(sites["p_value"].to_numpy(dtype=np.float64), tiny)
    strength = np.clip(np.log10(cut / p), 0, 3)
    return 10.0 * (1.0 + strength) * rng.uniform(0.8, 1.25, len(sites))


def _oriented(motif: Motif, strand: str) -> np.ndarray:
    return motif.pwm if strand == "+" else motif.pwm[::-1, ::-1]


def _proposal(x: np.ndarray, kind: str, tf: str, strand: str, lo: int, motif: Motif,
              site: int) -> dict:
    """The substitution that most lowers (break) or raises (create) the match's score."""
    pwm = _oriented(motif, strand)
    cols = np.arange(pwm.shape[1])
    ref = x[:, lo:lo + pwm.shape[1]].argmax(axis=0)
    if kind == "break":
        j = int((pwm[ref, cols] - pwm.min(axis=0)).argmax())
        alt = int(pwm[:, j].argmin())
    else:
        j = int((np.log(pwm.max(axis=0) + 1e-4) - np.log(pwm[ref, cols] + 1e-4)).argmax())
        alt = int(pwm[:, j].argmax())
    return {"kind": kind, "tf": tf, "strand": strand, "start": lo, "end": lo + pwm.shape[1],
            "pos": lo + j, "ref": int(ref[j]), "alt": alt, "site": site}


def _rescan(x: np.ndarray, proposals: list[dict], motifs: dict[str, Motif], threshold: float,
            flank: int = 30) -> dict[int, dict[str, float]]:
    """Best p-value (below ``threshold``) of each TF, by window: ``2k`` (reference) and
    ``2k + 1`` (alternative) around proposal ``k``."""
    width = max(p["end"] - p["start"] for p in proposals) + 2 * flank
    windows = np.zeros((2 * len(proposals), 4, width), dtype=np.float32)
    for k, p in enumerate(proposals):
        a = max(0, p["start"] - flank)
        piece = x[:, a:a + width]
        windows[2 * k : 2 * k + 2, :, : piece.shape[1]] = piece
        windows[2 * k + 1, :, p["pos"] - a] = 0
        windows[2 * k + 1, p["alt"], p["pos"] - a] = 1
    hits = scan(list(motifs.values()), windows, threshold=threshold)
    best: dict[int, dict[str, float]] = {}
    for k, tf, pv in zip(hits["sequence"], hits["tf"], hits["p_value"]):
        window = best.setdefault(int(k), {})
        window[tf] = min(pv, window.get(tf, 1.0))
    return best


def _crowded(strict: pd.DataFrame, cutoffs: dict[str, float], p: dict, spacing: int,
             new_p: float) -> bool:
    """Whether a match other than the proposal's own lies within ``spacing`` of it and is
    at or below its TF's cutoff or the proposal's (new) p-value: breaking the site could
    free it, or it would outrank a created match."""
    centre = (p["start"] + p["end"]) // 2
    near = strict[((strict["start"] + strict["end"]) // 2 - centre).abs() < spacing]
    near = near[~((near["start"] == p["start"]) & (near["tf"] == p["tf"]))]
    cut = near["tf"].map(cutoffs).fillna(0.0)
    return bool(((near["p_value"] <= cut) | (near["p_value"] <= new_p)).any())


def plant_variants(x: np.ndarray, spec: SequenceSpec, motifs: dict[str, Motif],
                   sites: pd.DataFrame, loose: pd.DataFrame, cutoffs: dict[str, float],
                   promoters: list[int], rng: np.random.Generator, role: Callable[[str], str]
                   ) -> tuple[list[dict], pd.DataFrame]:
    """Planted substitutions that pass the rescan, and the sites the ``create`` ones make.

    ``sites`` in window coordinates; ``loose``: every match up to ``5 * site_p``. A break
    must take its site's match out of the site rule and bring no other match into it; a
    create must bring a match of its TF into it (under ``strongest``, strictly below the
    cutoff) and of no other TF. Under ``strongest``
    no other match within ``min_spacing`` may be at or below its TF's cutoff (or, for a
    create, as strong as the new match).
    """
    n_each, strongest = spec.n_variants // 2, spec.site_rule == "strongest"
    strict = loose[loose["p_value"] < spec.site_p]
    site_centres = ((sites["start"] + sites["end"]) // 2).tolist()
    if strongest:  # every site is tried (only those near their cutoff can be broken)
        order = rng.permutation(len(sites))
        near = loose[loose["p_value"] > loose["tf"].map(cutoffs).fillna(1.0)]
        blocked = sorted([*promoters, *site_centres])
    else:
        order = rng.permutation(len(sites))[: 3 * n_each]
        near = loose[loose["p_value"] >= spec.site_p]
        blocked = sorted([*promoters, *((strict["start"] + strict["end"]) // 2).tolist()])
    near = near.reset_index(drop=True)
    proposals = [_proposal(x, "break", sites["tf"].iat[i], sites["strand"].iat[i],
                           int(sites["start"].iat[i]), motifs[sites["tf"].iat[i]], int(i))
                 for i in order]
    centres = ((near["start"] + near["end"]) // 2).to_numpy()
    chosen = spaced(rng.permutation(len(near)), centres, spec.min_spacing, list(blocked))
    for i in rng.permutation(chosen)[: None if strongest else 3 * n_each]:
        proposals.append(_proposal(x, "create", near["tf"].iat[i], near["strand"].iat[i],
                                   int(near["start"].iat[i]), motifs[near["tf"].iat[i]], -1))
    if not proposals:
        return [], pd.DataFrame(columns=COLUMNS)
    best = _rescan(x, proposals, motifs, spec.site_p)

    def strong(k: int) -> set[str]:
        return {tf for tf, pv in best.get(k, {}).items() if pv <= cutoffs.get(tf, 1.0)}

    accepted, created, counts = [], [], {"break": 0, "create": 0}
    for k, p in enumerate(proposals):
        if counts[p["kind"]] >= n_each or x[:, p["pos"]].sum() == 0:
            continue
        ref, alt = strong(2 * k), strong(2 * k + 1)
        if p["kind"] == "break":
            valid = p["tf"] in ref and p["tf"] not in alt and alt <= ref
            new_p = 0.0
        else:
            new_p = best.get(2 * k + 1, {}).get(p["tf"], 0.0)
            valid = p["tf"] not in ref and alt == ref | {p["tf"]} and \
                (not strongest or new_p < cutoffs[p["tf"]])  # below any tie at the cutoff
        if not valid or (strongest and _crowded(strict, cutoffs, p, spec.min_spacing, new_p)):
            continue
        counts[p["kind"]] += 1
        if p["kind"] == "create":
            p["site"] = len(created)
            created.append({"start": p["start"], "end": p["end"], "tf": p["tf"],
                            "role": role(p["tf"]), "strand": p["strand"], "p_value": new_p})
        accepted.append(p)
    return accepted, pd.DataFrame(created, columns=COLUMNS)
