"""The size of a value handed to a producer, without copying it."""

from __future__ import annotations

import pytest

from kafkascope._core.sizes import value_size


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (b"12345", 5),
        (bytearray(b"123"), 3),
        (memoryview(b"1234"), 4),
        ("abc", 3),
        ("é", 2),
        (None, 0),
        (b"", 0),
    ],
)
def test_the_size_of_a_value_is_its_length_in_bytes(value, size):
    assert value_size(value) == size


def test_a_value_left_to_the_serializer_has_no_size_yet():
    assert value_size({"order": 1}) is None
