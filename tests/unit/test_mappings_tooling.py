"""The many-mappings helper on the host: it makes the mappings it says, every page present."""

from __future__ import annotations

import json
import mmap
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, mmap, sys
sys.path.insert(0, sys.argv[1])
from tests.tooling.mappings import address_of, many_mappings
region = many_mappings(int(sys.argv[2]), int(sys.argv[3]))
start, end = address_of(region), address_of(region) + len(region)
spans, present = [], 0
for line in open("/proc/self/smaps"):
    fields = line.split()
    if "-" in fields[0] and len(fields) >= 5:
        low, high = (int(x, 16) for x in fields[0].split("-"))
        inside = start <= low and high <= end
        if inside:
            spans.append((low, high, fields[1]))
    elif fields[0] == "Rss:" and inside:
        present += int(fields[1]) * 1024
offsets = all(
    int.from_bytes(region[o : o + 8], "little") == o for o in range(0, len(region), mmap.PAGESIZE)
)
sizes = sorted({high - low for low, high, _ in spans})
print(json.dumps([len(spans), sizes, present, offsets, [p for _, _, p in spans[:2]]]))
"""


def test_many_mappings_are_separate_present_and_numbered() -> None:
    for count, pages in ((7, 4), (200, 1)):
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(REPO), str(count), str(pages)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        vmas, sizes, present, numbered, perms = json.loads(proc.stdout)
        assert vmas == count, proc.stdout  # neighbours not merged
        assert sizes == [pages * mmap.PAGESIZE]
        assert present == count * pages * mmap.PAGESIZE
        assert numbered  # each page begins with its offset
        assert perms == ["rw-p", "r--p"]
