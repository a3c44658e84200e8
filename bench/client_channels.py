"""Does the client need more than gRPC's own retries and round robin?

gRPC balances and retries within one channel; a host name needs a channel of its
own (gRPC resolves one name per target), so a client given several host names
holds several channels. This counts failed calls across such channels, with
gRPC's mechanisms alone (the same channel options and retry policy, calls taken
by the channels in turn) against ``DetectorClient`` (which moves a call that
still ends ``UNAVAILABLE`` on to the next channel), in two cases: one name of
three does not resolve; one of two named replicas is killed. Real onnx servers
on 127.0.0.1; results on stdout (docs/benchmarks.md).

    .venv/bin/python bench/client_channels.py [--calls 30]
"""

from __future__ import annotations

from detector_service.client import channel_options
from detector_service.client import channel_targets
from detector_service.client import DetectorClient
from detector_service.errors import DetectorError
from detector_service.launcher import DetectorProcess
from detector_service.proto.detection.v1 import detector_pb2
from detector_service.proto.detection.v1 import detector_pb2_grpc
from pathlib import Path

import argparse
import grpc
import itertools
import os
import statistics
import sys
import time


ROOT = Path(__file__).resolve().parent.parent


def count(call, calls: int) -> dict:
    failed, samples = 0, []
    for _ in range(calls):
        started = time.perf_counter()
        try:
            call()
        except (grpc.RpcError, DetectorError):
            failed += 1
        samples.append((time.perf_counter() - started) * 1000.0)
    return {"failed": failed, "calls": calls, "median_ms": statistics.median(samples)}


def grpc_alone(addresses: list[str], image: bytes, calls: int) -> dict:
    options = channel_options(32 << 20, retries=3, backoff=0.1)
    channels = [grpc.insecure_channel(t, options) for t in channel_targets(addresses)]
    stubs = itertools.cycle(detector_pb2_grpc.DetectorStub(c) for c in channels)
    request = detector_pb2.DetectRequest(image=image)
    try:
        return count(lambda: next(stubs).Detect(request, timeout=10), calls)
    finally:
        for channel in channels:
            channel.close()


def with_client(addresses: list[str], image: bytes, calls: int) -> dict:
    with DetectorClient(addresses, timeout=10) as client:
        return count(lambda: client.detect(image), calls)


def row(case: str, addresses: list[str], image: bytes, calls: int) -> None:
    alone = grpc_alone(addresses, image, calls)
    client = with_client(addresses, image, calls)
    print(
        f"| {case} | {len(channel_targets(addresses))} | "
        f"{alone['failed']} of {calls} (median {alone['median_ms']:.0f} ms) | "
        f"{client['failed']} of {calls} (median {client['median_ms']:.0f} ms) |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    model_dir = Path(os.environ.get("DETECTOR_MODEL_DIR") or ROOT / "var" / "models")
    samples_dir = Path(os.environ.get("SAMPLES_DIR") or ROOT / "var" / "samples")
    image = (samples_dir / "dog.jpg").read_bytes()
    servers = [DetectorProcess("onnx", "yolov3-tiny", model_dir).start() for _ in "ab"]
    print("| case | channels | gRPC alone: failed | client: failed |")
    print("|---|---|---|---|")
    try:
        unresolvable = [
            "no-such-detector.invalid:50051",
            f"localhost:{servers[0].port}",
            f"127.0.0.1:{servers[1].port}",
        ]
        row("1 of 3 names does not resolve", unresolvable, image, args.calls)
        servers[1].stop()  # killed: its port refuses connections from now on
        named = [f"localhost:{s.port}" for s in servers]
        row("1 of 2 named replicas killed", named, image, args.calls)
    finally:
        for server in servers:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
