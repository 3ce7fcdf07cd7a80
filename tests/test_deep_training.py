"""Training loop: determinism, epoch choice on validation only, early stopping, a learnable task; scoring."""

import numpy as np
import pytest
import torch

from studyrunner.deep.network import DualTaskNetwork, NetworkConfig, SurvivalNetwork
from studyrunner.deep.scoring import macro_accuracy, score_volumes
from studyrunner.deep.survival_loss import SurvivalIntervalLoss
from studyrunner.deep.training import TrainingSettings, train_network
from studyrunner.errors import InputError

torch.set_num_threads(1)

TINY = NetworkConfig(block_layers=(1, 1, 1, 1), growth_rate=4, initial_features=8, bottleneck_width=2,
                     hidden_units=8, stem_kernel=3)
SIDE = 18


def _cubes(n, seed):
    """Noise volumes with a bright (+) or dark (-) central cube; label 1 = bright."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, size=(n, 1, SIDE, SIDE, SIDE)).astype(np.float32)
    bright = (np.arange(n) % 2).astype(bool)
    rng.shuffle(bright)
    x[:, :, 6:12, 6:12, 6:12] += np.where(bright, 1.5, -1.5)[:, None, None, None, None].astype(np.float32)
    return x, bright


def _bce(outputs, targets):
    # column 0: bright (a "PR"-like label), column 1: dark
    y = torch.stack([targets["bright"], 1 - targets["bright"]], dim=1)
    return torch.nn.functional.binary_cross_entropy_with_logits(outputs, y)


def _train(val_targets=None, val_x=None, seed_model=0, **kw):
    x, bright = _cubes(20, 1)
    vx, vb = _cubes(10, 2)
    settings = TrainingSettings(**{"epochs": 4, "batch_size": 6, "learning_rate": 3e-3, "max_shift": 2, **kw})
    torch.manual_seed(seed_model)
    model = DualTaskNetwork(TINY)
    result = train_network(
        model, _bce, x, {"bright": bright.astype(np.float32)},
        vx if val_x is None else val_x,
        {"bright": vb.astype(np.float32)} if val_targets is None else val_targets,
        settings, "cpu",
    )
    return model, result


def test_two_runs_are_bit_identical_and_choose_the_argmin_epoch():
    m1, r1 = _train()
    _, r2 = _train()
    assert [h["train_loss"] for h in r1.history] == [h["train_loss"] for h in r2.history]
    assert [h["val_loss"] for h in r1.history] == [h["val_loss"] for h in r2.history]
    assert r1.best_epoch == r2.best_epoch
    for k, v in r1.best_state.items():
        assert torch.equal(v, r2.best_state[k]), k
        assert v.device.type == "cpu"
    # the chosen epoch is the argmin of the recorded validation losses (1-based)
    val = [h["val_loss"] for h in r1.history]
    assert r1.best_epoch == int(np.argmin(val)) + 1
    assert [h["epoch"] for h in r1.history] == [1, 2, 3, 4]
    # the model holds the best state at the end
    for k, v in m1.state_dict().items():
        assert torch.equal(v, r1.best_state[k]), k
    assert r1.precision == "fp32"
    assert r1.device == "cpu"
    assert r1.train_samples_per_second > 0
    assert all(h["seconds"] > 0 for h in r1.history)


def test_validation_data_never_reach_the_optimiser():
    _, honest = _train()
    vb = _cubes(10, 2)[1].astype(np.float32)
    _, poisoned = _train(val_targets={"bright": 1 - vb})  # reversed validation labels
    assert [h["train_loss"] for h in honest.history] == [h["train_loss"] for h in poisoned.history]
    assert [h["val_loss"] for h in honest.history] != [h["val_loss"] for h in poisoned.history]
    assert honest.best_epoch != poisoned.best_epoch  # only the choice of epoch moves
    # after one epoch the only state is that epoch's: identical whatever the validation cohort
    _, one_a = _train(epochs=1)
    noise = np.random.default_rng(5).normal(0, 50, size=(10, 1, SIDE, SIDE, SIDE)).astype(np.float32)
    _, one_b = _train(epochs=1, val_x=noise, val_targets={"bright": 1 - vb})
    for k, v in one_a.best_state.items():  # BatchNorm running statistics included
        assert torch.equal(v, one_b.best_state[k]), k


def test_early_stopping_is_a_prefix_of_the_full_run():
    _, full = _train(epochs=6, learning_rate=3e-2)
    val = [h["val_loss"] for h in full.history]
    # first epoch (1-based) that does not improve on every earlier one
    first_worse = next((e + 1 for e in range(1, len(val)) if val[e] >= min(val[:e])), None)
    assert first_worse is not None, val
    _, early = _train(epochs=6, learning_rate=3e-2, patience=1)
    assert len(early.history) == first_worse
    assert [h["val_loss"] for h in early.history] == val[:first_worse]
    assert early.stopped_early == (first_worse < 6)


def test_bright_and_dark_cubes_are_learnt():
    model, result = _train(epochs=10, learning_rate=1e-2, batch_size=5)
    vx, vb = _cubes(10, 2)
    scores = score_volumes(model, vx, "cpu", batch_size=4)
    accuracy = np.mean((scores[:, 0] > scores[:, 1]) == vb)
    assert accuracy >= 0.9, (accuracy, result.history)
    assert result.history[result.best_epoch - 1]["val_loss"] < 0.5


def test_survival_loss_trains():
    x, bright = _cubes(12, 3)
    # bright -> event in interval 1, dark -> interval 3 (all known)
    targets = np.zeros((12, 3), np.float32)
    targets[bright, 0] = 1
    targets[~bright, 2] = 1
    known = np.ones((12, 3), bool)
    loss = SurvivalIntervalLoss(gamma=2.0, margin=0.25, threshold=0.0)
    torch.manual_seed(0)
    model = SurvivalNetwork(TINY)
    settings = TrainingSettings(epochs=6, batch_size=4, learning_rate=1e-2, augment=False)
    result = train_network(model, lambda out, t: loss(out, t["targets"], t["known"]),
                           x, {"targets": targets, "known": known}, x, {"targets": targets, "known": known},
                           settings, "cpu")
    assert result.history[result.best_epoch - 1]["val_loss"] < result.history[0]["val_loss"]
    scores = score_volumes(model, x, "cpu")
    assert macro_accuracy(scores, targets, known)["macro_accuracy"] == 1.0


def test_score_volumes_equals_a_plain_forward_pass():
    torch.manual_seed(0)
    model = SurvivalNetwork(TINY)
    model.train()
    x = np.random.default_rng(0).normal(size=(5, 1, SIDE, SIDE, SIDE)).astype(np.float32)
    scores = score_volumes(model, x, "cpu", batch_size=2)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        plain = model(torch.from_numpy(x)).double().numpy()
    assert scores.dtype == np.float64
    assert scores.shape == (5, 3)
    np.testing.assert_allclose(scores, plain, rtol=1e-6, atol=1e-7)


def test_bf16_scores_agree_with_fp32_within_tolerance():
    """The GPU scores under bf16 autocast; the same precision on the CPU gives the decisions
    of fp32: every bright/dark call equal, scores within 0.05 of the fp32 spread, and the
    same ranking up to a Spearman rho of 0.99 (scipy as the reference)."""
    from scipy.stats import spearmanr

    model, _ = _train(epochs=10, learning_rate=1e-2, batch_size=5)
    vx, _ = _cubes(10, 2)
    fp32 = score_volumes(model, vx, "cpu", bf16=False)
    bf16 = score_volumes(model, vx, "cpu", bf16=True)
    assert not np.array_equal(fp32, bf16)  # the bf16 path really ran
    spread = fp32.max(axis=0) - fp32.min(axis=0)
    assert np.all(np.abs(bf16 - fp32) <= 0.05 * spread)
    assert np.array_equal(fp32[:, 0] > fp32[:, 1], bf16[:, 0] > bf16[:, 1])
    assert spearmanr(fp32[:, 0], bf16[:, 0]).statistic > 0.99


def test_macro_accuracy_by_hand():
    # 7 patients; rows 5 and 6 censored (not fully known) and left out
    scores = np.array([
        [0.9, 0.1, 0.0],  # true 0, pred 0
        [0.2, 0.7, 0.1],  # true 0, pred 1
        [0.1, 0.8, 0.1],  # true 1, pred 1
        [0.0, 0.1, 0.9],  # true 2, pred 2
        [0.5, 0.1, 0.4],  # true 2, pred 0
        [0.9, 0.0, 0.0],
        [0.0, 0.0, 0.9],
    ])
    targets = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0], [0, 0, 0]], float)
    known = np.ones((7, 3), bool)
    known[5, 1:] = False
    known[6, 2] = False
    out = macro_accuracy(scores, targets, known)
    # recalls: interval 1: 1/2, interval 2: 1/1, interval 3: 1/2 -> (0.5 + 1 + 0.5) / 3
    assert out["recall_per_interval"] == [0.5, 1.0, 0.5]
    assert out["macro_accuracy"] == pytest.approx(2 / 3)
    assert out["n_patients"] == 5
    # an interval with no patient is NaN and left out of the mean
    out2 = macro_accuracy(scores[:3], targets[:3], known[:3])
    assert np.isnan(out2["recall_per_interval"][2])
    assert out2["macro_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    bad = targets.copy()
    bad[0, 1] = 1
    with pytest.raises(InputError, match="row 0 is fully known but not one-hot"):
        macro_accuracy(scores, bad, known)


def test_bad_cohorts_are_refused():
    x, bright = _cubes(4, 1)
    with pytest.raises(InputError, match=r"train_targets\['bright'\] has 3 rows"):
        train_network(DualTaskNetwork(TINY), _bce, x, {"bright": bright[:3]}, x, {"bright": bright},
                      TrainingSettings(epochs=1, batch_size=2, learning_rate=1e-3), "cpu")
    with pytest.raises(InputError, match="batch_size"):
        TrainingSettings(epochs=1, batch_size=0, learning_rate=1e-3)
