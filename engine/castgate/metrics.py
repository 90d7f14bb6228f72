"""Prometheus metrics, served at ``/metrics``.

Every label value comes from a bounded set: vendor names and actions the loaded plugins declare,
effects, the policy's rule names, and fixed reason words. Stream names, keys and addresses never
become labels; they would make the series count grow with the audience.

Each app owns its own registry, so several apps in one process (as in the tests) do not collide.
With ``castgate serve --workers N`` the workers write to ``PROMETHEUS_MULTIPROC_DIR``, which
``serve`` creates, and a scrape of any worker sums them all.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from castgate.events import Decision, Event
from castgate.vendor import Vendor

#: Decision latency buckets, in seconds: a decision should take well under a millisecond, and
#: the vendor's own webhook timeout (OME, Nimble) is seconds.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5)

#: Why a hook request was refused before it reached a vendor plugin (``refused`` label).
REFUSALS = ("secret", "network", "signature", "rate_limit", "body_too_large")

#: Kinds of error counted by ``castgate_errors_total``.
ERRORS = (
    "malformed",
    "plugin_parse",
    "plugin_render",
    "dependency",
    "state",
    "observer",
)


def _multiprocess() -> bool:
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


class Metrics:
    """The metrics of one castgate app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "castgate_decisions",
            "Decisions by vendor, action, effect, deciding rule and whether a failure decided",
            ["vendor", "action", "effect", "rule", "failed"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "castgate_decision_seconds",
            "Time from a hook request's arrival to its answer being ready",
            ["vendor"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.refused = Counter(
            "castgate_hook_refusals",
            "Hook requests refused before parsing: " + ", ".join(REFUSALS),
            ["reason"],
            registry=self.registry,
        )
        self.errors = Counter(
            "castgate_errors",
            "Errors by kind: " + ", ".join(ERRORS),
            ["kind"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "castgate_policy_reloads",
            "Policy reloads, by result (ok or refused)",
            ["result"],
            registry=self.registry,
        )
        self.state_up = Gauge(
            "castgate_state_up",
            "1 when the session state backend answered the last check, else 0",
            registry=self.registry,
            # Each worker sets it when scraped; the most recent check is the state's health.
            multiprocess_mode="mostrecent",
        )
        self.decision_log_lost = Counter(
            "castgate_decision_log_lost_records",
            "Decision records lost because the decision log could not be written",
            registry=self.registry,
        )
        self.policy_loaded = Gauge(
            "castgate_policy_loaded_timestamp_seconds",
            "When the policy in use was loaded",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self._children: dict[tuple[str, str, str, str, bool], tuple[Counter, Histogram]] = {}
        for reason in REFUSALS:
            self.refused.labels(reason)
        for kind in ERRORS:
            self.errors.labels(kind)
        for result in ("ok", "refused"):
            self.reloads.labels(result)

    def decided(
        self, vendor: Vendor, event: Event, decision: Decision, latency_seconds: float
    ) -> None:
        # A plugin may pass on whatever action its caller names; the label must stay bounded.
        action = event.action if event.action in vendor.actions else "other"
        labels = (vendor.name, action, decision.effect.value, decision.rule or "", decision.failed)
        children = self._children.get(labels)
        if children is None:
            # labels() validates and locks on every call: about half of this method's time.
            # The cache holds no label set the metrics do not already keep.
            children = (
                self.decisions.labels(*labels[:4], "true" if decision.failed else "false"),
                self.latency.labels(vendor.name),
            )
            self._children[labels] = children
        count, latency = children
        count.inc()
        latency.observe(latency_seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The text a scrape receives, and its content type."""
        if _multiprocess():
            combined = CollectorRegistry()
            MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            return generate_latest(combined), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
