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

The substitution of a variant (``SequenceSpec.variant_gc``): ``any``, the one that most
lowers (break) or raises (create) the match; ``balanced``, the one among those that keep
the GC content (A<->T, C<->G) that does so, and where that one fails the rescan the
``any`` one only in pairs of a break and a create of the same GC change, so that the GC
change tells a break from a create no better than chance.
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
VARIANT_GC = ("any", "balanced")
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
                 rng: np.random.Generator, *, draws: int | None = None) -> np.ndarray:
    """Peak heights: gamma(3, 5) without cutoffs; else ``10 (1 + s) u``, ``s`` the decades
    the match's p-value lies below its TF's cutoff (at most 3), ``u`` uniform in 0.8-1.25.
    The random values are drawn for ``draws`` sites (default ``len(sites)``), the first
    ``len(sites)`` used."""
    n = len(sites) if draws is None else draws
    if not cutoffs:
        return rng.gamma(3.0, 5.0, n)[: len(sites)]
    tiny = np.finfo(np.float64).tiny  # the exact p-value of a long consensus can be 0
    cut = np.maximum([cutoffs[tf] for tf in sites["tf"]], tiny)
    p = np.maximum(sites["p_value"].to_numpy(dtype=np.float64), tiny)
    strength = np.clip(np.log10(cut / p), 0, 3)
    return 10.0 * (1.0 + strength) * rng.uniform(0.8, 1.25, n)[: len(sites)]


def gc_change(ref: int, alt: int) -> int:
    """G/C bases gained by substituting base ``alt`` for ``ref`` (ACGT order): +1 A/T to
    G/C, -1 G/C to A/T, else 0."""
    return int(alt in (1, 2)) - int(ref in (1, 2))


def _oriented(motif: Motif, strand: str) -> np.ndarray:
    return motif.pwm if strand == "+" else motif.pwm[::-1, ::-1]


def _proposal(x: np.ndarray, kind: str, tf: str, strand: str, lo: int, motif: Motif,
              site: int, *, neutral: bool = False) -> dict:
    """A break or create at the match of ``tf`` at ``lo``, with its candidate substitutions
    ``subs``: ``(pos, alt)`` of the one that most lowers (break) or raises (create) the
    match's score and, with ``neutral`` where that one changes the GC content, of the one
    keeping it (each base to its complement, A<->T, C<->G) that does so most, where it
    moves the score that way."""
    pwm = _oriented(motif, strand)
    cols = np.arange(pwm.shape[1])
    ref = x[:, lo:lo + pwm.shape[1]].argmax(axis=0)
    same_gc = 3 - ref  # ACGT order: the complement keeps G/C as G/C and A/T as A/T
    if kind == "break":
        j = int((pwm[ref, cols] - pwm.min(axis=0)).argmax())
        alt = int(pwm[:, j].argmin())
        gain = pwm[ref, cols] - pwm[same_gc, cols]  # how much keeping GC lowers the score
    else:
        j = int((np.log(pwm.max(axis=0) + 1e-4) - np.log(pwm[ref, cols] + 1e-4)).argmax())
        alt = int(pwm[:, j].argmax())
        gain = np.log(pwm[same_gc, cols] + 1e-4) - np.log(pwm[ref, cols] + 1e-4)  # raises
    subs = [(lo + j, alt)]
    best = int(gain.argmax())
    if neutral and gc_change(int(ref[j]), alt) != 0 and gain[best] > 0:
        subs.append((lo + best, int(same_gc[best])))
    return {"kind": kind, "tf": tf, "strand": strand, "start": lo, "end": lo + pwm.shape[1],
            "subs": subs, "site": site}


