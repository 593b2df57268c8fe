"""Replay of history files: good records through, each bad one reported with line and reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streams.connectors.replay import BadLine, ReplayError, parse_column_map, read_file
from streams.core.records import Mention


def _mention(n: int, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "source": "x", "id": f"t{n}", "text": f"Acme is great {n}",
        "author": {"handle": f"user{n}", "followers": n}, "created_at": f"2024-05-01T12:00:0{n}Z",
    }
    record.update(extra)
    return record


def _jsonl(path: Path, *lines: str | bytes) -> Path:
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode()
                                for line in lines) + b"\n")
    return path


def test_good_jsonl_gives_mentions_in_file_order(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "h.jsonl", *(json.dumps(_mention(n)) for n in range(3)))
    out = list(read_file(path))
    assert all(isinstance(r, Mention) for r in out)
    assert [r.id for r in out if isinstance(r, Mention)] == ["t0", "t1", "t2"]
    assert out[1] == Mention.model_validate(_mention(1))


def test_missing_source_is_filled_in_and_blank_lines_skipped(tmp_path: Path) -> None:
    record = _mention(1)
    del record["source"]
    path = _jsonl(tmp_path / "h.ndjson", "", json.dumps(record), "   ", json.dumps(_mention(2)))
    out = list(read_file(path, source="archive"))
    assert [r.source for r in out if isinstance(r, Mention)] == ["archive", "x"]


def test_bad_lines_are_reported_with_number_and_reason_and_the_rest_goes_through(
    tmp_path: Path,
) -> None:
    path = _jsonl(
        tmp_path / "h.jsonl",
        json.dumps(_mention(1)),
        '{"id": "t2", "text": ',                                    # line 2: truncated JSON
        json.dumps(_mention(3, created_at="last tuesday")),         # line 3: bad field
        "[1, 2, 3]",                                                 # line 4: not an object
        json.dumps(_mention(5)),
    )
    out = list(read_file(path))
    assert [r.id for r in out if isinstance(r, Mention)] == ["t1", "t5"]
    bad = [r for r in out if isinstance(r, BadLine)]
    assert [b.line for b in bad] == [2, 3, 4]
    assert bad[0].reason.startswith("not valid JSON")
    assert bad[0].raw == '{"id": "t2", "text": '
    assert bad[1].reason.startswith("created_at: Input should be a valid datetime")
    assert "not a JSON object" in bad[2].reason


def test_invalid_utf8_costs_only_its_line(tmp_path: Path) -> None:
    bad_bytes = json.dumps(_mention(2)).encode().replace(b"great", b"gr\xffat")
    path = _jsonl(tmp_path / "h.jsonl", json.dumps(_mention(1)), bad_bytes,
                  json.dumps(_mention(3), ensure_ascii=False).replace("great", "génial"))
    out = list(read_file(path))
    assert isinstance(out[0], Mention) and isinstance(out[2], Mention)
    assert out[2].text == "Acme is génial 3"
    assert isinstance(out[1], BadLine)
    assert out[1].line == 2 and "UTF-8" in out[1].reason
    assert "gr\ufffdat" in out[1].raw


def test_raw_is_cut_to_4096_chars(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "h.jsonl", "x" * 10_000)
    (bad,) = list(read_file(path))
    assert isinstance(bad, BadLine) and len(bad.raw) == 4096


def test_csv_with_column_map(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    # Build the bytes explicitly: a UTF-8 BOM, UTF-8 rows, one row with a Latin-1 byte.
    path.write_bytes(
        b"\xef\xbb\xbftweet_id,body,when,user,followers,verified,likes,language\n"
        b"1,Acme rocks,2024-05-01 12:00:00,ann,1234,true,5,en\n"
        b'2,"two\nlines, and a comma",2024-05-01T12:00:01Z,bob,,,,\n'
        b"3,bad date,yesterday,cat,5,false,0,en\n"
        b"\n"
        b"4,Acme \xe9,2024-05-01T12:00:02Z,dan,1,false,0,fr\n"
        b"5,Acme ok \xc3\xa9,2024-05-01T12:00:03Z,eve,1,false,0,fr\n"
    )
    columns = parse_column_map(
        "id=tweet_id, text=body, created_at=when, author.handle=user,"
        "author.followers=followers,author.verified=verified,engagement.likes=likes"
    )
    out = list(read_file(path, columns=columns, source="export"))
    good = [r for r in out if isinstance(r, Mention)]
    bad = [r for r in out if isinstance(r, BadLine)]
    assert [m.id for m in good] == ["1", "2", "5"]
    first, second, fifth = good
    assert first.author.followers == 1234 and first.author.verified is True
    assert first.engagement.likes == 5 and first.language == "en"  # unmapped, same-name column
    assert first.source == "export"
    assert second.text == "two\nlines, and a comma"
    assert second.author.followers == 0 and second.language is None  # empty cells: missing
    assert fifth.text == "Acme ok é"
    # Record 3 starts on physical line 5 because record 2 spans lines 3-4.
    assert [(b.line, b.reason.split(":")[0]) for b in bad] == [(5, "created_at"),
                                                               (7, "not valid UTF-8")]


def test_csv_without_map_uses_same_name_columns_and_flags_misquoted_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(
        "id,text,created_at,author.handle\n"
        "1,hello,2024-05-01T12:00:00Z,ann\n"
        "2,oops, a stray comma,2024-05-01T12:00:01Z,bob\n"
    )
    out = list(read_file(path))
    assert isinstance(out[0], Mention) and out[0].source == "replay"
    assert isinstance(out[1], BadLine) and out[1].line == 3 and "fields" in out[1].reason


def test_csv_column_map_must_fit_the_header(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("tweet_id,body,when\n1,hi,2024-05-01T12:00:00Z\n")
    with pytest.raises(ReplayError, match=r"'user'.*not in the CSV header"):
        read_file(path, columns={"id": "tweet_id", "text": "body", "created_at": "when",
                                 "author.handle": "user"})
    with pytest.raises(ReplayError, match=r"no column for author\.handle"):
        read_file(path, columns={"id": "tweet_id", "text": "body", "created_at": "when"})


def test_empty_csv_is_an_empty_history(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("")
    assert list(read_file(path)) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("text", "expected FIELD=COLUMN"),
        ("text=", "expected FIELD=COLUMN"),
        ("=body", "expected FIELD=COLUMN"),
        ("body=text", "unknown field 'body'"),
        ("text=a,text=b", "mapped twice"),
        (" , ", "empty column map"),
    ],
)
def test_bad_column_map_says_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ReplayError, match=message):
        parse_column_map(spec)


def test_column_map_parses_nested_paths_and_spaces() -> None:
    assert parse_column_map(" text = Tweet Body ,author.handle=user,") == {
        "text": "Tweet Body", "author.handle": "user",
    }


def test_missing_file_and_unknown_format_fail_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="does not exist"):
        read_file(tmp_path / "nope.jsonl")
    with pytest.raises(ReplayError, match="directory"):
        read_file(tmp_path)
    odd = tmp_path / "history.txt"
    odd.write_text(json.dumps(_mention(1)) + "\n")
    with pytest.raises(ReplayError, match="format"):
        read_file(odd)
    assert [r.id for r in read_file(odd, fmt="jsonl") if isinstance(r, Mention)] == ["t1"]
    with pytest.raises(ReplayError, match="CSV files only"):
        read_file(odd, fmt="jsonl", columns={"text": "body"})


def test_an_overlong_line_is_skipped_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streams.connectors import replay

    monkeypatch.setattr(replay, "_MAX_LINE_BYTES", 200)
    path = _jsonl(tmp_path / "h.jsonl", json.dumps(_mention(1, text="y" * 1000)),
                  json.dumps(_mention(2)))
    bad, good = list(read_file(path))
    assert isinstance(bad, BadLine) and bad.line == 1 and "longer than 200" in bad.reason
    assert isinstance(good, Mention) and good.id == "t2"
