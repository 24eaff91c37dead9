import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epimpute.cli import main
from epimpute.errors import InputError
from epimpute.io.genome import one_hot, open_genome
from epimpute.motifs import consensus, jaspar_motifs, scan
from epimpute.store import Store
from epimpute.synthetic_sequence import SequenceSpec, cpg_islands, generate
from epimpute.synthetic_sites import even_quotas

SEQUENCE = next((p / "shared" / "data" / "sequence" for p in Path(__file__).resolve().parents[1:4]
                 if (p / "shared" / "data" / "sequence").is_dir()),
                Path(__file__).resolve().parents[2] / "shared" / "data" / "sequence")
HG19 = SEQUENCE / "hg19.chr22_1-22000000.fa.gz"

# Three cell types: cell1 and cell3 in lineage 0 (SPI1), cell2 in lineage 1 (HNF4A); the
# specific TFs TP53, REST, EBF1 go to cell1, cell2, cell3; NR3C1 is active nowhere.
TOY = SequenceSpec(n_cell_types=3, contig="toy", start=0, end=22_000, ubiquitous=("CTCF",),
                   lineages=(("SPI1",), ("HNF4A",)), specific=("TP53", "REST", "EBF1", "NR3C1"),
                   sites_per_mb=1e6, peak_shares=(2 / 9, 4 / 9, 3 / 9), n_variants=6, seed=5)
PLANTED = ["CTCF", "SPI1", "HNF4A", "TP53", "CTCF", "REST", "SPI1", "EBF1", "HNF4A", "NR3C1"]
EXPECTED_CELLS = {"CTCF": "cell1,cell2,cell3", "SPI1": "cell1,cell3", "HNF4A": "cell2",
                  "TP53": "cell1", "REST": "cell2", "EBF1": "cell3"}