def _rescan(x: np.ndarray, proposals: list[dict], motifs: dict[str, Motif], threshold: float,
            flank: int = 30) -> dict[tuple[int, int], dict[str, float]]:
    """Best p-value (below ``threshold``) of each TF, by window: ``(k, 0)`` the reference
    around proposal ``k``, ``(k, s)`` its ``s``-th substitution."""
    width = max(p["end"] - p["start"] for p in proposals) + 2 * flank
    index = [(k, s) for k, p in enumerate(proposals) for s in range(len(p["subs"]) + 1)]
    windows = np.zeros((len(index), 4, width), dtype=np.float32)
    for w, (k, s) in enumerate(index):
        p = proposals[k]
        a = max(0, p["start"] - flank)
        piece = x[:, a:a + width]
        windows[w, :, : piece.shape[1]] = piece
        if s:
            pos, alt = p["subs"][s - 1]
            windows[w, :, pos - a] = 0
            windows[w, alt, pos - a] = 1
    hits = scan(list(motifs.values()), windows, threshold=threshold)
    best: dict[tuple[int, int], dict[str, float]] = {}
    for w, tf, pv in zip(hits["sequence"], hits["tf"], hits["p_value"]):
        window = best.setdefault(index[int(w)], {})
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
                   ) -> tuple[list[dict], pd.DataFrame, int]:
    """Planted substitutions that pass the rescan, the sites the ``create`` ones make, and
    how many sites the ``any`` substitutions would create (what the random draws of the
    created sites are made for, so that ``variant_gc`` leaves the stream as it is).

    ``sites`` in window coordinates; ``loose``: every match up to ``5 * site_p``. A break
    must take its site's match out of the site rule and bring no other match into it; a
    create must bring a match of its TF into it (under ``strongest``, strictly below the
    cutoff) and of no other TF. Under ``strongest``
    no other match within ``min_spacing`` may be at or below its TF's cutoff (or, for a
    create, as strong as the new match).
    """
    n_each, strongest = spec.n_variants // 2, spec.site_rule == "strongest"
    balanced = spec.variant_gc == "balanced"
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
                           int(sites["start"].iat[i]), motifs[sites["tf"].iat[i]], int(i),
                           neutral=balanced)
                 for i in order]
    centres = ((near["start"] + near["end"]) // 2).to_numpy()
    chosen = spaced(rng.permutation(len(near)), centres, spec.min_spacing, list(blocked))
    for i in rng.permutation(chosen)[: None if strongest else 3 * n_each]:
        proposals.append(_proposal(x, "create", near["tf"].iat[i], near["strand"].iat[i],
                                   int(near["start"].iat[i]), motifs[near["tf"].iat[i]], -1,
                                   neutral=balanced))
    if not proposals:
        return [], pd.DataFrame(columns=COLUMNS), 0
    best = _rescan(x, proposals, motifs, spec.site_p)

    def strong(key: tuple[int, int]) -> set[str]:
        return {tf for tf, pv in best.get(key, {}).items() if pv <= cutoffs.get(tf, 1.0)}

    def crossing(k: int, s: int) -> float | None:
        """The new match's p-value (0 for a break) when substitution ``s`` of proposal
        ``k`` crosses the site rule; None when it does not."""
        p = proposals[k]
        if x[:, p["subs"][s - 1][0]].sum() == 0:
            return None
        ref, alt = strong((k, 0)), strong((k, s))
        if p["kind"] == "break":
            valid = p["tf"] in ref and p["tf"] not in alt and alt <= ref
            new_p = 0.0
        else:
            new_p = best.get((k, s), {}).get(p["tf"], 0.0)
            valid = p["tf"] not in ref and alt == ref | {p["tf"]} and \
                (not strongest or new_p < cutoffs[p["tf"]])  # below any tie at the cutoff
        if not valid or (strongest and _crowded(strict, cutoffs, p, spec.min_spacing, new_p)):
            return None
        return new_p

    def greedy(subs: dict[int, int], limits: dict[str, int]) -> dict[int, tuple[int, float]]:
        """Proposal -> (substitution, new p-value): in order, up to ``limits`` a kind."""
        taken, counts = {}, {"break": 0, "create": 0}
        for k, s in subs.items():
            kind = proposals[k]["kind"]
            if counts[kind] < limits[kind] and (new_p := crossing(k, s)) is not None:
                counts[kind] += 1
                taken[k] = (s, new_p)
        return taken

    default = greedy(dict.fromkeys(range(len(proposals)), 1), {"break": n_each, "create": n_each})
    reserve = sum(proposals[k]["kind"] == "create" for k in default)
    # no more creates than the default, whose sites' random draws are the ones made
    limits = {"break": n_each, "create": reserve}
    picked = _balanced(proposals, greedy, crossing, x, limits) if balanced else default
    accepted, created = [], []
    for k in sorted(picked):
        (s, new_p), p = picked[k], dict(proposals[k])
        p["pos"], p["alt"] = p.pop("subs")[s - 1]
        p["ref"] = int(x[:, p["pos"]].argmax())
        if p["kind"] == "create":
            p["site"] = len(created)
            created.append({"start": p["start"], "end": p["end"], "tf": p["tf"],
                            "role": role(p["tf"]), "strand": p["strand"], "p_value": new_p})
        accepted.append(p)
    return accepted, pd.DataFrame(created, columns=COLUMNS), reserve


def _balanced(proposals: list[dict], greedy: Callable, crossing: Callable, x: np.ndarray,
              limits: dict[str, int]) -> dict[int, tuple[int, float]]:
    """``variant_gc="balanced"``: the GC-keeping substitution of each proposal where it
    crosses the rule, up to ``limits`` a kind; then, while both kinds have room, pairs of a
    break and a create (in order) whose first substitutions cross it with the same GC
    change."""
    def change(k: int, s: int) -> int:
        pos, alt = proposals[k]["subs"][s - 1]
        return gc_change(int(x[:, pos].argmax()), alt)

    keeping = {}
    for k, p in enumerate(proposals):
        s = next((s for s in range(1, len(p["subs"]) + 1) if change(k, s) == 0), None)
        if s is not None:
            keeping[k] = s
    picked = greedy(keeping, limits)
    room = {kind: limits[kind] - sum(proposals[k]["kind"] == kind for k in picked)
            for kind in limits}
    for sign in (-1, 1):
        queues = {kind: [k for k, p in enumerate(proposals) if p["kind"] == kind
                         and k not in picked and change(k, 1) == sign]
                  for kind in ("break", "create")}
        while min(room.values()) > 0:
            pair = {}
            for kind, queue in queues.items():
                while queue and kind not in pair:
                    k = queue.pop(0)
                    if (new_p := crossing(k, 1)) is not None:
                        pair[kind] = (k, new_p)
            if len(pair) < 2:
                break
            for kind, (k, new_p) in pair.items():
                picked[k] = (1, new_p)
                room[kind] -= 1
    return picked
