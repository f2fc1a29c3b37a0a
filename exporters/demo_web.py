"""demo-web: an HTTP API (orders, users, search) instrumented with RED metrics.

The background activity calls the same request handlers the real routes use,
so simulated and real traffic produce identical metrics.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Dict, Optional, Tuple

from prometheus_client import Counter, Gauge, Histogram

from .common import EvenShare, Exporter, RouteHandler, clamp, weighted_choice

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)
DB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
EXTERNAL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)
AI_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

#: (method, route) -> share of simulated traffic
TRAFFIC_MIX = {
    ("GET", "/api/orders"): 0.35,
    ("POST", "/api/orders"): 0.10,
    ("GET", "/api/users"): 0.30,
    ("GET", "/api/search"): 0.25,
}

DB_POOL_SIZE = 20

#: model -> (share of calls, dollars per 1k tokens, median seconds)
AI_MODELS = {
    "gpt-4o-mini": (0.7, 0.0006, 0.6),
    "claude-3-haiku": (0.3, 0.00125, 0.8),
}

PRODUCTS = ["keyboard", "monitor", "headset", "webcam", "laptop stand", "usb hub", "desk lamp"]


class DemoWeb(Exporter):
    name = "demo-web"
    description = "HTTP API with RED metrics, DB/cache/external-API and AI-model instrumentation"
    tick_interval = 0.05  # ~20 simulated requests per second

    def setup_metrics(self) -> None:
        r = self.registry
        self.http_requests = Counter(
            "http_requests_total", "HTTP requests handled, by method, route and status code.",
            ["method", "route", "status"], registry=r)
        self.http_duration = Histogram(
            "http_request_duration_seconds", "HTTP request latency in seconds.",
            ["method", "route"], buckets=HTTP_BUCKETS, registry=r)
        self.db_duration = Histogram(
            "db_query_duration_seconds", "Database query latency in seconds.",
            ["operation", "table"], buckets=DB_BUCKETS, registry=r)
        self.db_pool_size = Gauge(
            "db_connection_pool_size", "Configured size of the DB connection pool.", registry=r)
        self.db_pool_available = Gauge(
            "db_connection_pool_available", "Idle connections available in the DB pool.",
            registry=r)
        self.cache_hits = Counter("cache_hits_total", "Cache lookups that hit.", registry=r)
        self.cache_misses = Counter("cache_misses_total", "Cache lookups that missed.", registry=r)
        self.external_duration = Histogram(
            "external_api_duration_seconds", "Latency of calls to third-party APIs in seconds.",
            ["api"], buckets=EXTERNAL_BUCKETS, registry=r)
        self.ai_calls = Counter(
            "ai_model_calls_total", "Calls to hosted AI models, by model and outcome.",
            ["model", "status"], registry=r)
        self.ai_tokens = Counter(
            "ai_model_tokens_total", "Tokens consumed by AI model calls.", ["model"], registry=r)
        self.ai_duration = Histogram(
            "ai_model_call_duration_seconds", "AI model call latency in seconds.",
            ["model"], buckets=AI_BUCKETS, registry=r)
        self.ai_cost = Counter(
            "ai_model_cost_dollars_total", "Estimated spend on AI model calls in US dollars.",
            ["model"], registry=r)
        self.errors = Counter(
            "errors_total", "Application errors, by type and severity.",
            ["type", "severity"], registry=r)
        self.active_users = Gauge(
            "active_users", "Users active in the last five minutes.", registry=r)

        # Pre-create the series alerts and dashboards rely on, so rate() works
        # from the first scrape and "no errors yet" is 0 rather than absent.
        for method, route in TRAFFIC_MIX:
            ok = "201" if method == "POST" else "200"
            self.http_requests.labels(method, route, ok)
            self.http_requests.labels(method, route, "500")
            self.http_duration.labels(method, route)
        for model in AI_MODELS:
            for status in ("success", "error"):
                self.ai_calls.labels(model, status)
            self.ai_tokens.labels(model)
            self.ai_cost.labels(model)
            self.ai_duration.labels(model)
        self.errors.labels("internal", "error")
        self.errors.labels("timeout", "warning")
        self.errors.labels("validation", "info")
        for api in ("payments", "geocoding"):
            self.external_duration.labels(api)
        self.db_pool_size.set(DB_POOL_SIZE)
        self.db_pool_available.set(DB_POOL_SIZE)
        self.active_users.set(0)
        self._last_gauges = 0.0
        self._failures = EvenShare()

    # -- building blocks ---------------------------------------------------
    def _lognormal(self, median: float, sigma: float = 0.5) -> float:
        return median * math.exp(self.rng.gauss(0.0, sigma))

    def _db(self, operation: str, table: str, median: float = 0.004) -> float:
        seconds = self._lognormal(median, 0.6)
        self.db_duration.labels(operation, table).observe(seconds)
        return seconds

    def _cache(self, hit_ratio: float) -> bool:
        if self.rng.random() < hit_ratio:
            self.cache_hits.inc()
            return True
        self.cache_misses.inc()
        return False

    def _external(self, api: str, median: float) -> float:
        seconds = self._lognormal(median, 0.4)
        self.external_duration.labels(api).observe(seconds)
        return seconds

    def _ai_call(self, failing: bool) -> Tuple[str, float, bool]:
        model = weighted_choice(self.rng, {m: v[0] for m, v in AI_MODELS.items()})
        _, price, median = AI_MODELS[model]
        seconds = self._lognormal(median, 0.35)
        self.ai_duration.labels(model).observe(seconds)
        if failing:
            self.ai_calls.labels(model, "error").inc()
            return model, seconds, False
        tokens = int(clamp(self.rng.gauss(700, 250), 50, 4000))
        self.ai_calls.labels(model, "success").inc()
        self.ai_tokens.labels(model).inc(tokens)
        self.ai_cost.labels(model).inc(tokens / 1000.0 * price)
        return model, seconds, True

    # -- the API itself --------------------------------------------------------
    def handle_api(self, method: str, route: str, params: Dict[str, str], body: Any,
                   simulated: bool) -> Tuple[int, Any, float]:
        """Serve one API request; record RED metrics; return (status, payload, seconds)."""
        faults = self.faults.snapshot()
        failing = self._failures.pick(faults["error_ratio"])
        seconds = self._lognormal(0.002, 0.3)  # framework overhead
        status, payload = 200, None

        if route == "/api/orders" and method == "GET":
            if not self._cache(0.6):
                seconds += self._db("select", "orders")
            if self.rng.random() < 0.1:
                seconds += self._external("geocoding", 0.08)
            payload = {"orders": [
                {"id": f"ord-{self.rng.randint(10000, 99999)}",
                 "total": round(self.rng.uniform(5, 400), 2),
                 "status": self.rng.choice(["paid", "shipped", "delivered"])}
                for _ in range(self.rng.randint(1, 5))]}
        elif route == "/api/orders" and method == "POST":
            seconds += self._db("select", "users")
            seconds += self._external("payments", 0.15)
            if not failing:
                seconds += self._db("insert", "orders", 0.006)
            status = 201
            payload = {"id": f"ord-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:12]}",
                       "status": "created"}
        elif route == "/api/users":
            if not self._cache(0.85):
                seconds += self._db("select", "users")
            if simulated and self.rng.random() < 0.02:
                status, payload = 404, {"error": "user not found"}
            else:
                uid = params.get("id") or str(self.rng.randint(1, 5000))
                payload = {"users": [{"id": uid, "name": f"user-{uid}",
                                      "plan": self.rng.choice(["free", "pro", "team"])}]}
        elif route == "/api/search":
            query = params.get("q") or self.rng.choice(PRODUCTS)
            if simulated and self.rng.random() < 0.015:
                status, payload = 400, {"error": "query too short"}
                self.errors.labels("validation", "info").inc()
            else:
                seconds += self._db("select", "products", 0.012)
                reranked_by: Optional[str] = None
                if self.rng.random() < 0.2:
                    model, ai_seconds, ok = self._ai_call(failing)
                    seconds += ai_seconds
                    reranked_by = model if ok else None
                results = [p for p in PRODUCTS if query.lower() in p] or self.rng.sample(PRODUCTS, 3)
                payload = {"query": query, "results": results, "reranked_by": reranked_by}
        else:  # pragma: no cover - routes() only registers the above
            status, payload = 404, {"error": "not found"}

        if failing:
            status, payload = 500, {"error": "internal server error"}
            self.errors.labels("internal", "error").inc()
        seconds += faults["latency_seconds"]
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)
        return status, payload, seconds

    def routes(self) -> Dict[Tuple[str, str], RouteHandler]:
        def make(method: str, route: str) -> RouteHandler:
            def handler(params: Dict[str, str], body: Any) -> Tuple[int, Any]:
                status, payload, seconds = self.handle_api(method, route, params, body,
                                                           simulated=False)
                self.sleep(seconds)  # real callers feel the (injected) latency
                return status, payload
            return handler
        return {key: make(*key) for key in TRAFFIC_MIX}

    # -- background activity ------------------------------------------------------
    def tick(self, now: float, dt: float) -> None:
        method, route = weighted_choice(self.rng, TRAFFIC_MIX)
        self.handle_api(method, route, {}, None, simulated=True)
        if now - self._last_gauges >= 1.0:
            self._last_gauges = now
            self._update_gauges(now)

    def _update_gauges(self, now: float) -> None:
        latency = self.faults.get("latency_seconds")
        # Slow requests hold connections longer: by Little's law in-flight ~ rate x latency.
        in_use = self.rng.gauss(3, 1.2) + latency * 20 * self.activity * 0.5
        self.db_pool_available.set(int(DB_POOL_SIZE - clamp(round(in_use), 0, DB_POOL_SIZE)))
        daily = math.sin(2 * math.pi * (now % 600) / 600)  # a compressed "day"
        self.active_users.set(max(0, int(120 + 40 * daily + self.rng.gauss(0, 5))))

