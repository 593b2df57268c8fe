"""``escucha bench store`` in miniature: it fills, writes, searches and reports (a smoke run;
the figures themselves are bench/RESULTS.md's)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from agents.store.backends import SqliteBackend
from agents.store.store import MentionStore
from streams.bench.store import QUERIES, bench_store, format_report, synthetic
from streams.cli import cli


def test_the_synthetic_mentions_have_the_shares_the_queries_rely_on() -> None:
    mentions = list(synthetic(4000, seed=3))
    texts = [m.mention.text.lower() for m in mentions]
    battery = sum("battery" in t or "bateria" in t for t in texts) / len(texts)
    assert 0.02 < battery < 0.06
    assert len({m.mention.key for m in mentions}) == 4000
    assert {m.watch_id for m in mentions} >= {"acme", "globex", "initech"}
    assert sorted(m.mention.created_at for m in mentions) == [m.mention.created_at
                                                              for m in mentions]


def test_a_small_run_reports_every_figure(tmp_path: Path) -> None:
    store = MentionStore(SqliteBackend(tmp_path / "bench.sqlite3"))
    report = bench_store(store, mentions=1500, reps=2, more=300)
    assert report["mentions"] == 1800
    assert set(report["searches"]) == set(QUERIES)
    assert report["fill"]["rows_per_s"] > 0 and report["write_full_store"]["rows_per_s"] > 0
    assert report["bytes_per_million"] > 0
    lines = format_report(report)
    assert any(line.startswith("filtered_fts") for line in lines)
    # A kept store is searched again without filling.
    assert bench_store(store, mentions=1500, reps=2, more=0)["fill"] is None
    store.close()


def test_the_command_runs(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "store", "--mentions", "1000", "--reps", "2",
                                      "--more", "100", "--path", str(tmp_path / "b.sqlite3"),
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert '"filtered_fts"' in result.output
