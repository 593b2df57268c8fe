"""deliver: notifications → channels. ``agent`` runs the lanes and the acks on Faust; ``stages`` is
the chain each notification goes through (dedup, rate limit and digest, threading, send with
retry, record, fallback).
"""

from agents.deliver.stages import Chain, Digests, TokenBucket, build_chain

__all__ = ["Chain", "Digests", "TokenBucket", "build_chain"]