def planted_sequence() -> tuple[str, list[tuple[str, int]]]:
    """Consensus motifs every 2 kb in N: the only sequence any motif can match."""
    words = {m.name: consensus(m) for m in jaspar_motifs(PLANTED)}
    seq, where = [], []
    for i, tf in enumerate(PLANTED):
        start = 1_000 + 2_000 * i
        seq.append("N" * (start - sum(map(len, seq))) + words[tf])
        where.append((tf, start + len(words[tf]) // 2))
    text = "".join(seq)
    return text + "N" * (TOY.end - len(text)), where


@pytest.fixture(scope="module")
def toy():
    sequence, where = planted_sequence()
    return generate(sequence, TOY, contig_length=TOY.end), sequence, where


def test_peaks_only_at_matches_of_active_tfs(toy):
    compendium, _, where = toy
    sites = compendium.sites
    assert sorted(sites["tf"]) == sorted(tf for tf, _ in where if tf != "NR3C1")
    assert compendium.genes.empty  # no CpG island in N
    for tf, centre in where:
        site = sites[(abs((sites["start"] + sites["end"]) // 2 - centre) < 25)]
        if tf == "NR3C1":
            assert site.empty
            continue
        assert site["tf"].tolist() == [tf] and site["cells"].tolist() == [EXPECTED_CELLS[tf]]
        centre_bin = (site["start"].iat[0] + site["end"].iat[0]) // 2 // 25
        for cell in compendium.cell_types:
            atac = compendium.means[(cell, "ATAC")]
            k27ac = compendium.means[(cell, "H3K27ac")]
            if cell in EXPECTED_CELLS[tf]:
                assert atac[centre_bin] > 0
                assert (k27ac[centre_bin] > 0) == (tf != "CTCF")  # CTCF: an insulator
            else:
                assert atac[centre_bin] == 0 and k27ac[centre_bin] == 0
    # nothing accessible further than a bump's reach (3 x 4 bins) from the planted sites
    reach = np.zeros(TOY.end // 25, dtype=bool)
    for _, centre in where:
        reach[max(0, centre // 25 - 13): centre // 25 + 14] = True
    for cell in compendium.cell_types:
        assert not compendium.means[(cell, "ATAC")][~reach].any()
        assert not compendium.means[(cell, "H3K4me3")].any()


def test_planted_consensus_sites_break_only_under_the_strongest_rule(toy):
    # each TF's weakest site here is its consensus match, so any substitution at the
    # motif's most needed base takes it above the cutoff (a break); under the random rule a
    # consensus match (p <= 3.8e-6) stays a match at p < 1e-4 with any one base changed,
    # so the rescan rejects every proposed break
    compendium, sequence, _ = toy
    kinds = compendium.variants["KIND"]
    assert (kinds == "break").sum() == TOY.n_variants // 2
    legacy = generate(sequence, replace(TOY, site_rule="random"), contig_length=TOY.end)
    assert (legacy.variants["KIND"] == "break").sum() == 0
    assert sorted(legacy.sites["tf"]) == sorted(compendium.sites["tf"])  # every match a site


def log_odds(motif_name: str, bases: str) -> float:
    """Best log2-odds score of the motif over ``bases`` on either strand (pseudocount 1e-4,
    uniform background), computed directly from the matrix."""
    pwm = jaspar_motifs([motif_name])[0].pwm
    table = np.log2(pwm + 1e-4) - np.log2(0.25)
    x = one_hot(bases)
    best = -np.inf
    for p in (table, table[::-1, ::-1]):
        for i in range(x.shape[1] - p.shape[1] + 1):
            best = max(best, float((p * x[:, i:i + p.shape[1]]).sum()))
    return best


def test_cpg_islands_by_hand():
    # a 1 kb CG repeat at 1000-2000 in A: 500 bp windows with >= 275 of its bases pass
    x = one_hot("A" * 1_000 + "CG" * 500 + "A" * 1_000)
    assert cpg_islands(x) == [(775, 2225)]
    assert cpg_islands(one_hot("G" * 600 + "C" * 600)) == []  # GC-rich, one CpG step
    assert cpg_islands(one_hot("A" * 400)) == []


def test_settings_are_checked():
    with pytest.raises(InputError, match="n_cell_types must be between 2 and 8"):
        replace(SequenceSpec(), n_cell_types=9).check()
    with pytest.raises(InputError, match="multiples of the bin size 25"):
        replace(SequenceSpec(), start=10).check()
    with pytest.raises(InputError, match="accessibility must be 'ATAC' or 'DNase'"):
        replace(SequenceSpec(), accessibility="MNase").check()
    with pytest.raises(InputError, match="peak_shares"):
        replace(SequenceSpec(), peak_shares=(0.5, 0.5, 0.5)).check()
    with pytest.raises(InputError, match="site_rule must be one of strongest, random"):
        replace(SequenceSpec(), site_rule="best").check()
    with pytest.raises(InputError, match="variant_gc must be one of any, balanced"):
        replace(SequenceSpec(), variant_gc="neutral").check()
    with pytest.raises(InputError, match="needs 22000 bases"):
        generate("ACGT", TOY, contig_length=TOY.end)


def real_window(start: int = 17_000_000, end: int = 18_000_000) -> tuple[str, SequenceSpec]:
    if not HG19.is_file():
        pytest.skip(f"{HG19} not found (../shared/data absent)")
    spec = SequenceSpec(n_cell_types=4, start=start, end=end, n_variants=12, seed=2)
    with open_genome(HG19) as genome:
        return genome.fetch("22", start, end), spec


@pytest.fixture(scope="module")
def real():
    sequence, spec = real_window()
    return generate(sequence, spec, contig_length=22_000_000), sequence, spec


@pytest.fixture(scope="module")
def balanced(real):
    _, sequence, spec = real
    return generate(sequence, replace(spec, variant_gc="balanced"), contig_length=22_000_000)


def track_digest(compendium) -> str:
    digest = hashlib.sha256()
    for key in sorted(compendium.signal):
        digest.update(compendium.signal[key].tobytes() + compendium.means[key].tobytes())
    return digest.hexdigest()


def gc_changes(variants: pd.DataFrame) -> np.ndarray:
    """+1 A/T to G/C, -1 G/C to A/T, 0 otherwise, from REF and ALT."""
    return np.array([(alt in "CG") - (ref in "CG") for ref, alt in
                     zip(variants["REF"], variants["ALT"])])


def test_balanced_variants_keep_the_tracks_and_balance_the_gc_change(real, balanced):
    compendium = real[0]
    assert track_digest(balanced) == track_digest(compendium)
    pd.testing.assert_frame_equal(balanced.sites, compendium.sites)
    pd.testing.assert_frame_equal(balanced.genes, compendium.genes)
    # the default substitutions change the GC content of most variants; the balanced
    # ones change it only in pairs of a break and a create
    default, even = gc_changes(compendium.variants), gc_changes(balanced.variants)
    even_kinds = balanced.variants["KIND"].to_numpy()
    assert (default != 0).sum() > len(default) / 2
    assert set(even_kinds) == {"break", "create"} and len(balanced.variants) >= 8
    for sign in (-1, 1):  # only in pairs of a break and a create
        assert (even[even_kinds == "break"] == sign).sum() == \
            (even[even_kinds == "create"] == sign).sum()
    assert (even == 0).sum() > len(even) / 2


def test_real_slice_is_deterministic_given_the_seed(real):
    compendium, sequence, spec = real
    again = generate(sequence, spec, contig_length=22_000_000)
    other = generate(sequence, replace(spec, seed=3), contig_length=22_000_000)
    for key, values in compendium.signal.items():
        np.testing.assert_array_equal(values, again.signal[key])
    pd.testing.assert_frame_equal(compendium.sites, again.sites)
    pd.testing.assert_frame_equal(compendium.variants, again.variants)
    assert not compendium.sites["start"].equals(other.sites["start"])


def test_real_slice_peak_shares_follow_the_spec(real):
    compendium, _, spec = real
    sites = compendium.sites
    total = len(sites)
    assert total == round(spec.sites_per_mb * (spec.end - spec.start) / 1e6)
    n_cells = [len(c.split(",")) for c in sites["cells"]]
    counts = pd.Series(n_cells).groupby(sites["role"].to_numpy()).agg(["min", "max", "size"])
    # 4 cell types, 2 lineages of 2: ubiquitous sites open in 4, lineage in 2, specific in 1;
    # 150 sites x (0.3, 0.35, 0.35) = 45, 52.5, 52.5: the extra site goes to the first .5
    assert total == 150
    assert counts.loc["ubiquitous"].tolist() == [4, 4, 45]
    assert counts.loc["lineage"].tolist() == [2, 2, 53]
    assert counts.loc["specific"].tolist() == [1, 1, 52]
    gaps = np.diff(np.sort(((sites["start"] + sites["end"]) // 2).to_numpy()))
    assert gaps.min() >= spec.min_spacing


def test_real_slice_accessibility_is_at_sites_and_active_promoters(real):
    compendium, _, spec = real
    sites, genes = compendium.sites, compendium.genes
    assert len(genes) > 0
    for cell in compendium.cell_types:
        atac = compendium.means[(cell, "ATAC")]
        allowed = np.zeros(atac.size, dtype=bool)
        open_sites = sites[[cell in c.split(",") for c in sites["cells"]]]
        for centre in ((open_sites["start"] + open_sites["end"]) // 2 - spec.start) // 25:
            allowed[max(0, centre - 12): centre + 13] = True
            assert atac[centre] > 0
        active = genes[[cell in c.split(",") for c in genes["cells"]]]
        for tss in (active["tss"] - spec.start) // 25:
            allowed[max(0, tss - 18): tss + 19] = True
            assert compendium.means[(cell, "H3K4me3")][tss] > 0
        assert not atac[~allowed].any()
        closed = sites[~sites.index.isin(open_sites.index)]
        assert not atac[((closed["start"] + closed["end"]) // 2 - spec.start) // 25].any()


def _matches(sequence: str, spec: SequenceSpec) -> pd.DataFrame:
    """Every match at p < site_p of the TFs active somewhere, in window coordinates."""
    names = sorted(set().union(*spec.active()))
    return scan(jaspar_motifs(names), one_hot(sequence), threshold=spec.site_p)


def test_real_slice_sites_are_each_tfs_strongest_matches(real):
    compendium, sequence, spec = real
    sites = compendium.sites.assign(start=compendium.sites["start"] - spec.start)
    sites = sites.assign(centre=(sites["start"] + sites["end"]) // 2)
    cutoff = sites.groupby("tf")["p_value"].max()
    # a role's sites are split evenly among its TFs
    for _, group in sites.groupby("role"):
        sizes = group["tf"].value_counts()
        assert sizes.max() - sizes.min() <= 1
    # every unused match stronger than its TF's weakest site lost to a match at least as
    # strong within min_spacing, or lies within min_spacing of a promoter
    matches = _matches(sequence, spec)
    matches = matches.assign(centre=(matches["start"] + matches["end"]) // 2)
    islands = cpg_islands(one_hot(sequence))
    used = set(zip(sites["start"], sites["tf"]))
    stronger = matches[matches["p_value"] < matches["tf"].map(cutoff)]
    assert len(stronger) > len(sites)  # the rule has something to choose from
    for m in stronger.itertuples(index=False):
        if (m.start, m.tf) in used:
            continue
        near = matches[(matches["centre"] - m.centre).abs() < spec.min_spacing]
        beaten = ((near["p_value"] <= m.p_value) & (near["start"] != m.start)).any()
        promoter = any(a - spec.min_spacing < m.centre < b + spec.min_spacing
                       for a, b in islands)
        assert beaten or promoter, m
    # heights: 10 (1 + decades below the cutoff, at most 3) times a factor in 0.8-1.25
    strength = np.clip(np.log10(sites["tf"].map(cutoff) / sites["p_value"]), 0, 3)
    factor = sites["height"] / (10 * (1 + strength))
    assert factor.between(0.8, 1.25).all()
    assert np.corrcoef(strength, sites["height"])[0, 1] > 0.7


def test_even_quotas_by_hand():
    assert even_quotas({"a": 10, "b": 10, "c": 10}, 8) == {"a": 3, "b": 3, "c": 2}
    assert even_quotas({"a": 1, "b": 10, "c": 10}, 9) == {"a": 1, "b": 4, "c": 4}
    assert even_quotas({"a": 1, "b": 2}, 9) == {"a": 1, "b": 2}


@pytest.mark.parametrize("variant_gc", ["any", "balanced"])
def test_real_slice_variants_cross_the_site_rule(real, balanced, variant_gc):
    # rescan both alleles of each variant's motif window: a break takes its TF's best match
    # above the TF's cutoff (the weakest site's p-value), a create takes it below
    _, sequence, spec = real
    compendium = real[0] if variant_gc == "any" else balanced
    cutoff = compendium.sites.groupby("tf")["p_value"].max()
    motifs = {m.name: m for m in jaspar_motifs(sorted(set(compendium.variants["TF"])))}
    for v in compendium.variants.itertuples(index=False):
        lo, hi = v.SITE_START - spec.start, v.SITE_END - spec.start
        ref = sequence[lo:hi].upper()
        alt = ref[: v.POS - 1 - v.SITE_START] + v.ALT + ref[v.POS - v.SITE_START:]
        best = []
        for allele in (ref, alt):
            hits = scan([motifs[v.TF]], one_hot(allele), threshold=spec.site_p)
            best.append(hits["p_value"].min() if len(hits) else 1.0)
        if v.KIND == "break":
            assert best[0] <= cutoff[v.TF] < best[1]
        else:
            assert best[0] > cutoff[v.TF] > best[1]


def test_random_rule_keeps_heights_independent_of_the_match(real):
    _, sequence, spec = real
    legacy = generate(sequence, replace(spec, site_rule="random"), contig_length=22_000_000)
    sites = legacy.sites
    cutoff = sites.groupby("tf")["p_value"].max()
    strength = np.log10(sites["tf"].map(cutoff) / sites["p_value"])
    assert abs(np.corrcoef(strength, sites["height"])[0, 1]) < 0.2
    assert len(sites) == round(spec.sites_per_mb * (spec.end - spec.start) / 1e6)
    # drawn at random: some match stronger than a TF's weakest site is left unused
    assert (sites["p_value"] < sites["tf"].map(cutoff)).sum() < len(sites) - sites["tf"].nunique()


def test_real_slice_variants_have_the_planted_sign(real):
    compendium, sequence, spec = real
    variants = compendium.variants
    assert set(variants["KIND"]) == {"break", "create"}
    active = dict(zip([f"cell{i + 1}" for i in range(spec.n_cell_types)], spec.active()))
    for v in variants.itertuples(index=False):
        assert sequence[v.POS - 1 - spec.start].upper() == v.REF != v.ALT
        assert v.SITE_START <= v.POS - 1 < v.SITE_END
        sign = -1 if v.KIND == "break" else 1
        lo, hi = v.SITE_START - spec.start, v.SITE_END - spec.start
        ref = sequence[lo:hi].upper()
        alt = ref[: v.POS - 1 - v.SITE_START] + v.ALT + ref[v.POS - v.SITE_START:]
        assert sign * (log_odds(v.TF, alt) - log_odds(v.TF, ref)) > 0
        for cell, tfs in active.items():
            row = variants[variants["ID"] == v.ID]
            atac, k4me3 = row[f"{cell}:ATAC"].iat[0], row[f"{cell}:H3K4me3"].iat[0]
            assert (sign * atac > 0) if v.TF in tfs else (atac == 0)
            assert k4me3 == 0
            if v.TF != "CTCF" and v.TF in tfs:
                assert sign * row[f"{cell}:H3K27ac"].iat[0] > 0


def test_command_writes_the_store_and_truth(tmp_path):
    sequence, spec = real_window(17_000_000, 17_250_000)
    out = tmp_path / "seq.zarr"
    code = main(["-q", "synth-sequence", "--genome", str(HG19), "--out", str(out),
                 "--cell-types", "3", "--seed", "4", "--start", "17000000", "--end", "17250000",
                 "--accessibility", "DNase"])
    assert code == 0
    store = Store.open(out)
    assert store.contigs == {"22": 22_000_000} and store.bin_size == 25
    assert [t.key for t in store.tracks][:2] == ["cell1:DNase", "cell1:H3K4me3"]
    truth = generate(sequence, replace(spec, n_cell_types=3, seed=4, n_variants=40,
                                       accessibility="DNase"),
                     contig_length=22_000_000)
    row = [t.key for t in store.tracks].index("cell2:H3K27ac")
    values = store.read("22", 0, 22_000_000 // 25, tracks=[row])[0]
    window = slice(17_000_000 // 25, 17_250_000 // 25)
    np.testing.assert_allclose(values[window], np.arcsinh(truth.signal[("cell2", "H3K27ac")]),
                               rtol=1e-6)
    assert not values[: window.start].any() and not values[window.stop:].any()
    variants = pd.read_csv(out / "truth" / "variants.tsv", sep="\t")
    assert variants["ID"].tolist() == truth.variants["ID"].tolist()
    np.testing.assert_allclose(variants["cell1:DNase"], truth.variants["cell1:DNase"], rtol=1e-5)
    assert main(["-q", "synth-sequence", "--genome", str(HG19), "--out", str(out)]) == 2


def test_command_site_rule_random_is_the_random_grammar(tmp_path):
    sequence, spec = real_window(17_000_000, 17_250_000)
    out = tmp_path / "legacy.zarr"
    assert main(["-q", "synth-sequence", "--genome", str(HG19), "--out", str(out),
                 "--cell-types", "3", "--start", "17000000", "--end", "17250000",
                 "--site-rule", "random"]) == 0
    expected = generate(sequence, replace(spec, n_cell_types=3, seed=0, n_variants=40,
                                          site_rule="random"), contig_length=22_000_000)
    sites = pd.read_csv(out / "truth" / "sites.tsv", sep="\t")
    assert sites["start"].tolist() == expected.sites["start"].tolist()
    np.testing.assert_allclose(sites["height"], expected.sites["height"], rtol=1e-5)


def test_command_variant_gc_balanced_changes_only_the_variants(tmp_path):
    sequence, spec = real_window(17_000_000, 17_250_000)
    stores = {}
    for name in ("any", "balanced"):
        stores[name] = tmp_path / f"{name}.zarr"
        assert main(["-q", "synth-sequence", "--genome", str(HG19), "--out",
                     str(stores[name]), "--cell-types", "3", "--start", "17000000", "--end",
                     "17250000", "--variant-gc", name]) == 0
    tracks = [Store.open(stores[n]).read("22", 17_000_000 // 25, 17_250_000 // 25)
              for n in stores]
    np.testing.assert_array_equal(tracks[0], tracks[1])
    expected = generate(sequence, replace(spec, n_cell_types=3, seed=0, n_variants=40,
                                          variant_gc="balanced"), contig_length=22_000_000)
    written = pd.read_csv(stores["balanced"] / "truth" / "variants.tsv", sep="\t")
    assert written[["POS", "REF", "ALT", "KIND"]].values.tolist() == \
        expected.variants[["POS", "REF", "ALT", "KIND"]].values.tolist()
