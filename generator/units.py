"""Sizes as the inventory writes them (512MiB, 10GB): parsed once, in bytes."""
from __future__ import annotations

import re

_BYTE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}


def parse_bytes(text: str) -> int:
    m = re.match(r"^([0-9.]+)([A-Za-z]+)$", text)
    assert m, text  # the schema has already checked the spelling
    return int(float(m.group(1)) * _BYTE_UNITS[m.group(2)])
