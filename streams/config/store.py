"""``store:``: the mention store (agents/store/): where it lives, how long it keeps mentions."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from streams.config.base import ID, Section

__all__ = ["StoreSettings"]

_SCHEMES = ("postgresql", "postgres", "sqlite")


class StoreSettings(Section):
    """Every enriched mention, kept and searchable (``GET /api/mentions``)."""

    enabled: bool = Field(default=True, description="Write the store. Off: no agent writes "
                          "it and /api/mentions answers 404.")
    url: SecretStr | None = Field(
        default=None, description="Unset: a SQLite file, <datadir>/store/mentions.sqlite3 "
        "(one worker). postgresql://user:password@host:5432/db: PostgreSQL, shared by "
        "every worker (it may hold a password: a secret, never logged). sqlite:////abs/path "
        "or sqlite:///relative/path: a SQLite file elsewhere.")
    retention_days: int = Field(default=90, ge=1, le=36500, description="How long mentions "
                                "are kept, days after they were posted, unless their watch "
                                "says otherwise.")
    watch_retention_days: dict[str, int] = Field(
        default_factory=dict, description="Per watch id: its own retention in days, e.g. "
        "{acme: 365}. A mention of several watches stays as long as the longest.")
    batch_size: int = Field(default=500, ge=1, le=10_000, description="Mentions written per "
                            "transaction at most.")
    max_wait_s: float = Field(default=1.0, gt=0, le=60, description="Longest a mention waits "
                              "for its batch to fill before it is written.")
    hold_s: float = Field(
        default=10.0, ge=0, le=300, description="When the database cannot be written, how "
        "long a batch is retried before it is let go (counted and logged with its offsets; "
        "`escucha store rebuild` writes it later); later batches are let go at once until "
        "the database answers again. Holding longer stalls detection too: the stages share "
        "the enriched topic's partitions.")
    search_timeout_s: float = Field(default=10.0, gt=0, le=300, description="A search "
                                    "running longer is stopped with an error.")
    story_seed_hours: float = Field(
        default=6.0, ge=0, le=24, description="At start, the store's story ids are read "
        "back from each watch's mentions of this many last hours, so a copy-paste storm "
        "running across a restart keeps its story id. 0: not seeded (a running story "
        "continues under a second id). At most 24: the story index keeps a day.")
    story_seed_max: int = Field(default=20_000, ge=0, le=200_000, description="Per watch, "
                                "the newest mentions read back at most when seeding: a "
                                "bound on the start's time (about 1 s per 10,000) and memory.")
    expire_every_s: int = Field(default=3600, ge=10, le=86400, description="How often the "
                                "leader worker deletes expired mentions.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        # Never echo the URL: it may carry a password.
        try:
            parts = urlsplit(value.get_secret_value().strip())
        except ValueError:
            raise ValueError("not a URL; use postgresql://user:password@host:5432/db") \
                from None
        if parts.scheme not in _SCHEMES:
            raise ValueError(f"unsupported scheme {parts.scheme[:20]!r}; use "
                             "postgresql://user:password@host:5432/db or sqlite:///path")
        if parts.scheme == "sqlite" and not parts.path.strip("/"):
            raise ValueError("a sqlite URL needs a file path, e.g. sqlite:////var/lib/escucha/"
                             "mentions.sqlite3")
        if parts.scheme != "sqlite" and not (parts.hostname or "host=" in parts.query):
            raise ValueError("a PostgreSQL URL needs a host, e.g. "
                             "postgresql://escucha:password@db:5432/escucha")
        return value

    @field_validator("watch_retention_days")
    @classmethod
    def _days(cls, value: dict[str, int]) -> dict[str, int]:
        problems = [f"{watch!r}: not a watch id" for watch in value if not ID.match(watch)]
        problems += [f"{watch!r}: {days} days; use 1 to 36500" for watch, days in value.items()
                     if not 1 <= days <= 36500]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    def sqlite_path(self, datadir: Path) -> Path | None:
        """The SQLite file, or None when the store is PostgreSQL."""
        if self.url is None:
            return datadir / "store" / "mentions.sqlite3"
        parts = urlsplit(self.url.get_secret_value().strip())
        if parts.scheme != "sqlite":
            return None
        # sqlite:////abs/path -> /abs/path; sqlite:///rel/path -> rel/path (as SQLAlchemy).
        return Path(parts.path[1:])

    def postgres_url(self) -> str | None:
        if self.url is None or self.sqlite_path(Path(".")) is not None:
            return None
        return self.url.get_secret_value().strip()
