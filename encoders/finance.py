"""Financial news sentiment: the encoder's sentiment facet, corrected by a finance phrase lexicon.

General sentiment models read "guidance cut" or "downgrade" as neutral and "beats estimates" as
barely positive. Here each news item's sentiment is

    p = (1 - w) * p_facet + w * p_finance,     w = finance_weight if a finance phrase matched else 0

where p_facet is the sentiment facet's (negative, neutral, positive) probabilities (FacetEncoder,
batched with everything else) and p_finance comes from the summed valence v of the matched phrases:
s = tanh(v / 2), p_finance = (max(-s, 0), 1 - |s|, max(s, 0)). Score = p_pos - p_neg in [-1, 1];
label = the most probable class; confidence = its probability.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from schemas.facets import SENTIMENT_LABELS

# Valence per phrase (regex, case-insensitive, on word boundaries). Signs follow how markets read
# the phrase about the company it names; magnitudes 1 (mild) to 3 (severe).
FINANCE_PHRASES: Mapping[str, float] = {
    r"beats? (?:\w+ )?(?:estimates|expectations|forecasts?)": 2.0,
    r"(?:tops|topped|exceeds?|exceeded) (?:\w+ )?(?:estimates|expectations|forecasts?)": 2.0,
    r"miss(?:es|ed)? (?:\w+ )?(?:estimates|expectations|forecasts?)": -2.0,
    r"falls? short of (?:\w+ )?(?:estimates|expectations|forecasts?)": -2.0,
    r"(?:raises?|raised|lifts?|lifted|boosts?|boosted|hikes?|hiked) "
    r"(?:its |full-year |annual )?(?:guidance|outlook|forecast|dividend)": 2.0,
    r"(?:cuts?|lowers?|lowered|slashe[sd]|slash|reduces?|reduced) "
    r"(?:its |full-year |annual )?(?:guidance|outlook|forecast|dividend)": -2.0,
    r"(?:guidance|outlook|forecast|dividend) (?:cut|lowered|slashed|reduced)": -2.0,
    r"profit warning|warns? on (?:profits?|earnings|sales|revenue)": -2.0,
    r"downgrade[sd]?|cut to (?:sell|underweight|underperform)": -1.5,
    r"upgrade[sd]?|raised to (?:buy|overweight|outperform)": 1.5,
    r"record (?:revenue|profits?|earnings|sales|quarter)": 1.5,
    r"(?:share )?buyback|repurchase program": 1.0,
    r"layoffs?|job cuts|cuts? (?:\d[\d,]* )?jobs": -1.0,
    r"bankruptcy|chapter 11|insolvenc\w+|default(?:s|ed)? on": -3.0,
    r"recalls?|recalled": -1.5,
    r"(?:sec|doj|antitrust|regulatory|federal) (?:probe|investigation|inquiry|charges?|lawsuit)": -1.5,
    r"probe|investigation|lawsuit|sued|fraud|scandal|fined?\b": -1.2,
    r"plunge[sd]?|plummet(?:s|ed)?|tumble[sd]?|slump(?:s|ed)?|sinks?|sank|crash(?:es|ed)?|tank(?:s|ed)?": -1.5,
    r"soar(?:s|ed)?|surge[sd]?|rall(?:y|ies|ied)|jump(?:s|ed)?|skyrocket(?:s|ed)?": 1.5,
    r"write-?downs?|impairment|writes? down": -1.5,
    r"outage|breach|hack(?:ed)?": -1.2,
    r"wins? (?:\w+ )?(?:contract|approval|deal)|(?:fda|regulatory) approval": 1.5,
    r"delist\w*|going concern": -2.5,
}
_PHRASES = [(re.compile(rf"\b(?:{p})\b", re.IGNORECASE), v) for p, v in FINANCE_PHRASES.items()]


@dataclass(frozen=True)
class NewsSentiment:
    score: float  # p_positive - p_negative, in [-1, 1]
    label: str
    confidence: float  # probability of the label
    probabilities: tuple[float, float, float]  # negative, neutral, positive
    phrases: tuple[str, ...]  # finance phrases that matched


def finance_valence(text: str) -> tuple[float, tuple[str, ...]]:
    """Summed valence of the finance phrases in ``text`` (each phrase counted once)."""
    total, hits = 0.0, []
    for pattern, valence in _PHRASES:
        match = pattern.search(text)
        if match:
            total += valence
            hits.append(match.group(0).lower())
    return total, tuple(hits)


class FinanceSentiment:
    def __init__(self, finance_weight: float = 0.6) -> None:
        if not 0.0 <= finance_weight <= 1.0:
            raise ValueError("finance_weight must be in [0, 1]")
        self.finance_weight = finance_weight

    def __call__(self, texts: Sequence[str], sentiment_facet: np.ndarray) -> list[NewsSentiment]:
        """``sentiment_facet``: (n, 3) rows of the encoder's sentiment facet for ``texts``."""
        rows = np.clip(np.asarray(sentiment_facet, dtype=np.float64), 0.0, None)
        out = []
        for text, row in zip(texts, rows):
            p = row / max(float(row.sum()), 1e-12)  # the facet is L2-normalised probabilities
            valence, hits = finance_valence(text)
            if hits:
                s = math.tanh(valence / 2.0)
                p_fin = np.array([max(-s, 0.0), 1.0 - abs(s), max(s, 0.0)])
                p = (1.0 - self.finance_weight) * p + self.finance_weight * p_fin
            k = int(np.argmax(p))
            out.append(NewsSentiment(float(p[2] - p[0]), SENTIMENT_LABELS[k], float(p[k]), tuple(float(x) for x in p), hits))
        return out
