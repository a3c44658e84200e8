"""Prometheus metrics of one server, in a registry of its own."""

from __future__ import annotations

from detector_service.types import ModelInfo
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import Info
from prometheus_client import start_http_server


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServerMetrics:
    """Requests, latency, errors, queue depth and the loaded model."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "detector_requests",
            "Calls answered, by method and gRPC status code.",
            ["method", "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "detector_errors",
            "Calls that failed, by gRPC status code.",
            ["code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "detector_request_seconds",
            "Time from receiving a call to answering it.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "detector_calls_in_progress",
            "Calls received and not yet answered.",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "detector_queue_depth",
            "Calls waiting for an inference worker.",
            registry=self.registry,
        )
        self.skipped = Counter(
            "detector_skipped",
            "Queued calls dropped unrun: their caller had gone (deadline, cancel).",
            registry=self.registry,
        )
        self.model = Info("detector_model", "The loaded model.", registry=self.registry)

    def observe(self, method: str, code: str, seconds: float) -> None:
        self.requests.labels(method, code).inc()
        self.latency.labels(method).observe(seconds)
        if code != "OK":
            self.errors.labels(code).inc()

    def set_model(self, info: ModelInfo) -> None:
        self.model.info(
            {
                "name": info.name,
                "version": info.version,
                "framework": info.framework,
                "input_size": f"{info.input_width}x{info.input_height}",
            }
        )

    def serve(self, port: int) -> None:
        """Serve the metrics over HTTP on 127.0.0.1 only, for local scraping."""
        start_http_server(port, addr="127.0.0.1", registry=self.registry)
