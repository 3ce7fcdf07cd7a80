"""Model updating: recalibration in the large re-estimates the baseline so that the mean
predicted risk equals the Kaplan-Meier risk (approximately, at an event time); slope
recalibration multiplies the LP by lifelines' Cox coefficient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from studyrunner.external.updating import updated_calibration, updated_model

pytestmark = pytest.mark.needs_r


@pytest.fixture
def miscalibrated() -> pd.DataFrame:
    """Outcomes from a model whose true hazard is 2 x exp(0.5 lp): the frozen LP is too steep
    and too low in the large."""
    rng = np.random.default_rng(11)
    lp = rng.normal(0, 1, 300)
    event_time = rng.exponential(1 / (0.02 * np.exp(0.5 * lp)))
    censor = rng.uniform(10, 120, 300)
    return pd.DataFrame({"time": np.minimum(event_time, censor), "event": (event_time <= censor).astype(int),
                         "lp": lp})


def test_slope_recalibration_uses_the_cox_coefficient(miscalibrated: pd.DataFrame) -> None:
    model = updated_model(miscalibrated, "slope")
    cox = CoxPHFitter().fit(miscalibrated, "time", "event")
    assert model["slope"] == pytest.approx(cox.params_["lp"], abs=1e-4)
    assert 0.3 < model["slope"] < 0.7


def test_recalibration_in_the_large_brings_o_over_e_to_about_one(miscalibrated: pd.DataFrame) -> None:
    for method in ("baseline", "slope"):
        model = updated_model(miscalibrated, method)
        calibration = updated_calibration(miscalibrated, model, [30.0], ["30"], 4)
        assert calibration["30"]["oe"]["estimate"] == pytest.approx(1.0, abs=0.1)
    assert updated_model(miscalibrated, "baseline")["slope"] == 1.0
