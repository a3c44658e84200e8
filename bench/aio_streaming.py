"""Would ``grpc.aio`` serve the streaming path with fewer threads, and as fast?

Side by side in one run: the threaded server (``detector-service serve``, as
shipped) and an asyncio prototype of its streaming methods (``DetectStream`` and
the 2018 ``MLServer/predict``, below: same decoder, pipeline, inference queue, byte
limit and call time bound), each in its own process with the onnx backend, one
inference worker and a queue of 32. Measured on both in turn: sequential latency
of both methods, 8 concurrent clients, and 16 slow uploads at once (8 chunks, 50
ms apart); the server process's thread count (peak, sampled every 10 ms) and RSS.
Medians over rounds and repeats; every sample in bench/results/aio.json, the
table on stdout (docs/benchmarks.md).

    .venv/bin/python bench/aio_streaming.py [--rounds 20] [--repeats 3]
"""

from __future__ import annotations

from bench import big_jpeg
from bench import RESULTS
from bench import ROOT
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import UTC
from detector_service.launcher import DetectorProcess
from detector_service.proto.detection.v1 import detector_pb2
from detector_service.proto.detection.v1 import detector_pb2_grpc
from detector_service.proto.legacy import mlserver_pb2
from detector_service.proto.legacy import mlserver_pb2_grpc
from pathlib import Path
from timing import summary

import argparse
import asyncio
import grpc
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time


CHUNK = 1 << 20
LIMIT = 32 << 20
MAX_CALL_SECONDS = 60.0
CLIENTS = 8
SLOW_UPLOADS = 16
# Room for every slow upload in the queue, in both servers.
QUEUE_SIZE = 32


# -- the asyncio prototype ---------------------------------------------------------


