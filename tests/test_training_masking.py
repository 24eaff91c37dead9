import numpy as np
import torch

from epimpute.training.masking import sample_masks


def test_random_masks_hide_between_one_and_max_tracks():
    g = torch.Generator().manual_seed(0)
    masks = sample_masks(500, 10, max_masked=3, generator=g)
    hidden = (~masks.available).sum(1)
    assert hidden.min() >= 1 and hidden.max() <= 3
    assert set(hidden.tolist()) == {1, 2, 3}
    # targets (where valid) are exactly the hidden tracks, without repeats
    for row in range(500):
        chosen = masks.targets[row][masks.valid[row]].tolist()
        assert len(set(chosen)) == len(chosen)
        assert sorted(chosen) == torch.nonzero(~masks.available[row]).flatten().tolist()


def test_at_least_one_track_stays_available():
    g = torch.Generator().manual_seed(1)
    masks = sample_masks(200, 3, max_masked=10, generator=g)
    assert masks.available.sum(1).min() >= 1


def test_whole_biosample_masking_hides_exactly_one_biosample():
    track_biosample = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    g = torch.Generator().manual_seed(2)
    masks = sample_masks(300, 8, max_masked=1, generator=g, track_biosample=track_biosample,
                         biosample_probability=1.0)
    for row in range(300):
        hidden = torch.nonzero(~masks.available[row]).flatten()
        owners = track_biosample[hidden].unique()
        assert len(owners) == 1
        assert len(hidden) == int((track_biosample == owners[0]).sum())
        assert sorted(masks.targets[row][masks.valid[row]].tolist()) == hidden.tolist()


def test_same_generator_seed_same_masks():
    a = sample_masks(50, 6, max_masked=2, generator=torch.Generator().manual_seed(5))
    b = sample_masks(50, 6, max_masked=2, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_held_out_tracks_span_distinct_biosamples_and_assays():
    from epimpute.training.masking import choose_validation_tracks

    tracks = [(b, a) for b in range(5) for a in range(5) if (b, a) != (0, 0)]
    chosen = choose_validation_tracks(tracks, 4, np.random.default_rng(0))
    picked = [tracks[i] for i in chosen]
    assert len(chosen) == 4
    assert len({b for b, _ in picked}) == 4 and len({a for _, a in picked}) == 4
    # every biosample and assay keeps at least two tracks that are not held out
    for seed in range(20):
        chosen = set(choose_validation_tracks(tracks, 5, np.random.default_rng(seed)))
        kept = [t for i, t in enumerate(tracks) if i not in chosen]
        for axis in (0, 1):
            counts = np.bincount([t[axis] for t in kept], minlength=5)
            assert counts.min() >= 2
    # biosample 3 has only two tracks: neither can be held out
    few = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2),
           (3, 0), (3, 1)]
    for seed in range(20):
        assert not {9, 10} & set(choose_validation_tracks(few, 3, np.random.default_rng(seed)))


def test_context_draws_whole_biosamples_and_masks_stay_inside_it():
    from epimpute.training.masking import draw_context, widen_masks

    track_biosample = torch.tensor([0, 0, 1, 2, 2, 2, 4, 4])  # biosample 3 has no track
    generator = torch.Generator().manual_seed(0)
    assert draw_context(track_biosample, 4, generator) is None
    seen = set()
    for _ in range(30):
        context = draw_context(track_biosample, 2, generator)
        biosamples = set(track_biosample[context].tolist())
        assert len(biosamples) == 2 and 3 not in biosamples
        # every track of a drawn biosample is in
        assert set(context.tolist()) == {i for i, b in enumerate(track_biosample.tolist())
                                         if b in biosamples}
        seen |= {tuple(sorted(biosamples))}
        masks = sample_masks(6, len(context), max_masked=2, generator=generator)
        wide = widen_masks(masks, context, len(track_biosample))
        outside = torch.ones(len(track_biosample), dtype=torch.bool)
        outside[context] = False
        assert not wide.available[:, outside].any()
        assert set(wide.targets.reshape(-1).tolist()) <= set(context.tolist())
        for i in range(6):
            hidden = wide.targets[i][wide.valid[i]]
            assert not wide.available[i, hidden].any()
            assert int(wide.available[i].sum()) == len(context) - len(hidden)
    assert len(seen) == 6  # every pair of the 4 biosamples with tracks comes up
