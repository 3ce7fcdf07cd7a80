"""The nsclc_ici study's interval loss vs sums written out by hand, autograd and a hand-derived gradient."""

import math

import numpy as np
import pytest
import torch

from studyrunner.deep.intervals import interval_labels
from studyrunner.deep.survival_loss import SurvivalIntervalLoss
from studyrunner.errors import InputError

G, M, S0 = 2.0, 0.25, 0.3
E = math.exp


def _loss(reduction="none", gamma=G):
    return SurvivalIntervalLoss(gamma=gamma, margin=M, threshold=S0, reduction=reduction)


# event in interval 2: O = {2}, N = {1, 3} -> equation [2]
EVENT_S = [0.2, 0.9, -0.4]
EVENT_TERMS = [
    G * (0.2 - 0.9 + M),  # pair i=1, j=2
    G * (-0.4 - 0.9 + M),  # pair i=3, j=2
    G * (0.2 - S0),  # negative 1 vs threshold
    G * (-0.4 - S0),  # negative 3 vs threshold
    G * (S0 - 0.9 + M),  # target 2 vs threshold
]
EVENT_HAND = math.log(1 + sum(E(x) for x in EVENT_TERMS))

# censored in interval 2: N = {1} (known negative), O = {2, 3} (possible) -> equation [1]
CENS_S = [0.5, -0.1, 0.7]
CENS_HAND = math.log(1 + E(G * (0.5 + 0.1 + M)) + E(G * (0.5 - 0.7 + M)) + E(G * (0.5 - S0)))

# censored after c2: N = {1, 2}, O = {3}
LATE_S = [-0.3, 0.4, 0.1]
LATE_HAND = math.log(
    1 + E(G * (-0.3 - 0.1 + M)) + E(G * (0.4 - 0.1 + M)) + E(G * (-0.3 - S0)) + E(G * (0.4 - S0))
)

# censored in interval 1: nothing known -> contributes 0
EARLY_S = [3.0, -2.0, 1.0]

CUTS = (135.0, 282.0)
TIMES = [200.0, 150.0, 400.0, 50.0]
EVENTS = [1, 0, 0, 0]
SCORES = [EVENT_S, CENS_S, LATE_S, EARLY_S]
HAND = [EVENT_HAND, CENS_HAND, LATE_HAND, 0.0]


def _batch(dtype=torch.float64):
    targets, known = interval_labels(TIMES, EVENTS, CUTS)
    return torch.tensor(SCORES, dtype=dtype), targets, known


def test_per_patient_values_equal_hand_sums():
    scores, targets, known = _batch()
    per = _loss("none")(scores, targets, known)
    assert per.tolist() == pytest.approx(HAND, rel=1e-12, abs=1e-15)
    # by calculator: e^-0.9 + e^-2.1 + e^-0.2 + e^-1.4 + e^-0.7 = 0.40657 + 0.12246 + 0.81873
    # + 0.24660 + 0.49659 = 2.09095; ln(3.09095) = 1.12847
    assert HAND[0] == pytest.approx(1.12847, abs=1e-5)
    assert per[3].item() == 0.0


def test_mean_and_sum_reductions():
    scores, targets, known = _batch()
    assert _loss("mean")(scores, targets, known).item() == pytest.approx(sum(HAND) / 4, rel=1e-12)
    assert _loss("sum")(scores, targets, known).item() == pytest.approx(sum(HAND), rel=1e-12)


def test_gradcheck_float64():
    torch.manual_seed(0)
    scores = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    targets, known = interval_labels([50, 200, 400, 100, 150, 300], [1, 1, 1, 0, 0, 0], CUTS)
    loss = SurvivalIntervalLoss(gamma=1.7, margin=0.3, threshold=-0.2)
    assert torch.autograd.gradcheck(lambda s: loss(s, targets, known), (scores,))


def test_gradient_of_event_patient_equals_hand_derivation():
    # L = log Z, Z = 1 + sum_t exp(x_t); dL/ds_k = gamma / Z * sum_t exp(x_t) * (coefficient of s_k in x_t / gamma)
    a, b, c, d, e = (E(x) for x in EVENT_TERMS)
    z = 1 + a + b + c + d + e
    hand = [G * (a + c) / z, -G * (a + b + e) / z, G * (b + d) / z]
    scores = torch.tensor([EVENT_S], dtype=torch.float64, requires_grad=True)
    _loss("mean")(scores, [[0, 1, 0]], [[True, True, True]]).backward()
    assert scores.grad[0].tolist() == pytest.approx(hand, rel=1e-12)
    # a censored patient with nothing known has zero gradient
    s2 = torch.tensor([EARLY_S], dtype=torch.float64, requires_grad=True)
    _loss("mean")(s2, [[0, 0, 0]], [[False, False, False]]).backward()
    assert s2.grad.abs().max().item() == 0.0


def test_large_gamma_does_not_overflow():
    gamma = 1e4  # exp(gamma * 0.95) overflows float64 and float32
    scores = torch.tensor([EVENT_S], dtype=torch.float32, requires_grad=True)
    out = _loss("mean", gamma=gamma)(scores, [[0, 1, 0]], [[True, True, True]])
    xs = [gamma * (0.2 - 0.9 + M), gamma * (-0.4 - 0.9 + M), gamma * (0.2 - S0), gamma * (-0.4 - S0),
          gamma * (S0 - 0.9 + M)]
    top = max([*xs, 0.0])
    hand = top + math.log(math.exp(-top) + sum(math.exp(x - top) for x in xs))
    assert math.isfinite(out.item())
    assert out.item() == pytest.approx(hand, rel=1e-6, abs=1e-6)
    out.backward()
    assert torch.isfinite(scores.grad).all()
    # a badly ordered patient: loss grows linearly, about gamma * (s_3 - s_2 + m)
    bad = torch.tensor([[0.0, -1.0, 2.0]], dtype=torch.float32)
    val = _loss("mean", gamma=gamma)(bad, [[0, 1, 0]], [[True, True, True]]).item()
    assert val == pytest.approx(gamma * (2.0 + 1.0 + M), rel=1e-6)


def test_numpy_and_tensor_labels_agree_and_bad_labels_rejected():
    scores, targets, known = _batch()
    a = _loss("none")(scores, targets, known)
    b = _loss("none")(scores, torch.as_tensor(targets), torch.as_tensor(known))
    assert torch.equal(a, b)
    with pytest.raises(InputError, match="row 0, interval 1"):
        _loss()(scores[:1], np.array([[0, 0.5, 0]]), np.ones((1, 3), bool))
    with pytest.raises(InputError, match="known has shape"):
        _loss()(scores, targets, known[:2])
    with pytest.raises(InputError, match="gamma"):
        SurvivalIntervalLoss(gamma=0, margin=M, threshold=S0)
