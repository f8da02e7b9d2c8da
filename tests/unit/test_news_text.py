"""News text without the model: entity extraction from ticker tables, news and watchlist records."""

from __future__ import annotations

import pytest

from encoders.entities import EntityTable, EntityTableError
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
