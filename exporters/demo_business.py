"""demo-business: business-level metrics of a sales / recommendation / voice-commerce team.

Each simulated event stream runs at its own average rate (events per second)
and is sampled every tick, so counters move smoothly but not in lock-step.
"""

from __future__ import annotations

from typing import Dict

from prometheus_client import Counter, Gauge, Histogram

from .common import Exporter, FaultField, clamp, poisson, weighted_choice

CONFIDENCE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))  # 0.1 .. 1.0
SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

#: Average event rates (per second) at activity 1.0.
RATES = {
    "sync": 0.5,            # one CRM sales sync every ~2 s
    "profile": 3.0,
    "recommendation": 2.0,
    "voice": 1.0,
    "meeting": 0.05,        # a meeting summary every ~20 s
    "chat": 0.5,
}

SYNC_ERROR_TYPES = {"timeout": 0.5, "rate_limited": 0.3, "auth": 0.2}
#: Application errors by type (errors_total{type, severity}); the inventory's NewErrorType watches `type`.
ERROR_TYPES = {"validation": 0.5, "not_found": 0.3, "upstream": 0.2}
NEW_ERROR_TYPE = "payment_declined"  # the type the new_error_type fault introduces
ERROR_RATE = 0.2  # application errors per second at activity 1.0 and no fault
VOICE_INTENTS = {"search_product": 0.35, "add_to_cart": 0.25, "checkout": 0.15,
                 "order_status": 0.2, "cancel_order": 0.05}
CHAT_MODELS = {"gpt-4o-mini": 0.6, "claude-3-haiku": 0.4}

BUSINESS_FAULT_FIELDS = {
    "sync_stalled": FaultField(bool, False, help="sales_synced_total stops increasing"),
    "confidence": FaultField(float, 0.8, 0.0, 1.0,
                             help="centre of the recommendation/intent confidence distributions"),
    "conversion": FaultField(float, 0.3, 0.0, 1.0, help="orders created per voice command"),
    "new_error_type": FaultField(bool, False, help=f"application errors of a type never seen before ({NEW_ERROR_TYPE})"),
}


class DemoBusiness(Exporter):
    name = "demo-business"
    description = "business KPIs: sales sync, profiles, recommendations, voice commerce, chat"
    extra_fault_fields = BUSINESS_FAULT_FIELDS
    tick_interval = 0.2

    def setup_metrics(self) -> None:
        r = self.registry
        self.sales_synced = Counter(
            "sales_synced_total", "Sales records synchronised from the CRM.", registry=r)
        self.sync_latency = Histogram(
            "sync_latency_seconds", "Duration of one CRM sync batch in seconds.",
            buckets=SYNC_BUCKETS, registry=r)
        self.sync_errors = Counter(
            "sync_errors_total", "Failed CRM sync batches, by error type.",
            ["error_type"], registry=r)
        self.last_sync = Gauge(
            "sync_last_success_timestamp_seconds",
            "Unix time of the last successful CRM sync batch.", registry=r)
        self.profile_requests = Counter(
            "profile_requests_total", "Customer profile lookups.", registry=r)
        self.profile_cache_hits = Counter(
            "profile_cache_hits_total", "Customer profile lookups served from cache.", registry=r)
        self.recommendations = Counter(
            "recommendations_served_total", "Product recommendations served.", registry=r)
        self.recommendation_confidence = Histogram(
            "recommendation_confidence", "Model confidence of served recommendations (0-1).",
            buckets=CONFIDENCE_BUCKETS, registry=r)
        self.voice_commands = Counter(
            "voice_commands_total", "Voice commands received, by recognised intent.",
            ["intent"], registry=r)
        self.orders_created = Counter(
            "orders_created_total", "Orders created through voice commerce.", registry=r)
        self.intent_confidence = Histogram(
            "intent_confidence", "Confidence of voice intent recognition (0-1).",
            buckets=CONFIDENCE_BUCKETS, registry=r)
        self.meetings = Counter(
            "meetings_processed_total", "Sales meetings transcribed and summarised.", registry=r)
        self.chat_queries = Counter(
            "chat_queries_total", "Assistant chat queries, by model and status.",
            ["model", "status"], registry=r)

        self.errors = Counter(
            "errors", "Application errors, by type and severity.", ["type", "severity"], registry=r)
        for error_type in ERROR_TYPES:
            self.errors.labels(error_type, "error")
        for error_type in SYNC_ERROR_TYPES:
            self.sync_errors.labels(error_type)
        for intent in VOICE_INTENTS:
            self.voice_commands.labels(intent)
        for model in CHAT_MODELS:
            for status in ("success", "error"):
                self.chat_queries.labels(model, status)
        self.last_sync.set(self.started_at)

    def _count(self, stream: str, dt: float) -> int:
        return poisson(self.rng, RATES[stream] * self.activity * dt)

    def _confidence(self, centre: float, spread: float) -> float:
        return clamp(self.rng.gauss(centre, spread), 0.0, 1.0)

    def tick(self, now: float, dt: float) -> None:
        f: Dict = self.faults.snapshot()
        error_ratio = f["error_ratio"]

        if not f["sync_stalled"]:
            for _ in range(self._count("sync", dt)):
                self.sync_latency.observe(
                    max(0.01, self.rng.lognormvariate(-1.0, 0.5)) + f["latency_seconds"])
                if self.rng.random() < error_ratio:
                    self.sync_errors.labels(weighted_choice(self.rng, SYNC_ERROR_TYPES)).inc()
                else:
                    self.sales_synced.inc(self.rng.randint(3, 25))
                    self.last_sync.set(now)

        for _ in range(self._count("profile", dt)):
            self.profile_requests.inc()
            if self.rng.random() < 0.72:
                self.profile_cache_hits.inc()

        for _ in range(self._count("recommendation", dt)):
            self.recommendations.inc()
            self.recommendation_confidence.observe(self._confidence(f["confidence"], 0.1))

        for _ in range(self._count("voice", dt)):
            self.voice_commands.labels(weighted_choice(self.rng, VOICE_INTENTS)).inc()
            self.intent_confidence.observe(self._confidence(f["confidence"], 0.08))
            if self.rng.random() < f["conversion"]:
                self.orders_created.inc()

        for _ in range(self._count("meeting", dt)):
            self.meetings.inc()

        for _ in range(poisson(self.rng, ERROR_RATE * self.activity * (1 + 10 * error_ratio) * dt)):
            self.errors.labels(weighted_choice(self.rng, ERROR_TYPES), "error" if self.rng.random() < 0.7 else "warning").inc()
        if f["new_error_type"]:
            self.errors.labels(NEW_ERROR_TYPE, "error").inc()

        for _ in range(self._count("chat", dt)):
            status = "error" if self.rng.random() < error_ratio else "success"
            self.chat_queries.labels(weighted_choice(self.rng, CHAT_MODELS), status).inc()
