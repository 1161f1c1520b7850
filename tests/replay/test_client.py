"""The client checks shared by the Redis-backed stores."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from adaptd.replay.client import as_text, check_binary_client


def test_a_binary_client_passes_and_a_decoding_one_is_refused() -> None:
    client = aioredis.Redis()
    assert check_binary_client(client) is client
    with pytest.raises(ValueError, match="decode_responses=False"):
        check_binary_client(aioredis.Redis(decode_responses=True))


def test_as_text_decodes_bytes_and_keeps_text() -> None:
    assert as_text(b"BTC-USD:2") == "BTC-USD:2"
    assert as_text("held") == "held"
    with pytest.raises(UnicodeDecodeError):
        as_text(b"\xff")
