"""deliver: notifications → channels. ``agent`` runs the lanes and the acks on Faust; ``stages`` is
the chain each notification goes through (dedup, rate limit and digest, threading, send with
retry, record, fallback); ``limits`` the rate limit per target and its digests.
"""

from agents.deliver.limits import Digests, RateWindow
from agents.deliver.stages import Chain, DigestRound, build_chain

__all__ = ["Chain", "DigestRound", "Digests", "RateWindow", "build_chain"]
