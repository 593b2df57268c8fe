"""The one place that installs the agents and the web routes into a pipeline.

Every other module is installed *by* this one; nothing imports an agent's Faust module but
this file (``make lint`` checks it). The order below is the flow: classify → detect →
aggregate → store → escalate → report → deliver, then what is served over HTTP. It does not matter
for correctness (the views they share are made up front by ``build_pipeline``).
"""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry

from agents.aggregate import agent as aggregate
from agents.classify import agent as classify
from agents.deliver import agent as deliver
from agents.detect import agent as detect
from agents.detect.storybook import StoryBook
from agents.escalate import agent as escalate
from agents.report import agent as report
from agents.store import agent as store_agent
from agents.store import store_for
from agents.store.claims import ClaimBook
from streams.config.settings import Settings
from streams.core.links import LinkSigner, load_or_create_secret
from streams.runtime.pipeline import Pipeline, build_pipeline
from streams.web.api import install_api
from streams.web.claims import install_claims
from streams.web.console.routes import install_console
from streams.web.health import install_health
from streams.web.ingest import install_ingest
from streams.web.mentions import install_mentions
from streams.web.pagerduty import install_pagerduty

__all__ = ["build_worker", "link_signer"]


def link_signer(settings: Settings, secret: bytes) -> LinkSigner:
    return LinkSigner(secret=secret, base_url=settings.api.public_url,
                      ttl=timedelta(seconds=settings.api.link_ttl_s))


def build_worker(settings: Settings, *, bootstrap: str,
                 registry: CollectorRegistry | None = None,
                 install_agents: bool = True) -> Pipeline:
    """A pipeline with health routes and, unless told otherwise, every agent and route."""
    pipeline = build_pipeline(settings, bootstrap=bootstrap, registry=registry)
    install_health(pipeline)
    if not install_agents:
        return pipeline
    secret = (settings.api.link_secret.get_secret_value().encode()
              if settings.api.link_secret else load_or_create_secret(settings.datadir))
    links = link_signer(settings, secret)
    # Detection and the store give each mention its story from one set of indexes: computed
    # once, and the same id in the evidence and in the store (agents/detect/storybook.py).
    stories = StoryBook()
    classify.install(pipeline)
    detect.install(pipeline, stories=stories)
    aggregate.install(pipeline)
    store = store_for(settings, stories=stories) if settings.store.enabled else None
    if store is not None:
        store_agent.install(pipeline, store=store)
    escalate.install(pipeline)
    report.install(pipeline)
    deliver.install(pipeline, links=links)
    install_api(pipeline, links=links)
    install_pagerduty(pipeline)
    install_mentions(pipeline, store=store)
    claims = ClaimBook(store) if store is not None else None
    install_claims(pipeline, book=claims)
    if settings.console.enabled:
        install_console(pipeline, secret=secret, store=store, claims=claims)
    install_ingest(pipeline)
    return pipeline
