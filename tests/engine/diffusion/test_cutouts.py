"""Cut counts, sizes and randomness at several points of DD's default schedules."""
import pytest
import torch

from engine.diffusion import cutouts
from engine.diffusion.cutouts import make_cutouts, random_affine, rotate_hue
from engine.diffusion.rng import Generators
from engine.diffusion.schedule import make_schedule
from engine.spec.render import CutStep
from engine.spec.schedules import parse_schedule, schedule_index

OVERVIEW = parse_schedule("[12]*400+[4]*600", param="cut_overview", integer=True)
INNER = parse_schedule("[4]*400+[12]*600", param="cut_innercut", integer=True)


@pytest.mark.parametrize("steps,i,expected", [(250, 249, (12, 4)), (250, 150, (12, 4)),
                                              (250, 149, (4, 12)), (250, 0, (4, 12)),
                                              (50, 49, (12, 4)), (50, 30, (12, 4)),
                                              (50, 29, (4, 12))])
def test_default_schedule_positions(steps, i, expected):
    schedule = make_schedule(steps)
    k = schedule_index(schedule.t_int(i))
    assert (OVERVIEW[k], INNER[k]) == expected


@pytest.mark.parametrize("overview,inner", [(0, 5), (1, 0), (3, 2), (4, 12), (6, 1)])
def test_cut_count_and_size(overview, inner):
    image = torch.rand(1, 3, 48, 80)
    cuts = make_cutouts(image, 32, CutStep(overview, inner, 1.0, 0.0), Generators.seeded(0, "cpu"))
    assert cuts.shape == (overview + inner, 3, 32, 32)


def test_inner_cut_sizes_follow_ic_pow(monkeypatch):
    seen = []
    real_resize = cutouts.resize
    monkeypatch.setattr(cutouts, "resize", lambda x, size: seen.append(x.shape[-1]) or real_resize(x, size))
    image = torch.rand(1, 3, 128, 192)
    make_cutouts(image, 32, CutStep(0, 200, 8.0, 0.0), Generators.seeded(1, "cpu"), skip_augs=True)
    big_pow = sum(seen) / len(seen)
    seen.clear()
    make_cutouts(image, 32, CutStep(0, 200, 0.5, 0.0), Generators.seeded(1, "cpu"), skip_augs=True)
    small_pow = sum(seen) / len(seen)
    assert all(32 <= s <= 128 for s in seen)
    assert big_pow < 50 < small_pow  # a high power keeps cuts near CLIP's size: fine detail


@pytest.mark.parametrize("p,n,grey", [(0.0, 4, 0), (0.2, 4, 1), (0.2, 12, 3), (0.5, 4, 2), (1.0, 3, 3)])
def test_grey_inner_cut_count(p, n, grey):
    image = torch.zeros(1, 3, 64, 64)
    image[:, 0] = 1.0  # pure red: a grey cut has equal channels
    cuts = make_cutouts(image, 32, CutStep(0, n, 1.0, p), Generators.seeded(0, "cpu"), skip_augs=True)
    greyed = [bool(torch.allclose(c[0], c[1], atol=1e-4)) for c in cuts]
    assert sum(greyed) == grey


def test_overview_variants_in_dd_order():
    image = torch.rand(1, 3, 32, 32)
    cuts = make_cutouts(image, 32, CutStep(4, 0, 1.0, 0.0), Generators.seeded(0, "cpu"), skip_augs=True)
    assert torch.allclose(cuts[0], image[0], atol=1e-5)
    assert torch.allclose(cuts[2], image[0].flip(-1), atol=1e-5)
    assert torch.allclose(cuts[1][0], cuts[1][1]) and torch.allclose(cuts[3], cuts[1].flip(-1), atol=1e-5)


def test_augmentations_are_drawn_per_cut_and_reproducible():
    image = torch.rand(1, 3, 64, 64)
    plan = CutStep(5, 0, 1.0, 0.0)  # >4 overview cuts are identical copies before augmentation
    a = make_cutouts(image, 32, plan, Generators.seeded(7, "cpu"))
    b = make_cutouts(image, 32, plan, Generators.seeded(7, "cpu"))
    assert torch.equal(a, b)
    assert all(not torch.allclose(a[0], a[k], atol=1e-3) for k in range(1, 5))


def test_affine_integer_shift_is_exact():
    x = torch.rand(1, 3, 16, 16)
    gens = Generators.seeded(0, "cpu")
    shifted = cutouts._affine(x, torch.tensor([0.0]), torch.tensor([3.0]), torch.tensor([-2.0]))
    assert torch.allclose(shifted[..., 2:14, 3:16], x[..., 4:16, 0:13], atol=1e-5)
    assert random_affine(x, gens, degrees=0.0, translate=0.0).allclose(x, atol=1e-5)


def test_hue_rotation_keeps_grey_and_turns_back():
    grey = torch.full((1, 3, 4, 4), 0.4)
    assert torch.allclose(rotate_hue(grey, torch.tensor([0.3])), grey, atol=1e-5)
    colour = torch.rand(1, 3, 4, 4)
    there = rotate_hue(colour, torch.tensor([0.2]))
    assert not torch.allclose(there, colour, atol=1e-3)
    assert torch.allclose(rotate_hue(there, torch.tensor([-0.2])), colour, atol=1e-4)