def serve_aio(port: int, model_dir: Path) -> None:
    """An asyncio server of the two streaming methods (no auth, health, metrics),
    with the malloc arenas capped like the real server's."""
    from detector_service.server import limit_malloc_arenas

    limit_malloc_arenas()
    from detector_service import wire
    from detector_service.backends import load_backend
    from detector_service.config import ServerConfig
    from detector_service.decoding import ImageDecoder
    from detector_service.decoding import too_many_bytes
    from detector_service.inference import InferenceQueue
    from detector_service.pipeline import DetectionPipeline
    from detector_service.types import DetectOptions

    config = ServerConfig()
    backend = load_backend("onnx", "yolov3-tiny", model_dir)
    info = backend.info
    decoder = ImageDecoder(
        config.max_message_bytes,
        config.max_pixels,
        (info.input_width, info.input_height),
    )
    pipeline = DetectionPipeline(backend, decoder, config.min_score)
    queue = InferenceQueue(pipeline, workers=1, queue_size=QUEUE_SIZE)

    async def receive(messages, chunk, context) -> tuple[object, bytes]:
        first, parts, size = None, [], 0
        async for message in messages:
            first = message if first is None else first
            part = chunk(message)
            size += len(part)
            if size > config.max_message_bytes:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    too_many_bytes(config.max_message_bytes),
                )
            parts.append(part)
        return first, b"".join(parts)

    async def detect(messages, chunk, context, options_of):
        budget = min(context.time_remaining() or MAX_CALL_SECONDS, MAX_CALL_SECONDS)
        try:
            async with asyncio.timeout(budget):
                first, data = await receive(messages, chunk, context)
                options = options_of(first)
                future = queue.submit(data, options, lambda: True)
                return await asyncio.wrap_future(future)
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "too slow")

    class Detector(detector_pb2_grpc.DetectorServicer):
        async def DetectStream(self, request_iterator, context):
            result = await detect(
                request_iterator,
                lambda m: m.chunk,
                context,
                lambda first: wire.options_from_proto(first.options),
            )
            return wire.result_to_proto(result)

    class MLServer(mlserver_pb2_grpc.MLServerServicer):
        async def predict(self, request_iterator, context):
            result = await detect(
                request_iterator,
                lambda m: m.buffer,
                context,
                lambda first: DetectOptions(),
            )
            return wire.legacy_reply(result.detections)

    async def main() -> None:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", LIMIT + wire.ENVELOPE_BYTES),
                ("grpc.max_send_message_length", LIMIT + wire.ENVELOPE_BYTES),
                ("grpc.so_reuseport", 0),
            ]
        )
        detector_pb2_grpc.add_DetectorServicer_to_server(Detector(), server)
        mlserver_pb2_grpc.add_MLServerServicer_to_server(MLServer(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        print("listening", flush=True)
        await server.wait_for_termination()

    asyncio.run(main())


# -- the measurement ---------------------------------------------------------------


def chunks(data: bytes, pause: float = 0.0, size: int = CHUNK) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        if start and pause:
            time.sleep(pause)
        yield data[start : start + size]


def detect_stream(channel: grpc.Channel, data: bytes, **kw) -> None:
    stub = detector_pb2_grpc.DetectorStub(channel)
    requests = (detector_pb2.DetectStreamRequest(chunk=c) for c in chunks(data, **kw))
    reply = stub.DetectStream(requests, timeout=MAX_CALL_SECONDS)
    assert reply.detections, "no detections: not the dog photo?"


def predict(channel: grpc.Channel, data: bytes, **kw) -> None:
    stub = mlserver_pb2_grpc.MLServerStub(channel)
    requests = (mlserver_pb2.Chunk(buffer=c) for c in chunks(data, **kw))
    reply = stub.predict(requests, timeout=MAX_CALL_SECONDS)
    assert reply.classes, "no detections: not the dog photo?"


class Probe:
    """Samples a process's thread count every 10 ms; reads its RSS."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def status(self, name: str) -> int:
        """A number from /proc/PID/status (``Threads``, ``VmRSS`` in kB, ...)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
        raise KeyError(name)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.status("Threads"))
            time.sleep(0.01)

    def __enter__(self) -> Probe:
        self.peak = self.status("Threads")
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._stop.clear()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclass
class Server:
    name: str
    address: str
    probe: Probe
    channel: grpc.Channel | None = None
    samples: dict = field(default_factory=dict)

    def sample(self, key: str, value: float) -> None:
        self.samples.setdefault(key, []).append(value)


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def concurrent(server: Server, call, clients: int, per_client: int, **kw) -> None:
    """``clients`` channels calling at once; their median latency, the images per
    second and the server's peak thread count, as one sample each."""
    channels = [grpc.insecure_channel(server.address) for _ in range(clients)]

    def run(channel: grpc.Channel) -> list[float]:
        samples = []
        for _ in range(per_client):
            started = time.perf_counter()
            call(channel, DATA, **kw)
            samples.append(ms_since(started))
        return samples

    started = time.perf_counter()
    with server.probe, ThreadPoolExecutor(clients) as pool:
        latencies = [s for samples in pool.map(run, channels) for s in samples]
    wall = time.perf_counter() - started
    for channel in channels:
        channel.close()
    key = call.__name__ + f"_x{clients}"
    server.sample(key + "_median_ms", summary(latencies)["median_ms"])
    server.sample(key + "_images_per_s", len(latencies) / wall)
    server.sample(key + "_peak_threads", server.probe.peak)


def in_turn(servers: list[Server], turn: int) -> list[Server]:
    first = turn % len(servers)
    return servers[first:] + servers[:first]


def measure(servers: list[Server], rounds: int, repeats: int) -> None:
    """Every measure taken on all servers in turn (the first one rotating), so
    that other load on the machine weighs on all alike."""
    for server in servers:
        server.channel = grpc.insecure_channel(server.address)
        for call in (detect_stream, predict):
            call(server.channel, DATA)  # connect, warm up
            call(server.channel, DATA)
        server.sample("idle_threads", server.probe.status("Threads"))
    for turn in range(rounds):
        for server in in_turn(servers, turn):
            with server.probe:
                for call in (detect_stream, predict):
                    started = time.perf_counter()
                    call(server.channel, DATA)
                    server.sample(call.__name__ + "_ms", ms_since(started))
            server.sample("sequential_peak_threads", server.probe.peak)
    for turn in range(repeats):
        for server in in_turn(servers, turn):
            concurrent(server, detect_stream, CLIENTS, 3)
            # 8 chunks of 256 KiB, 50 ms apart: uploads in progress at once.
            concurrent(server, predict, SLOW_UPLOADS, 1, pause=0.05, size=CHUNK // 4)
    for server in servers:
        server.channel.close()
        server.sample("rss_mb", server.probe.status("VmRSS") / 1024)
        server.sample("peak_rss_mb", server.probe.status("VmHWM") / 1024)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_aio(model_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-aio", str(port)],
        env={**os.environ, "DETECTOR_MODEL_DIR": str(model_dir)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "listening":
        raise RuntimeError("the aio prototype did not start")
    return process, f"127.0.0.1:{port}"


ROWS = (
    ("`DetectStream`, median ms", "detect_stream_ms"),
    ("`MLServer/predict`, median ms", "predict_ms"),
    (
        f"{CLIENTS} clients `DetectStream`, median ms",
        f"detect_stream_x{CLIENTS}_median_ms",
    ),
    (f"{CLIENTS} clients, images/s", f"detect_stream_x{CLIENTS}_images_per_s"),
    (
        f"{SLOW_UPLOADS} slow uploads `predict`, median ms",
        f"predict_x{SLOW_UPLOADS}_median_ms",
    ),
    ("threads, idle", "idle_threads"),
    ("threads, peak, sequential calls", "sequential_peak_threads"),
    (f"threads, peak, {CLIENTS} clients", f"detect_stream_x{CLIENTS}_peak_threads"),
    (
        f"threads, peak, {SLOW_UPLOADS} slow uploads",
        f"predict_x{SLOW_UPLOADS}_peak_threads",
    ),
    ("RSS at the end, MB", "rss_mb"),
    ("peak RSS, MB", "peak_rss_mb"),
)


def table(medians: dict[str, dict[str, float]]) -> str:
    """One column per server, then each one's ratio to the threaded server."""
    names = list(medians)
    base = medians["threaded"]
    others = [name for name in names if name != "threaded"]
    head = " | ".join(names) + "".join(f" | {n} / threaded" for n in others)
    lines = [f"| measure | {head} |", "|---" * (1 + len(names) + len(others)) + "|"]
    for label, key in ROWS:
        values = " | ".join(f"{medians[n][key]:.1f}" for n in names)
        ratios = "".join(f" | {medians[n][key] / base[key]:.2f}" for n in others)
        lines.append(f"| {label} | {values}{ratios} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--serve-aio", type=int, metavar="PORT")
    args = parser.parse_args()
    model_dir = Path(os.environ.get("DETECTOR_MODEL_DIR") or ROOT / "var" / "models")
    if args.serve_aio:
        serve_aio(args.serve_aio, model_dir)
        return 0
    samples_dir = Path(os.environ.get("SAMPLES_DIR") or ROOT / "var" / "samples")
    RESULTS.mkdir(parents=True, exist_ok=True)
    global DATA
    DATA = big_jpeg(samples_dir).read_bytes()
    report: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "bench/aio_streaming.py " + " ".join(sys.argv[1:]),
        "image_bytes": len(DATA),
        "load_average_before": os.getloadavg(),
    }
    queue = ["--queue-size", str(QUEUE_SIZE)]
    threaded = DetectorProcess("onnx", "yolov3-tiny", model_dir, extra_args=queue)
    # The server caps glibc's malloc arenas at 2 (server.limit_malloc_arenas);
    # glibc's default, 8 per core, for comparison.
    arenas = DetectorProcess(
        "onnx",
        "yolov3-tiny",
        model_dir,
        extra_args=queue,
        env={"MALLOC_ARENA_MAX": "16"},
    )
    threaded.start()
    arenas.start()
    aio, aio_address = start_aio(model_dir)
    try:
        assert threaded.process is not None and arenas.process is not None
        servers = [
            Server("threaded", threaded.address, Probe(threaded.process.pid)),
            Server("aio", aio_address, Probe(aio.pid)),
            Server("threaded, 16 arenas", arenas.address, Probe(arenas.process.pid)),
        ]
        measure(servers, args.rounds, args.repeats)
    finally:
        threaded.stop()
        arenas.stop()
        aio.terminate()
        aio.wait(30)
    report["load_average_after"] = os.getloadavg()
    report["samples"] = {server.name: server.samples for server in servers}
    medians = {
        server.name: {k: statistics.median(v) for k, v in server.samples.items()}
        for server in servers
    }
    report["medians"] = medians
    (RESULTS / "aio.json").write_text(json.dumps(report, indent=2))
    print(table(medians))
    print(
        f"load average before/after: {report['load_average_before'][0]:.2f} / "
        f"{report['load_average_after'][0]:.2f}; {args.rounds} sequential rounds, "
        f"{args.repeats} concurrent repeats"
    )
    return 0


DATA = b""

if __name__ == "__main__":
    sys.exit(main())
