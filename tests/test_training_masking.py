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


def test_tracks_that_are_not_targetable_are_never_hidden():
    targetable = torch.tensor([True, False, True, True, False, True])
    g = torch.Generator().manual_seed(3)
    masks = sample_masks(400, 6, max_masked=4, generator=g, targetable=targetable,
                         track_biosample=torch.tensor([0, 0, 1, 1, 2, 2]),
                         biosample_probability=0.5)
    assert masks.available[:, ~targetable].all()
    assert (~masks.available).sum(1).min() >= 0
    assert not masks.available[:, targetable].all()
