"""Moved to `orbyt.shared.redis.hub`; kept for code written against the old path."""

from orbyt.shared.redis.hub import PubSubHub, Subscription, SubscriptionFailed

__all__ = ["PubSubHub", "Subscription", "SubscriptionFailed"]
