"""Where the emulator cannot work, it says why in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.emulator import check_socket_room
from grader.errors import EmulatorError


def test_socket_path_too_long_is_a_plain_error():
    too_long = Path("/" + "a" * 120)
    with pytest.raises(EmulatorError, match=r"\(121 of at most 107 bytes\); set TMPDIR"):
        check_socket_room(too_long)


def test_socket_path_at_the_limit_is_accepted():
    check_socket_room(Path("/" + "a" * 106))
