"""3D Grad-CAM vs maps derived by hand for linear networks; 3D SSIM vs explicit loops; Spearman vs ranks."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from studyrunner.deep.gradcam import grad_cam_3d
from studyrunner.deep.similarity import spearman_table, ssim_3d
from studyrunner.errors import InputError

torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------
# Grad-CAM
# ---------------------------------------------------------------------------------------


def _pool_net(conv: torch.nn.Conv3d, n_out: int, relu: bool = False, dropout: bool = False, inplace=False):
    """conv -> identity (the Grad-CAM layer) [-> ReLU] -> global average pool [-> dropout] -> linear."""
    layers = [conv, torch.nn.Identity()]
    if relu:
        layers.append(torch.nn.ReLU(inplace=inplace))
    layers += [torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten()]
    if dropout:
        layers.append(torch.nn.Dropout(p=0.5))
    layers.append(torch.nn.Linear(conv.out_channels, n_out))
    return torch.nn.Sequential(*layers).double()


def _hand_cam(acts: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """ReLU(sum_k alpha[b, k] A[b, k]) with explicit loops over samples and channels."""
    out = np.zeros((acts.shape[0], *acts.shape[2:]))
    for b in range(acts.shape[0]):
        for k in range(acts.shape[1]):
            out[b] += alpha[b, k] * acts[b, k]
    return np.maximum(out, 0.0)


@pytest.fixture
def k1_net():
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(1, 4, kernel_size=1, bias=False)
    net = _pool_net(conv, n_out=3, dropout=True)
    x = torch.randn(2, 1, 4, 5, 3, dtype=torch.float64)
    return net, x


def _k1_acts(net, x):
    w = net[0].weight.detach().numpy()[:, 0, 0, 0, 0]  # [C]
    return w[None, :, None, None, None] * x.numpy()  # A_k = w_k x


def test_gradcam_k1_conv_matches_hand_map(k1_net):
    net, x = k1_net
    acts = _k1_acts(net, x)
    lin = net[-1].weight.detach().numpy()  # [3, C]
    dhw = 4 * 5 * 3
    net.train()  # dropout would randomise the output unless grad_cam_3d switches to eval
    for j in range(3):
        # y_j = sum_k W[j, k] mean(A_k) + b_j  ->  dy/dA_k = W[j, k] / dhw everywhere
        alpha = np.tile(lin[j] / dhw, (2, 1))
        hand = _hand_cam(acts, alpha)
        raw = grad_cam_3d(net, net[1], x, j, normalise=False)
        assert raw.dtype == np.float32
        assert raw.shape == (2, 4, 5, 3)
        np.testing.assert_allclose(raw, hand, rtol=1e-6, atol=1e-9)
        norm = grad_cam_3d(net, net[1], x, j)
        for b in range(2):
            expected = hand[b] / hand[b].max() if hand[b].max() > 0 else hand[b]
            np.testing.assert_allclose(norm[b], expected, rtol=1e-6, atol=1e-7)
            assert norm[b].min() >= 0
            assert norm[b].max() == pytest.approx(1.0)
    assert net.training
    assert net[-2].training  # training state restored everywhere


def test_gradcam_callable_target_is_linear_combination(k1_net):
    net, x = k1_net
    beta = torch.tensor([0.7, -1.2, 0.4], dtype=torch.float64)  # e.g. Cox coefficients (OSRS)
    acts = _k1_acts(net, x)
    lin = net[-1].weight.detach().numpy()
    alpha = np.tile(beta.numpy() @ lin / 60.0, (2, 1))
    raw = grad_cam_3d(net, net[1], x, lambda s: s @ beta, normalise=False)
    np.testing.assert_allclose(raw, _hand_cam(acts, alpha), rtol=1e-6, atol=1e-9)
    # a [B, 1] target and a negative column index are accepted too
    raw2 = grad_cam_3d(net, net[1], x, lambda s: (s @ beta)[:, None], normalise=False)
    np.testing.assert_array_equal(raw, raw2)
    np.testing.assert_array_equal(
        grad_cam_3d(net, net[1], x, -1, normalise=False), grad_cam_3d(net, net[1], x, 2, normalise=False)
    )


def test_gradcam_stride2_layer_upsampled_with_relu_masked_gradient():
    torch.manual_seed(1)
    conv = torch.nn.Conv3d(1, 3, kernel_size=2, stride=2, bias=False)
    net = _pool_net(conv, n_out=2, relu=True)
    x = torch.randn(2, 1, 6, 4, 8, dtype=torch.float64)
    w = conv.weight.detach().numpy()[:, 0]  # [C, 2, 2, 2]
    xb = x.numpy()[:, 0].reshape(2, 3, 2, 2, 2, 4, 2)  # [B, d, 2, h, 2, w, 2]
    acts = np.einsum("kpqr,bipjqlr->bkijl", w, xb)  # A_k = stride-2 conv, by hand: [B, C, 3, 2, 4]
    lin = net[-1].weight.detach().numpy()
    n = 3 * 2 * 4
    # y = sum_k W[j, k] mean(ReLU(A_k)) -> dy/dA_k[v] = W[j, k] / n * 1[A_k[v] > 0],
    # alpha_k = mean_v of that = W[j, k] * (number of positive voxels of A_k) / n^2
    alpha = lin[1][None, :] * (acts > 0).sum(axis=(2, 3, 4)) / n**2
    hand = _hand_cam(acts, alpha)
    small = grad_cam_3d(net, conv, x, 1, normalise=False, upsample=False)
    np.testing.assert_allclose(small, hand, rtol=1e-6, atol=1e-9)
    up = F.interpolate(torch.from_numpy(hand)[:, None], size=(6, 4, 8), mode="trilinear", align_corners=False)
    up = up[:, 0].numpy()
    raw = grad_cam_3d(net, conv, x, 1, normalise=False)
    assert raw.shape == (2, 6, 4, 8)
    np.testing.assert_allclose(raw, up, rtol=1e-6, atol=1e-9)
    norm = grad_cam_3d(net, conv, x, 1)
    for b in range(2):
        np.testing.assert_allclose(norm[b], up[b] / up[b].max(), rtol=1e-6, atol=1e-7)
    assert not np.allclose(alpha[0], alpha[1])  # per-sample weights were exercised
    # an in-place ReLU after the layer must not alter the captured (pre-ReLU) activation
    inplace_net = _pool_net(conv, n_out=2, relu=True, inplace=True)
    inplace_net[-1].load_state_dict(net[-1].state_dict())
    np.testing.assert_allclose(grad_cam_3d(inplace_net, conv, x, 1, normalise=False), raw, rtol=1e-6, atol=1e-9)


def test_gradcam_all_zero_map_stays_zero(k1_net):
    net, x = k1_net
    x = x.clone()
    x[1] = 0.0  # A = 0 for sample 1: no evidence anywhere
    norm = grad_cam_3d(net, net[1], x, 0)
    assert np.all(norm[1] == 0)
    assert np.isfinite(norm).all()
    assert norm[0].max() == pytest.approx(1.0)


def test_gradcam_leaves_no_hooks_or_gradients(k1_net):
    net, x = k1_net
    w_grad = torch.full_like(net[0].weight, 0.5)
    net[0].weight.grad = w_grad.clone()  # a pre-existing gradient must survive unchanged
    grad_cam_3d(net, net[1], x, 0)
    assert not net[1]._forward_hooks
    assert not net[1]._backward_hooks
    torch.testing.assert_close(net[0].weight.grad, w_grad)
    assert net[-1].weight.grad is None
    assert net[-1].bias.grad is None
    assert not x.requires_grad
    with pytest.raises(InputError, match="3 outputs"):
        grad_cam_3d(net, net[1], x, 5)
    with pytest.raises(ValueError, match="boom"):
        grad_cam_3d(net, net[1], x, lambda s: (_ for _ in ()).throw(ValueError("boom")))
    assert not net[1]._forward_hooks
    assert not net[1]._backward_hooks
    assert net[-1].weight.grad is None


def test_gradcam_runs_under_no_grad_with_frozen_parameters(k1_net):
    net, x = k1_net
    expected = grad_cam_3d(net, net[1], x, 1, normalise=False)
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        got = grad_cam_3d(net, net[1], x.float(), 1, normalise=False)  # float input cast to the model's dtype
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_gradcam_rejects_bad_layer_and_input(k1_net):
    net, x = k1_net
    with pytest.raises(InputError, match="not a submodule"):
        grad_cam_3d(net, torch.nn.Identity(), x, 0)
    with pytest.raises(InputError, match=r"need a tensor \[B, C, d, h, w\]"):
        grad_cam_3d(net, net[-1], x, 0)  # the linear layer's output is 2D
    with pytest.raises(InputError, match="D, H, W"):
        grad_cam_3d(net, net[1], x[:, 0], 0)
    with pytest.raises(InputError, match="one score per sample"):
        grad_cam_3d(net, net[1], x, lambda s: s)
    assert not net[1]._forward_hooks
    assert not net[-1]._forward_hooks


# ---------------------------------------------------------------------------------------
# SSIM
# ---------------------------------------------------------------------------------------


def _naive_ssim(a, b, weights, data_range, border, k1=0.01, k2=0.03):
    """Wang et al. eq. (13)-(16) voxel by voxel with explicit loops over a cubic weight window."""
    r = weights.shape[0] // 2
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    if border == "reflect":
        pa, pb = np.pad(a, r, mode="symmetric"), np.pad(b, r, mode="symmetric")
        centres = [
            (i + r, j + r, k + r) for i in range(a.shape[0]) for j in range(a.shape[1]) for k in range(a.shape[2])
        ]
    else:
        pa, pb = a, b
        centres = [
            (i, j, k)
            for i in range(r, a.shape[0] - r)
            for j in range(r, a.shape[1] - r)
            for k in range(r, a.shape[2] - r)
        ]
    total = 0.0
    for ci, cj, ck in centres:
        ma = mb = 0.0
        for p in range(-r, r + 1):
            for q in range(-r, r + 1):
                for s in range(-r, r + 1):
                    wt = weights[p + r, q + r, s + r]
                    ma += wt * pa[ci + p, cj + q, ck + s]
                    mb += wt * pb[ci + p, cj + q, ck + s]
        va = vb = cab = 0.0
        for p in range(-r, r + 1):
            for q in range(-r, r + 1):
                for s in range(-r, r + 1):
                    wt = weights[p + r, q + r, s + r]
                    da, db = pa[ci + p, cj + q, ck + s] - ma, pb[ci + p, cj + q, ck + s] - mb
                    va += wt * da * da
                    vb += wt * db * db
                    cab += wt * da * db
        total += (2 * ma * mb + c1) * (2 * cab + c2) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return total / len(centres)


def _uniform_weights(size):
    return np.full((size,) * 3, 1.0 / size**3)


def _gauss_weights(sigma, truncate):
    r = int(truncate * sigma + 0.5)
    g = [math.exp(-0.5 * (t / sigma) ** 2) for t in range(-r, r + 1)]
    g = np.array(g) / sum(g)
    return np.einsum("i,j,k->ijk", g, g, g)


@pytest.fixture
def vol():
    return np.random.default_rng(3).random((5, 4, 6))


def test_ssim_identical_is_one(vol):
    assert ssim_3d(vol, vol) == pytest.approx(1.0, abs=1e-12)
    assert ssim_3d(vol, vol, window="uniform", size=3, border="valid") == pytest.approx(1.0, abs=1e-12)
    zero = np.zeros((4, 4, 4))
    assert ssim_3d(zero, zero, data_range=1.0) == pytest.approx(1.0, abs=1e-12)  # two all-zero Grad-CAM maps
    assert ssim_3d(zero + 2, zero + 2) == 1.0  # default range 0: identical constants


@pytest.mark.parametrize("border", ["reflect", "valid"])
@pytest.mark.parametrize("change", ["shift", "contrast", "noise"])
def test_ssim_uniform_window_matches_loops(vol, border, change):
    other = {
        "shift": vol + 0.3,
        "contrast": 1.5 * vol,
        "noise": vol + 0.2 * np.random.default_rng(4).standard_normal(vol.shape),
    }[change]
    rng_default = max(vol.max(), other.max()) - min(vol.min(), other.min())
    got = ssim_3d(vol, other, window="uniform", size=3, border=border)
    ref = _naive_ssim(vol, other, _uniform_weights(3), rng_default, border)
    assert got == pytest.approx(ref, abs=1e-10)
    got1 = ssim_3d(vol, other, data_range=1.0, window="uniform", size=3, border=border)
    assert got1 == pytest.approx(_naive_ssim(vol, other, _uniform_weights(3), 1.0, border), abs=1e-10)
    assert got < 1.0


@pytest.mark.parametrize("border", ["reflect", "valid"])
def test_ssim_gaussian_window_matches_loops(border):
    rng = np.random.default_rng(5)
    a = rng.random((6, 5, 7))
    b = 0.8 * a + 0.1 * rng.random(a.shape)
    # sigma 0.8, truncate 2.5 -> radius int(2.0 + 0.5) = 2, a 5-wide window
    got = ssim_3d(a, b, data_range=1.0, sigma=0.8, truncate=2.5, border=border)
    ref = _naive_ssim(a, b, _gauss_weights(0.8, 2.5), 1.0, border)
    assert got == pytest.approx(ref, abs=1e-10)


def test_ssim_constant_volumes_by_hand():
    a = np.full((3, 4, 5), 0.2)
    b = np.full((3, 4, 5), 0.6)
    # mu_a = 0.2, mu_b = 0.6, variances and covariance 0, L = 0.6 - 0.2 = 0.4:
    # C1 = (0.01 * 0.4)^2 = 1.6e-5; SSIM = (2*0.2*0.6 + C1) / (0.04 + 0.36 + C1) * (C2 / C2)
    hand = (0.24 + 1.6e-5) / (0.40 + 1.6e-5)
    assert ssim_3d(a, b) == pytest.approx(hand, rel=1e-12)
    assert ssim_3d(a, b, window="uniform", size=3) == pytest.approx(hand, rel=1e-12)
    # L = 1: C1 = 1e-4
    assert ssim_3d(a, b, data_range=1.0) == pytest.approx((0.24 + 1e-4) / (0.40 + 1e-4), rel=1e-12)


def test_ssim_rejects_bad_input(vol):
    with pytest.raises(InputError, match="shape"):
        ssim_3d(vol, vol[:, :, :5])
    with pytest.raises(InputError, match="3D"):
        ssim_3d(vol[0], vol[0])
    with pytest.raises(InputError, match="odd"):
        ssim_3d(vol, vol, window="uniform", size=4)
    with pytest.raises(InputError, match="smaller than"):
        ssim_3d(vol, vol, border="valid")  # 11-wide default Gaussian window
    with pytest.raises(InputError, match="data_range"):
        ssim_3d(vol, vol, data_range=0.0)


# ---------------------------------------------------------------------------------------
# Spearman
# ---------------------------------------------------------------------------------------


def _pearson(u, v):
    u, v = np.asarray(u, float), np.asarray(v, float)
    du, dv = u - u.mean(), v - v.mean()
    return float((du * dv).sum() / math.sqrt((du * du).sum() * (dv * dv).sum()))


def _t_p(rho, n):
    t = rho * math.sqrt((n - 2) / (1 - rho * rho))
    return 2 * stats.t.sf(abs(t), n - 2)


def test_spearman_table_vs_hand_ranks():
    ssim = [0.9, 0.4, 0.7, 0.2, 0.6, None]  # last patient has no map: dropped
    osrs = [3, 1, 4, 1, 5, 9]
    pfsrs = [2.0, 7.0, 1.0, 8.0, 2.0, 0.0]
    mosrs = [0.1, 0.5, 0.3, 0.9, 0.2, 0.4]
    rows = spearman_table({"OSRS": osrs, "PFSRS": pfsrs, "MOSRS": mosrs}, ssim)
    assert [r["name"] for r in rows] == ["OSRS", "PFSRS", "MOSRS"]
    assert all(r["n"] == 5 for r in rows)
    r_ssim = [5, 2, 4, 1, 3]  # ranks of 0.9, 0.4, 0.7, 0.2, 0.6
    # OSRS 3, 1, 4, 1, 5 -> tied 1s share rank 1.5
    rho_os = _pearson([3, 1.5, 4, 1.5, 5], r_ssim)
    # PFSRS 2, 7, 1, 8, 2 -> tied 2s share rank 2.5
    rho_pfs = _pearson([2.5, 4, 1, 5, 2.5], r_ssim)
    # MOSRS 0.1, 0.5, 0.3, 0.9, 0.2 -> ranks 1, 4, 3, 5, 2; no ties: 1 - 6 sum d^2 / (n (n^2 - 1))
    d = np.array([1, 4, 3, 5, 2]) - np.array(r_ssim)
    rho_mo = 1 - 6 * (d**2).sum() / (5 * 24)
    assert rho_mo == pytest.approx(-0.9)
    for row, rho in zip(rows, (rho_os, rho_pfs, rho_mo), strict=True):
        assert row["rho"] == pytest.approx(rho, abs=1e-12)
        assert row["p"] == pytest.approx(_t_p(rho, 5), rel=1e-9)


def test_spearman_table_degenerate_and_bad():
    rows = spearman_table({"const": [1, 1, 1, 1], "short": [1, None, None, 2]}, [0.1, 0.2, 0.3, 0.4])
    assert all(math.isnan(r["rho"]) and math.isnan(r["p"]) for r in rows)
    assert [r["n"] for r in rows] == [4, 2]
    with pytest.raises(InputError, match="OSRS has 2 values"):
        spearman_table({"OSRS": [1, 2]}, [1, 2, 3])
