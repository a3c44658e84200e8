"""The gRPC server: the ``detection.v1.Detector`` servicer and the process around it.

Start-up order: listen, answer health ``NOT_SERVING`` and detection calls
``UNAVAILABLE`` while the model loads, then switch health to ``SERVING``. On
SIGTERM/SIGINT health turns ``NOT_SERVING`` and new calls are refused with
``UNAVAILABLE`` for ``drain`` seconds while health checks are still answered; then
the listener stops and calls in flight get ``grace`` seconds to finish.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from detector_service import legacy
from detector_service import wire
from detector_service.backends.base import Backend
from detector_service.calls import CallFailed
from detector_service.calls import ModelCalls
from detector_service.config import ServerConfig
from detector_service.decoding import ImageDecoder
from detector_service.inference import InferenceQueue
from detector_service.interceptors import CallInterceptor
from detector_service.metrics import ServerMetrics
from detector_service.pipeline import DetectionPipeline
from detector_service.proto.detection.v1 import detector_pb2
from detector_service.proto.detection.v1 import detector_pb2_grpc
from detector_service.wire import SERVICE_NAME
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

import ctypes
import grpc
import logging
import os
import signal
import threading
import time


log = logging.getLogger("detector_service.server")
# Calls at once beyond the workers and the queue: uploads, model info, reflection.
SPARE_CALLS = 8
# Threads beyond the call limit, so health checks and refusals always find one.
RESERVED_THREADS = 4
# glibc's malloc arenas for the server process, and mallopt's number for that
# setting (M_ARENA_MAX in malloc.h).
MALLOC_ARENAS = 2
M_ARENA_MAX = -8


class DetectorServicer(detector_pb2_grpc.DetectorServicer):
    """``detection.v1.Detector``: wire messages in, the model's answers out."""

    def __init__(self, model: ModelCalls) -> None:
        self.model = model

    def Detect(
        self, request: detector_pb2.DetectRequest, context: grpc.ServicerContext
    ) -> detector_pb2.DetectResponse:
        self.model.check_size(len(request.image))
        options = wire.options_from_proto(request.options)
        return wire.result_to_proto(self.model.detect(request.image, options, context))

    def DetectStream(
        self,
        request_iterator: Iterator[detector_pb2.DetectStreamRequest],
        context: grpc.ServicerContext,
    ) -> detector_pb2.DetectResponse:
        first, data = self.model.receive(
            request_iterator, lambda message: message.chunk, context
        )
        if first is None:
            raise CallFailed(grpc.StatusCode.INVALID_ARGUMENT, "the stream was empty")
        options = wire.options_from_proto(first.options)
        return wire.result_to_proto(self.model.detect(data, options, context))

    def GetModelInfo(
        self, request: detector_pb2.GetModelInfoRequest, context: grpc.ServicerContext
    ) -> detector_pb2.ModelInfo:
        return wire.model_info_to_proto(self.model.model_info())


