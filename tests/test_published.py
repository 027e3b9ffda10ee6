"""Published figures: every bundled model's parameter count, computed from its config by formula,
against the figure its publisher gives (catalog field `published_params`, source in
`params_source`). Published totals are rounded ("40B" for Falcon-40B's 41.3B), hence 4%; a
formula that forgot a matrix would be off by far more."""

from __future__ import annotations

import pytest

import llmroofline as lr

TOLERANCE = 0.04


@pytest.mark.parametrize("model", [m for m in lr.list_models() if m.published_params], ids=lambda m: m.id)
def test_parameter_count_matches_the_published_figure(model):
    assert model.params_total == pytest.approx(model.published_params, rel=TOLERANCE), model.params_source


def test_most_models_carry_a_published_figure():
    models = lr.list_models()
    assert sum(1 for m in models if m.published_params) >= 0.9 * len(models)
