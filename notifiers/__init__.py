"""Channels: one module each (a notifier and its ``CHANNEL`` declaration) behind the tiny
protocol in ``base``, listed in ``registry``; retries only in ``retry``, escaping in ``text``.
"""

from notifiers.base import BuildContext, ChannelSpec, Notifier, Receipt
from notifiers.errors import DeliveryError

__all__ = ["BuildContext", "ChannelSpec", "DeliveryError", "Notifier", "Receipt"]
