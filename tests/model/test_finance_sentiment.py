"""Financial news sentiment: the encoder's sentiment facet corrected by the finance lexicon."""

from __future__ import annotations

import pytest

from encoders.finance import FinanceSentiment, finance_valence


@pytest.mark.parametrize(
    "text, sign",
    [
        ("Acme beats analyst estimates and raises full-year guidance", 1),
        ("Acme cuts guidance as demand weakens", -1),
        ("Analysts downgrade Acme to sell after profit warning", -1),
        ("Acme shares plunge after SEC probe", -1),
        ("Acme wins FDA approval for new drug", 1),
        ("Acme to present at industry conference next week", 0),
    ],
)
def test_finance_sentiment_reads_market_phrases(encoder, text, sign):
    [result] = FinanceSentiment()([text], encoder.encode([text]).facets["sentiment"])
    assert -1.0 <= result.score <= 1.0 and 0.0 < result.confidence <= 1.0
    assert abs(sum(result.probabilities) - 1.0) < 1e-6
    assert result.label == {1: "positive", -1: "negative", 0: "neutral"}[sign], (text, result)


def test_finance_lexicon_changes_what_the_general_model_says(encoder):
    text = "Acme lowers its outlook"
    facet = encoder.encode([text]).facets["sentiment"]
    general = FinanceSentiment(finance_weight=0.0)([text], facet)[0]
    finance = FinanceSentiment()([text], facet)[0]
    assert finance.score < general.score - 0.2 and finance.label == "negative"
    assert finance_valence("no finance words here") == (0.0, ())
