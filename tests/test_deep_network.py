"""Augmentation ops vs torch.flip / torch.rot90 / a hand shift; network shapes, features, weights."""

import itertools

import numpy as np
import pytest
import torch

from studyrunner.deep.augmentation import (
    AugmentationDraw,
    _same_device,
    apply_augmentation,
    augment_batch,
    draw_augmentation,
)
from studyrunner.deep.network import DualTaskNetwork, NetworkConfig, SurvivalNetwork
from studyrunner.deep.weights import load_weights, save_weights
from studyrunner.errors import InputError

torch.set_num_threads(1)

TINY = NetworkConfig(block_layers=(1, 1, 1, 1), growth_rate=4, initial_features=8, bottleneck_width=2,
                     hidden_units=6, stem_kernel=3)


def _draw(b, flips=None, k=None, shifts=None):
    return AugmentationDraw(
        flips=torch.zeros((b, 3), dtype=torch.bool) if flips is None else torch.tensor(flips, dtype=torch.bool),
        k=torch.zeros(b, dtype=torch.long) if k is None else torch.tensor(k),
        shifts=torch.zeros((b, 3), dtype=torch.long) if shifts is None else torch.tensor(shifts),
    )


def _batch(b=3, d=4, h=5, w=5):
    return torch.arange(b * d * h * w, dtype=torch.float32).reshape(b, 1, d, h, w) + 1.0


def _hand_shift(v: np.ndarray, shift, fill):
    """v [D, H, W]; out[p] = v[p - shift] where inside, else fill (loops, no numpy rolling)."""
    out = np.full_like(v, fill)
    d, h, w = v.shape
    for i, j, k in itertools.product(range(d), range(h), range(w)):
        si, sj, sk = i - shift[0], j - shift[1], k - shift[2]
        if 0 <= si < d and 0 <= sj < h and 0 <= sk < w:
            out[i, j, k] = v[si, sj, sk]
    return out


@pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 2), (0, 1, 2)])
def test_flip_equals_torch_flip(axes):
    x = _batch()
    flags = [[a in axes for a in range(3)], [False] * 3, [a in axes for a in range(3)]]
    y = apply_augmentation(x, _draw(3, flips=flags))
    dims = [a + 2 for a in axes]
    assert torch.equal(y[0], torch.flip(x[0:1], dims=dims)[0])
    assert torch.equal(y[1], x[1])
    assert torch.equal(y[2], torch.flip(x[2:3], dims=dims)[0])


def test_rotation_equals_torch_rot90():
    x = _batch(b=4)
    y = apply_augmentation(x, _draw(4, k=[0, 1, 2, 3]))
    for i in range(4):
        assert torch.equal(y[i], torch.rot90(x[i], k=i, dims=(-2, -1)))


def test_shift_fills_with_the_sample_minimum():
    x = _batch(b=2)
    x[1, 0, 2, 2, 2] = -7.0  # sample 1's minimum
    shifts = [[1, -2, 0], [-1, 2, 3]]
    y = apply_augmentation(x, _draw(2, shifts=shifts))
    for i in range(2):
        v = x[i, 0].numpy()
        np.testing.assert_array_equal(y[i, 0].numpy(), _hand_shift(v, shifts[i], v.min()))


def test_composition_is_shift_of_rot90_of_flip():
    x = _batch(b=2, d=3, h=4, w=4)
    draw = _draw(2, flips=[[True, False, True], [False, True, True]], k=[1, 3], shifts=[[0, 1, -1], [1, -1, 2]])
    y = apply_augmentation(x, draw)
    for i in range(2):
        dims = [a + 1 for a in range(3) if draw.flips[i, a]]
        v = torch.flip(x[i], dims=dims) if dims else x[i]
        v = torch.rot90(v, k=int(draw.k[i]), dims=(-2, -1))[0].numpy()
        np.testing.assert_array_equal(y[i, 0].numpy(), _hand_shift(v, draw.shifts[i].tolist(), float(x[i].min())))
    # every channel of a sample moves the same way; the fill is the minimum over all channels
    y2 = apply_augmentation(torch.cat([x, 2 * x], dim=1), draw)
    assert torch.equal(y2[:, :1], y)
    moved = torch.stack([torch.from_numpy(_hand_shift(np.ones((3, 4, 4), np.float32), draw.shifts[i].tolist(), 0.0))
                         for i in range(2)])[:, None] == 1  # voxels that come from inside the volume
    assert torch.equal(y2[:, 1:][moved], 2 * y[moved])
    assert torch.equal(y2[:, 1:][~moved], y[~moved])


def test_augment_batch_is_seeded_and_keeps_values():
    x = torch.randn(6, 1, 5, 6, 6)
    g1, g2, g3 = (torch.Generator().manual_seed(s) for s in (11, 11, 12))
    a = augment_batch(x, g1, max_shift=2)
    b = augment_batch(x, g2, max_shift=2)
    c = augment_batch(x, g3, max_shift=2)
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # same draws as draw_augmentation + apply_augmentation with the same seed
    draw = draw_augmentation(x.shape, torch.Generator().manual_seed(11), max_shift=2)
    assert torch.equal(a, apply_augmentation(x, draw))
    assert draw.flips.any()
    assert (draw.k != 0).any()
    assert (draw.shifts != 0).any()
    assert int(draw.shifts.abs().max()) <= 2
    for i in range(6):
        src = set(x[i].flatten().tolist())
        got = a[i].flatten().tolist()
        fill = float(x[i].min())
        assert set(got) <= src  # values are input values (moved) or the minimum
        n_fill_expected = x[i].numel() - int(
            np.prod([n - abs(int(s)) for n, s in zip(x.shape[2:], draw.shifts[i], strict=True)]))
        n_fill = sum(v == fill for v in got)
        assert n_fill_expected <= n_fill <= n_fill_expected + 1  # + the minimum voxel, if kept in view
        moved = [v for v in got if v != fill]
        assert len(moved) == len(set(moved))  # a sub-box of distinct input values, none repeated
    # switching rotations off keeps flips and shifts draws
    no_rot = draw_augmentation(x.shape, torch.Generator().manual_seed(11), max_shift=2, rotations=False)
    assert torch.equal(no_rot.flips, draw.flips)
    assert torch.equal(no_rot.shifts, draw.shifts)
    assert (no_rot.k == 0).all()
    # non-square axial plane: never rotated
    assert (draw_augmentation((6, 1, 5, 6, 7), torch.Generator().manual_seed(11), max_shift=1).k == 0).all()


