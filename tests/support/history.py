"""A small raw history export that makes escucha fire: the backtest tests' shared CSV.

Half an hour of calm posts about Acme (two a minute), one angry post by an author with 2.5M
followers at 09:12, then 30 angry posts by 30 people in the first half-minute of 09:30, the
way an export from another tool would have it: its own column names (mapped with
:data:`COLUMNS`) and two bad rows at the end.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

__all__ = ["COLUMNS", "CONFIG", "START", "write_history"]

START: Final = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
#: ``--columns`` for the file: Mention field paths to its column names.
COLUMNS: Final = ("id=tweet_id,text=body,created_at=posted,author.handle=user,"
                  "author.followers=followers")
#: Config sections for a worker and a backtest of the file: a short warm-up, as the history
#: is only half an hour long.
CONFIG: Final = {
    "detect": {"warmup_min": 8, "lateness_min": 2},
    "watches": [{"id": "acme", "name": "Acme", "terms": ["acme"]},
                {"id": "globex", "name": "Globex", "terms": ["globex"]}],
}

_CALM = ("Picked up the new Acme kettle today, it works fine",
         "Acme store on Main street opens at nine",
         "Comparing the Acme blender with my old one",
         "Acme shipped my order, arrived on Tuesday")
_ANGRY = ("Acme charged me twice and support ignores me, terrible service",
          "Furious with Acme, my order never arrived and no refund",
          "Acme is a scam, worst customer service ever",
          "Never buying from Acme again, broken product and rude staff")


def write_history(path: Path, *, newest_first: bool = False) -> dict[int, str]:
    """Write the export to ``path``; return its bad lines: line number -> reason's start.

    ``newest_first`` lists the rows the other way round, as many exports do."""
    rows: list[list[str]] = []
    for minute in range(30):
        for k in range(2):
            n = len(rows) + 1
            rows.append([f"t{n}", f"{_CALM[n % 4]} #{n}",
                         (START + timedelta(minutes=minute, seconds=20 * k)).isoformat(),
                         f"user{n % 7}", "120"])
    rows.append(["t-big", "Acme's new phone exploded in my hand, this is dangerous and "
                 "disgusting", (START + timedelta(minutes=12, seconds=40)).isoformat(),
                 "bigvoice", "2500000"])
    rows.append(["t-off", "Nothing to do with any watch, just a sunny day",
                 (START + timedelta(minutes=5)).isoformat(), "user1", "10"])
    for k in range(30):
        rows.append([f"t-angry{k}", f"{_ANGRY[k % 4]} ({k})",
                     (START + timedelta(minutes=30, seconds=k)).isoformat(), f"angry{k}", "50"])
    rows.sort(key=lambda r: r[2], reverse=newest_first)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["tweet_id", "body", "posted", "user", "followers"])
    writer.writerows(rows)
    first_bad = len(rows) + 2
    out.write('t-bad1,"Acme is bad",not-a-date,someone,1\n')
    out.write("t-bad2,Acme,2026-02-10T09:31:00+00:00,someone,1,one field too many\n")
    path.write_text(out.getvalue(), encoding="utf-8")
    return {first_bad: "created_at", first_bad + 1: "record has 6 fields"}
