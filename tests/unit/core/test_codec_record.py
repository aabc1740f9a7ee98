"""The codec options recorded in Redis: one canonical line, read back to the same options."""

from __future__ import annotations

import zoneinfo
from typing import Any

import pytest
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions, DatetimeConversion

from writebehind.core.codec import codec_text, parse_codec_text
from writebehind.core.errors import ConfigurationError

OPTIONS: list[Any] = [
    None,
    CodecOptions(),  # pymongo's default: UUIDs unspecified, recorded as standard
    CodecOptions(uuid_representation=UuidRepresentation.PYTHON_LEGACY),
    CodecOptions(uuid_representation=UuidRepresentation.JAVA_LEGACY),
    CodecOptions(tz_aware=True),
    CodecOptions(tz_aware=True, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_AUTO),
]


@pytest.mark.parametrize("options", OPTIONS)
def test_codec_text_round_trips(options: Any) -> None:
    text = codec_text(options)
    assert codec_text(parse_codec_text(text)) == text


def test_differences_show_in_the_text() -> None:
    texts = {codec_text(o) for o in OPTIONS[1:]}
    assert len(texts) == len(OPTIONS) - 1
    assert codec_text(None) == "uuid=standard tz_aware=false tzinfo=utc datetime=datetime"


def test_an_unreadable_record_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        parse_codec_text("uuid=martian")
