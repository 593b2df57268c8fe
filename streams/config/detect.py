"""``detect:``: the detectors' thresholds (a watch may override them)."""

from __future__ import annotations

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from streams.config.base import Section

__all__ = ["DetectSettings"]


class DetectSettings(Section):
    """How crises are detected. Counts are per watch, in event time (the posts' own time)."""

    bucket_s: int = Field(default=60, ge=10, le=3600, description="Bucket length, seconds.")
    spike_window_min: int = Field(default=5, ge=1, le=120,
                                  description="Window of the volume and negative spikes.")
    shift_window_min: int = Field(default=30, ge=5, le=720,
                                  description="Window of the negative-share shift.")
    term_window_min: int = Field(default=15, ge=1, le=240,
                                 description="Window of risk-term and emerging-term surges.")
    warmup_min: int = Field(default=120, ge=0, description="History a watch needs before "
                            "comparing against its baseline (single posts are judged at once).")
    level_halflife_min: float = Field(default=180.0, gt=0, description="How fast the "
                                      "expected rate follows a trend.")
    share_halflife_min: float = Field(default=1440.0, gt=0, description="How fast the usual "
                                      "negative share adapts.")
    seasonal: bool = Field(default=True, description="Learn hour-of-week patterns (after a "
                           "week of history) so a regular Monday peak is not a crisis.")
    ratio: float = Field(default=3.0, gt=1, description="Observed/expected needed to fire.")
    max_p_value: float = Field(default=1e-5, gt=0, lt=1, description="Tail probability "
                               "needed to fire: how surprising it must be under the baseline.")
    spike_dispersion: float = Field(default=0.15, ge=0, le=2, description="Overdispersion "
                                    "of 5-minute counts (variance = mean + this x mean^2; 0 is "
                                    "Poisson): how clumpy ordinary traffic is.")
    spike_recent_min: int = Field(default=60, ge=0, le=240, description="A spike window is "
                                  "also compared with the pace of this many minutes before it "
                                  "(0: off), so a morning rise or a new watch's first day is "
                                  "not a spike.")
    min_volume: int = Field(default=15, ge=1, description="Least mentions for a volume spike.")
    min_negative: int = Field(default=8, ge=1, description="Least negative mentions for a "
                              "negative spike.")
    min_authors: int = Field(default=4, ge=1, description="Least distinct authors in a spike: "
                             "one account posting a lot is spam, not a crisis.")
    shift_min_volume: int = Field(default=20, ge=1, description="Least mentions in the shift "
                                  "window to judge a negative share.")
    shift_min_delta: float = Field(default=0.25, gt=0, lt=1, description="Least rise of the "
                                   "negative share over its usual value (0.25 = 25 points).")
    risk_min: int = Field(default=5, ge=1, description="Least mentions with risk terms.")
    emerging_min: int = Field(default=8, ge=2, description="Least uses of a new term.")
    emerging_warmup_min: int = Field(default=1440, ge=0, description="History a watch needs "
                                     "before a term can be 'new' to it (its vocabulary).")
    influencer_followers: int = Field(default=100_000, ge=1, description="Reach that makes "
                                      "one negative post worth an alert.")
    influencer_verified_followers: int = Field(default=50_000, ge=1,
                                               description="The same for verified authors.")
    influencer_interactions_per_min: float = Field(default=100.0, gt=0, description="Or "
                                                   "engagement velocity at classification "
                                                   "(with at least 500 interactions).")
    influencer_cooldown_min: int = Field(default=1440, ge=1, description="One alert per "
                                         "author per this long: a regular critic is known.")
    cooldown_min: int = Field(default=45, ge=1, description="A detector that fired stays "
                              "quiet while its condition lasts and this long after, unless "
                              "the severity rises.")
    lateness_min: int = Field(default=10, ge=0, description="Allowed lateness: older "
                              "mentions still count in their window.")
    skew_tolerance_s: int = Field(default=120, ge=0, description="A post time later than its "
                                  "classification time plus this is clamped (clock skew).")
    surge: bool = Field(default=True, description="The hourly surge detector: negatives "
                        "over 1 h, 6 h and 24 h (surge_scales_min) against an hour-of-day and "
                        "day-of-week expectation, for slow and sustained crises at everyday "
                        "volumes. The 5-minute scale is the spike detectors above.")
    surge_scales_min: list[int] = Field(default=[60, 360, 1440], min_length=1, max_length=6,
                                        description="Window lengths of the surge detector, "
                                        "minutes, each a whole number of hours.")
    surge_min_negative: list[int] = Field(default=[12, 24, 40], min_length=1, max_length=6,
                                          description="Least (author-capped) negatives in each "
                                          "surge window, one per scale.")
    surge_ratio: list[float] = Field(default=[2.5, 1.4, 1.25], min_length=1, max_length=6,
                                     description="Least observed/expected in each surge "
                                     "window, one per scale.")
    surge_max_p_value: float = Field(default=1e-4, gt=0, lt=1, description="Negative-binomial "
                                     "tail probability a surge window must reach (the "
                                     "dispersion is learnt from the watch's own history).")
    surge_warmup_h: int = Field(default=72, ge=1, le=24 * 28, description="Hours of history "
                                "a watch needs before the surge detector judges it.")
    surge_history_days: int = Field(default=28, ge=2, le=90, description="Days of hourly "
                                    "counts kept to learn the expectation.")

    @field_validator("surge_scales_min")
    @classmethod
    def _whole_hours(cls, scales: list[int]) -> list[int]:
        bad = [s for s in scales if s < 60 or s % 60 or s > 7 * 1440]
        if bad:
            raise ValueError(f"each scale must be a whole number of hours (60, 120, ...) up to "
                             f"a week, got {bad}")
        if scales != sorted(set(scales)):
            raise ValueError(f"list the scales once each, shortest first, got {scales}")
        return scales

    @field_validator("surge_ratio")
    @classmethod
    def _ratios_above_one(cls, ratios: list[float]) -> list[float]:
        bad = [r for r in ratios if not r > 1]
        if bad:
            raise ValueError(f"each ratio must be above 1 (observed/expected), got {bad}")
        return ratios

    @field_validator("surge_min_negative")
    @classmethod
    def _counts_positive(cls, counts: list[int]) -> list[int]:
        bad = [c for c in counts if c < 1]
        if bad:
            raise ValueError(f"each least count must be at least 1, got {bad}")
        return counts

    @model_validator(mode="after")
    def _one_per_scale(self) -> DetectSettings:
        n = len(self.surge_scales_min)
        wrong = [name for name in ("surge_min_negative", "surge_ratio")
                 if len(getattr(self, name)) != n]
        if wrong:
            raise ValueError(f"{' and '.join(wrong)} need one value per surge scale "
                             f"({n}: {self.surge_scales_min})")
        return self
