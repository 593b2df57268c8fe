"""The terms of a mention, as detectors and aggregates count them ("top terms").

Words of four letters or more, hashtags and cashtags, folded (case and accents), without
stop words in the six demo languages and without the watch's own terms.
"""

from __future__ import annotations

import re

from streams.core.query import fold

__all__ = ["STOP_WORDS", "terms_of"]

_TOKEN = re.compile(r"[#$]?\w{4,}", re.UNICODE)
STOP_WORDS = frozenset({
    "that", "this", "with", "have", "from", "just", "what", "your", "about", "they", "them",
    "their", "there", "were", "been", "will", "would", "could", "should", "after", "before",
    "again", "still", "never", "always", "really", "because", "para", "pero", "esta", "este",
    "como", "todo", "todos", "pour", "avec", "dans", "sont", "mais", "plus", "cette", "nicht",
    "sind", "eine", "einen", "auch", "noch", "aber", "sehr", "della", "sono", "come", "anche",
    "perche", "isso", "esse", "essa",
})


def terms_of(text: str, *, exclude: frozenset[str] = frozenset()) -> set[str]:
    """The distinct terms of ``text`` (folded), as the detectors count them.

    ``exclude`` holds folded words without their ``#``/``$``/``@``: a watch's own terms are
    in every one of its mentions and would say nothing as "top terms".
    """
    out = set()
    for tok in _TOKEN.findall(fold(text)):
        bare = tok.lstrip("#$")
        if tok in STOP_WORDS or bare in exclude or bare.isdigit():
            continue
        out.add(tok)
    return out
