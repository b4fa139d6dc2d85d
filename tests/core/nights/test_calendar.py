from datetime import UTC, date, datetime

import pytest

from recsys_core.errors import ConfigError
from recsys_core.nights.calendar import cutoff_seconds, nights_between, parse_as_of, parse_every


def test_parse_as_of_accepts_dates_and_converts_datetimes_to_utc():
    assert parse_as_of("2024-03-01") == date(2024, 3, 1)
    assert parse_as_of(None) is None
    assert parse_as_of(date(2024, 3, 1)) == date(2024, 3, 1)
    # 23:30 in UTC-05:00 is already the next UTC day
    late = datetime.fromisoformat("2024-03-01T23:30:00-05:00")
    assert parse_as_of(late) == date(2024, 3, 2)


def test_parse_as_of_names_the_option_on_bad_input():
    with pytest.raises(ConfigError, match=r"--as-of '01/03/2024' is not a date.*YYYY-MM-DD"):
        parse_as_of("01/03/2024")


def test_cutoff_is_midnight_utc():
    assert cutoff_seconds(date(1998, 4, 23)) == int(datetime(1998, 4, 23, tzinfo=UTC).timestamp())


def test_nights_between_steps_and_includes_the_end():
    assert nights_between(date(2024, 1, 1), date(2024, 1, 15), 7) == [
        date(2024, 1, 1),
        date(2024, 1, 8),
        date(2024, 1, 15),
    ]
    assert nights_between(date(2024, 1, 1), date(2024, 1, 1)) == [date(2024, 1, 1)]
    with pytest.raises(ConfigError, match="--from 2024-01-02 is after --to 2024-01-01"):
        nights_between(date(2024, 1, 2), date(2024, 1, 1))


@pytest.mark.parametrize(("text", "days"), [("1d", 1), ("7d", 7), (" 14d ", 14), (3, 3)])
def test_parse_every(text, days):
    assert parse_every(text) == days


@pytest.mark.parametrize("text", ["1w", "d", "0d", "-1d"])
def test_parse_every_rejects_other_steps(text):
    with pytest.raises(ConfigError, match="--every"):
        parse_every(text)
