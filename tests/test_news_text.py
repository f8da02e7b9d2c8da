"""News text: entity extraction, financial sentiment, news/watchlist records (no broker)."""

from __future__ import annotations

import pytest

from encoders.entities import EntityTable, EntityTableError
from encoders.finance import FinanceSentiment, finance_valence
from schemas import InvalidEvent, decode_event


@pytest.fixture(scope="module")
def table() -> EntityTable:
    return EntityTable.from_csv()


def test_entities_from_cashtags_names_aliases_and_the_event(table):
    text = "Bank of America upgrades $aapl; Google and Tesla, Inc. fall. An apple a day. $BRK.B flat."
    assert table.find(text, given=["NVDA"]) == ["NVDA", "AAPL", "BRK.B", "BAC", "GOOGL", "TSLA"]
    assert table.find("apple pie and a target price for stocks") == []  # case-sensitive names
    assert table.find("AT&T and Johnson & Johnson") == ["T", "JNJ"]
    assert table.name_of("MSFT") == "Microsoft Corporation"


def test_a_users_own_ticker_table_replaces_the_shipped_one(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("ticker,name,aliases\nACME,Acme Corp,Road Runner Supplies\n")
    mine = EntityTable.from_csv(path)
    assert mine.find("Road Runner Supplies beats estimates; Apple too") == ["ACME"]
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,company\nX,Y\n")
    with pytest.raises(EntityTableError, match="ticker,name"):
        EntityTable.from_csv(bad)
    with pytest.raises(EntityTableError, match="cannot read"):
        EntityTable.from_csv(tmp_path / "missing.csv")


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


def test_news_and_watchlist_records_validate():
    news = decode_event(b'{"event_id":"n1","headline":" Acme rallies ","ts":5,"tickers":["$acme","ACME"],"source":"wire"}', "news")
    assert (news.headline, news.tickers, news.document) == ("Acme rallies", ("ACME",), "Acme rallies")
    for raw, reason in [
        (b'{"event_id":"n","ts":1}', "headline"),
        (b'{"event_id":"n","headline":"x","ts":1,"tickers":"ACME"}', "list"),
        (b'{"event_id":"n","headline":"x","ts":1,"tickers":["not a ticker!"]}', "ticker"),
        (b'{"event_id":"n","headline":"x","ts":"yesterday"}', "ISO-8601"),
        (b'{"event_id":"n","headline":"x","ts":1,"source":7}', "source"),
    ]:
        with pytest.raises(InvalidEvent, match=reason):
            decode_event(raw, "news")
    watch = decode_event(b'{"event_id":"w","user_id":"u","entity":"$tsla","ts":1}', "watchlist")
    assert (watch.entity, watch.op, watch.source) == ("TSLA", "add", "watchlist")
    with pytest.raises(InvalidEvent, match="op"):
        decode_event(b'{"event_id":"w","user_id":"u","entity":"TSLA","op":"toggle","ts":1}', "watchlist")
