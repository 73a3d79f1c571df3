"""Zip files the grader writes for others to unpack: a student's packed
submission and the Gradescope autograder.

Both are reproducible (a fixed time stamp, members in the given order, so
the same files give the same bytes) and carry Unix modes, which is how an
executable script stays executable once unzipped.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_REGULAR_FILE = 0o100000


def write_zip(archive: Path, members: Iterable[tuple[str, bytes, int]]) -> None:
    """Write ``(name, content, mode)`` members to ``archive``, beside it
    first and then moved into place, so no reader meets half a zip."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=archive.parent, suffix=".zip.tmp")
    os.close(descriptor)
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as bundle:
            for name, content, mode in members:
                member = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                member.create_system = 3  # Unix, so unzip honours the mode
                member.external_attr = (_REGULAR_FILE | mode) << 16
                member.compress_type = zipfile.ZIP_DEFLATED
                bundle.writestr(member, content)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a hand-in is not
        os.replace(temporary, archive)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