def test_augment_batch_wants_the_generator_on_the_batch_device():
    assert _same_device(torch.device("cpu"), torch.device("cpu"))
    assert not _same_device(torch.device("cuda"), torch.device("cpu"))
    if torch.cuda.is_available():
        with pytest.raises(InputError, match="generator is on"):
            augment_batch(torch.zeros(1, 1, 2, 2, 2), torch.Generator(device="cuda"), max_shift=0)
        assert _same_device(torch.device("cuda"), torch.device("cuda", torch.cuda.current_device()))


def test_feature_count_formula():
    # hand arithmetic: 8 + 4 = 12 -> 6; 6 + 4 = 10 -> 5; 5 + 4 = 9 -> 4; 4 + 4 = 8
    assert TINY.channel_plan() == [(8, 12), (6, 10), (5, 9), (4, 8)]
    assert TINY.n_deep_features == 8
    # the nsclc_ici paper reports 508 deep features: the defaults reproduce it
    # 32 + 6*32 = 224 -> 112; 112 + 384 = 496 -> 248; 248 + 384 = 632 -> 316; 316 + 192 = 508
    assert NetworkConfig().n_deep_features == 508
    # growth 16: 32 + 96 = 128 -> 64; 64 + 192 = 256 -> 128; 128 + 192 = 320 -> 160; 160 + 96 = 256
    assert NetworkConfig(growth_rate=16).n_deep_features == 256
    with pytest.raises(InputError, match="block_layers"):
        NetworkConfig(block_layers=())


def test_shapes_gradcam_layer_and_gradients():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 24, 24, 24)
    net = SurvivalNetwork(TINY)
    dual = DualTaskNetwork(TINY)
    maps = {}
    handle = net.gradcam_layer.register_forward_hook(lambda m, i, o: maps.setdefault("a", o))
    scores = net(x)
    handle.remove()
    assert scores.shape == (2, 3)
    assert dual(x).shape == (2, 2)
    assert net.n_deep_features == dual.n_deep_features == 8
    a = maps["a"]
    assert a.dim() == 5
    assert a.shape[:2] == (2, 8)
    # the deep features are the global average of the Grad-CAM layer's activation
    torch.testing.assert_close(net.features(x), a.mean(dim=(2, 3, 4)))
    scores.sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # channels-last-3d gives the same outputs
    net.eval()
    ref = net(x)
    net_cl = net.to(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(net_cl(x.contiguous(memory_format=torch.channels_last_3d)), ref, rtol=1e-4, atol=1e-5)


def test_weights_round_trip_is_bit_identical(tmp_path):
    torch.manual_seed(1)
    x = torch.randn(2, 1, 24, 24, 24)
    a = DualTaskNetwork(TINY)
    a.train()
    a(x)  # update the BatchNorm running statistics
    a.eval()
    save_weights(a, tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz", allow_pickle=False) as z:
        assert set(z.files) == set(a.state_dict())
    torch.manual_seed(2)
    b = load_weights(DualTaskNetwork(TINY), tmp_path / "w.npz").eval()
    assert torch.equal(a(x), b(x))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    with pytest.raises(InputError, match="keys do not match"):
        load_weights(SurvivalNetwork(NetworkConfig(block_layers=(1, 1), growth_rate=4, initial_features=8)),
                     tmp_path / "w.npz")
    with pytest.raises(InputError, match="shape"):
        load_weights(SurvivalNetwork(TINY), tmp_path / "w.npz")


def test_gradcam_layer_is_the_deepest_map_with_spatial_extent():
    """41 voxels: stem 21, pool 11, block 1 at 11, block 2 at 6, block 3 at 3, block 4 at 2
    (transitions pool with ceil): with min_size 4 the map is block 2's; 82 voxels: block 3
    at 6 (checked against a forward pass through the body, module by module)."""
    import torch

    from studyrunner.deep.network import NetworkConfig, SurvivalNetwork

    torch.manual_seed(0)
    model = SurvivalNetwork(NetworkConfig(block_layers=(1, 1, 1, 1), growth_rate=4, initial_features=8,
                                          hidden_units=8), 3)
    blocks = [m for m in model.backbone.body if type(m) is torch.nn.Sequential]
    model.eval()
    sizes, out = {}, torch.zeros(1, 1, 41, 41, 41)
    with torch.no_grad():
        for module in model.backbone.body:
            out = module(out)
            if module in blocks:
                sizes[blocks.index(module) + 1] = tuple(out.shape[2:])
    assert sizes == {1: (11,) * 3, 2: (6,) * 3, 3: (3,) * 3, 4: (2,) * 3}
    model.train()
    name, layer = model.gradcam_layer_for((41, 41, 41), min_size=4)
    assert (name, layer) == ("dense block 2", blocks[1])
    assert model.gradcam_layer_for((82, 82, 82), min_size=4)[0] == "dense block 3"
    assert model.gradcam_layer_for((41, 41, 41), min_size=2)[0] == "final"
    assert model.training  # the probe leaves the mode as it was
