"""What is due, and the scheduler's tick: no repeats, no skipped latest slot, retries.

The tick runs against a real SMTP server (aiosmtpd) and a real directory; the ledger is the
list of entries it recorded, as the escucha.reports topic would hold them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agents.report.runner import ReportRunner
from notifiers.email import EmailSettings
from streams.config.reports import ReportSettings
from streams.reports.deliver import ReportSender
from streams.reports.ledger import LedgerEntry, plan
from tests.fakes.smtp import FakeSMTP
from tests.unit.streams.reports._build import START, WATCHES, Source, em

# Mondays 08:00 in Madrid: 30 March 2026 is 06:00 UTC (summer time).
S1 = datetime(2026, 3, 30, 6, tzinfo=UTC)
WEEK = timedelta(days=7)


def report(tmp: Path | None = None, **extra: object) -> ReportSettings:
    return ReportSettings(id="weekly", schedule="0 8 * * 1", timezone="Europe/Madrid",
                          watches=["acme"], pdf_dir=tmp or Path("out"),
                          email=["board@example.com"], **extra)  # type: ignore[arg-type]


def entry(slot: datetime, channel: str, outcome: str = "delivered",
          trigger: str = "schedule") -> LedgerEntry:
    return LedgerEntry(report_id="weekly", slot=slot, channel=channel,
                       outcome=outcome, trigger=trigger, at=slot)  # type: ignore[arg-type]


def test_a_new_report_skips_the_current_slot_and_starts_with_the_next() -> None:
    p = plan(report(), [], S1 + timedelta(hours=3))
    assert p is not None and p.skip and p.slot == S1
    assert plan(report(), [entry(S1, "*", "skipped")], S1 + timedelta(days=1)) is None
    p = plan(report(), [entry(S1, "*", "skipped")], S1 + WEEK)
    assert p is not None and p.slot == S1 + WEEK and p.channels == ("pdf", "email")


def test_only_channels_not_recorded_for_the_slot_are_due() -> None:
    ledger = [entry(S1 - WEEK, "*", "skipped"), entry(S1, "pdf")]
    p = plan(report(), ledger, S1 + timedelta(minutes=1))
    assert p is not None and p.channels == ("email",)
    ledger.append(entry(S1, "email", "failed"))
    assert plan(report(), ledger, S1 + timedelta(minutes=2)) is None


def test_after_weeks_down_only_the_latest_slot_is_sent() -> None:
    ledger = [entry(S1, "pdf"), entry(S1, "email")]
    p = plan(report(), ledger, S1 + 3 * WEEK + timedelta(days=2))
    assert p is not None and p.slot == S1 + 3 * WEEK and p.channels == ("pdf", "email")


def test_a_manual_send_for_the_exact_slot_counts_but_others_do_not() -> None:
    ledger = [entry(S1, "pdf"), entry(S1, "email"),
              entry(S1 + WEEK, "email", trigger="manual"),
              entry(S1 + WEEK - timedelta(hours=5), "pdf", trigger="manual")]
    p = plan(report(), ledger, S1 + WEEK + timedelta(minutes=1))
    assert p is not None and p.channels == ("pdf",)


def test_a_ledger_ahead_of_the_clock_sends_nothing() -> None:
    assert plan(report(), [entry(S1 + WEEK, "pdf")], S1 + timedelta(hours=1)) is None


async def test_tick_sends_once_survives_a_restart_and_retries_a_refused_email(
        tmp_path: Path) -> None:
    source = Source([em(START + timedelta(hours=h)) for h in range(5)])
    ledger: list[LedgerEntry] = []

    async def record(e: LedgerEntry) -> None:
        ledger.append(e)

    async with FakeSMTP() as smtp:
        sender = ReportSender(email=EmailSettings(host="127.0.0.1", port=smtp.port,
                                                  from_addr="reports@example.com"),
                              slack_token=None)

        def runner() -> ReportRunner:  # a fresh one is a restarted worker
            return ReportRunner(reports=[report(tmp_path)], watches=WATCHES, sender=sender,
                                record=record)

        first = runner()
        await first.tick(now=S1 - WEEK + timedelta(hours=1), ledger=ledger, source=source,
                         incidents=[])
        assert [(e.channel, e.outcome) for e in ledger] == [("*", "skipped")]

        smtp.refuse_next(451)  # the relay is busy: worth another try
        now = S1 + timedelta(seconds=30)
        await first.tick(now=now, ledger=ledger, source=source, incidents=[])
        assert [(e.channel, e.outcome) for e in ledger[1:]] == [("pdf", "delivered")]
        assert (tmp_path / "weekly-2026-03-30.pdf").read_bytes().startswith(b"%PDF")
        assert smtp.messages == []

        restarted = runner()
        await restarted.tick(now=now + timedelta(seconds=30), ledger=ledger, source=source,
                             incidents=[])
        assert [(e.channel, e.outcome) for e in ledger[2:]] == [("email", "delivered")]
        assert len(smtp.messages) == 1 and "5 (previous period 0" in str(
            smtp.messages[0].get_body(("plain",)).get_content())
        await restarted.tick(now=now + timedelta(minutes=1), ledger=ledger, source=source,
                             incidents=[])
        assert len(ledger) == 3 and len(smtp.messages) == 1  # nothing repeats

        smtp.refuse_next(550)  # next week the address is gone: failed for good, recorded
        await restarted.tick(now=S1 + WEEK, ledger=ledger, source=source, incidents=[])
        assert [(e.channel, e.outcome) for e in ledger[3:]] == [("pdf", "delivered"),
                                                               ("email", "failed")]
        assert "550" in ledger[-1].detail


async def test_a_channel_failing_for_hours_is_recorded_as_failed(tmp_path: Path) -> None:
    ledger = [entry(S1 - WEEK, "*", "skipped")]

    async def record(e: LedgerEntry) -> None:
        ledger.append(e)

    smtp = FakeSMTP()
    await smtp.start()
    port = smtp.port
    await smtp.go_down()  # connection refused: retryable
    sender = ReportSender(email=EmailSettings(host="127.0.0.1", port=port), slack_token=None)
    runner = ReportRunner(reports=[report(tmp_path)], watches=WATCHES, sender=sender,
                          record=record)
    source = Source([])
    await runner.tick(now=S1, ledger=ledger, source=source, incidents=[])
    assert [e.channel for e in ledger[1:]] == ["pdf"]
    await runner.tick(now=S1 + timedelta(hours=5), ledger=ledger, source=source, incidents=[])
    assert len(ledger) == 2
    await runner.tick(now=S1 + timedelta(hours=7), ledger=ledger, source=source, incidents=[])
    assert ledger[-1].channel == "email" and ledger[-1].outcome == "failed"
    assert "still failing after 6:00:00" in ledger[-1].detail
