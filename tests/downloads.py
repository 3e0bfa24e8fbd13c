"""The exports are streamed: their body is read from the stream's parts."""

from __future__ import annotations


def downloaded(response) -> str:
    assert response.streaming, "an export is streamed"
    return b"".join(response.streaming_content).decode("utf-8")
