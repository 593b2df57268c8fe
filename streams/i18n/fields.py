"""The ``locale``/``timezone``/``target_locales`` settings every channel and the console share,
validated by one set of rules (:func:`~streams.i18n.check_locale` and friends).

Channel sections inherit :class:`ChannelLocale`; :meth:`ChannelLocale.lang_for` picks the
target's language, falling back to the section's. Config errors name the offending field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from streams.i18n import DEFAULT, Lang, check_locale, check_target_locales, check_timezone

__all__ = ["ChannelLocale", "LocaleName", "LocalePrefs", "TargetLocales", "TimeZoneName"]

LocaleName = Annotated[str, AfterValidator(check_locale)]
TimeZoneName = Annotated[str, AfterValidator(check_timezone)]
TargetLocales = Annotated[dict[str, str], AfterValidator(check_target_locales)]


class LocalePrefs(BaseModel):
    """A language and a clock (a console user, a report)."""

    locale: LocaleName = Field(default=DEFAULT, description="Language of escucha's own words "
                               "(headings, buttons, states), e.g. 'es' or 'es_MX'; mention "
                               "text stays as written.")
    timezone: TimeZoneName = Field(default="UTC", description="IANA zone times are shown in, "
                                   "e.g. 'Europe/Madrid'.")


class ChannelLocale(LocalePrefs):
    """A channel's language, with a per-target override."""

    target_locales: TargetLocales = Field(
        default_factory=dict, description="Per-target override of `locale`, keyed by the "
        "target as configured in escalation (e.g. {'#soporte': 'es', 'ops@acme.com': 'en'}).")

    def lang_for(self, target: str | None) -> Lang:
        """The language and zone for a message to ``target``."""
        locale = self.target_locales.get((target or "").strip(), self.locale)
        return Lang(locale, self.timezone)