class DetectorServer:
    """One server process's parts: gRPC server, health, model, workers, metrics."""

    def __init__(
        self, config: ServerConfig, load_backend: Callable[[], Backend]
    ) -> None:
        self.config = config
        self._load_backend = load_backend
        self.metrics = ServerMetrics()
        self.model = ModelCalls(config.max_message_bytes, config.max_call_seconds)
        self.interceptor = CallInterceptor(
            self.metrics,
            limit=config.workers + config.queue_size + SPARE_CALLS,
            max_call_seconds=config.max_call_seconds,
            token=config.token,
        )
        self.health = health.HealthServicer()
        self.queue: InferenceQueue | None = None
        self.stopping = threading.Event()
        self.port = 0
        self.server = self._build()

    def _build(self) -> grpc.Server:
        config = self.config
        message_limit = config.max_message_bytes + wire.ENVELOPE_BYTES
        server = grpc.server(
            ThreadPoolExecutor(
                max_workers=self.interceptor.limit + RESERVED_THREADS,
                thread_name_prefix="grpc",
            ),
            interceptors=[self.interceptor],
            options=[
                ("grpc.max_receive_message_length", message_limit),
                ("grpc.max_send_message_length", message_limit),
                ("grpc.so_reuseport", 0),
            ],
        )
        detector_pb2_grpc.add_DetectorServicer_to_server(
            DetectorServicer(self.model), server
        )
        legacy.add_to_server(self.model, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                legacy.SERVICE_NAME,
                health.SERVICE_NAME,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if config.tls:
            credentials = grpc.ssl_server_credentials(
                [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())]
            )
            self.port = server.add_secure_port(config.address, credentials)
        else:
            self.port = server.add_insecure_port(config.address)
        if not self.port:
            raise OSError(f"cannot listen on {config.address}")
        return server

    def _set_health(self, status: int) -> None:
        for name in ("", SERVICE_NAME, legacy.SERVICE_NAME):
            self.health.set(name, status)

    def start(self) -> None:
        self.server.start()
        if self.config.metrics_port:
            self.metrics.serve(self.config.metrics_port)
        log.info(
            "listening",
            extra={
                "fields": {
                    "address": f"{self.config.host}:{self.port}",
                    "tls": self.config.tls,
                    "token": bool(self.config.token),
                    "metrics_port": self.config.metrics_port,
                }
            },
        )

    def load_model(self) -> None:
        """Load the backend, start the workers and report SERVING."""
        config = self.config
        backend = self._load_backend()
        info = backend.info
        decoder = ImageDecoder(
            max_bytes=config.max_message_bytes,
            max_pixels=config.max_pixels,
            target=(info.input_width, info.input_height),
        )
        pipeline = DetectionPipeline(backend, decoder, config.min_score)
        self.queue = InferenceQueue(
            pipeline,
            workers=config.workers,
            queue_size=config.queue_size,
            on_depth=self.metrics.queue_depth.set,
            on_skip=self.metrics.skipped.inc,
        )
        self.model.model_loaded(self.queue, info)
        self.metrics.set_model(info)
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "serving",
            extra={
                "fields": {
                    "model": info.name,
                    "version": info.version,
                    "framework": info.framework,
                    "workers": config.workers,
                    "queue_size": config.queue_size,
                }
            },
        )

    def stop(self) -> None:
        """Report NOT_SERVING and refuse new calls while health still answers for
        ``drain`` seconds, then stop listening and let calls in flight finish."""
        config = self.config
        fields = {"drain_s": config.drain, "grace_s": config.grace}
        log.info("stopping", extra={"fields": fields})
        self.health.enter_graceful_shutdown()
        self.interceptor.closing.set()
        # Probes and balancers see NOT_SERVING and move away before the port closes.
        time.sleep(config.drain)
        self.server.stop(config.grace).wait()
        if self.queue is not None:
            self.queue.close()
        log.info("stopped")


def limit_malloc_arenas() -> bool:
    """Cap glibc's malloc arenas at :data:`MALLOC_ARENAS`, unless the environment's
    ``MALLOC_ARENA_MAX`` says otherwise; whether the cap was set.

    glibc gives threads that allocate at once arenas of their own (up to 8 per
    core) and keeps what they freed in each: with uploads read on many threads the
    server held about 90 MB more than with 2 arenas, at the same speed
    (docs/benchmarks.md). Without glibc (musl, macOS) there is nothing to cap.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return mallopt is not None and mallopt(M_ARENA_MAX, MALLOC_ARENAS) == 1


def serve(config: ServerConfig, load_backend: Callable[[], Backend]) -> int:
    """Run a server until SIGTERM or SIGINT; the process's exit status."""
    limit_malloc_arenas()  # before the server's threads exist
    server = DetectorServer(config, load_backend)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.stopping.set())
    server.start()
    try:
        server.load_model()
    except Exception as exc:
        log.error("model not loaded", extra={"fields": {"error": str(exc)}})
        server.stop()
        return 2
    server.stopping.wait()
    server.stop()
    return 0
