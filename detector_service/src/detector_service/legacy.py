"""The 2018 demo's ``MLServer/predict``, served by the same model and limits.

The demo's client streams the encoded image in chunks and gets back parallel lists
of boxes (``[y_min, x_min, y_max, x_max]``), classes and confidences.
"""

from __future__ import annotations

from collections.abc import Iterator
from detector_service import wire
from detector_service.calls import CallHandler
from detector_service.proto.legacy import mlserver_pb2
from detector_service.proto.legacy import mlserver_pb2_grpc
from detector_service.types import DetectOptions

import grpc


SERVICE_NAME = mlserver_pb2.DESCRIPTOR.services_by_name["MLServer"].full_name


class LegacyServicer(mlserver_pb2_grpc.MLServerServicer):
    def __init__(self, calls: CallHandler) -> None:
        self.calls = calls

    def predict(
        self,
        request_iterator: Iterator[mlserver_pb2.Chunk],
        context: grpc.ServicerContext,
    ) -> mlserver_pb2.Reply:
        def work(deadline: float) -> mlserver_pb2.Reply:
            _, data = self.calls.receive(
                request_iterator, lambda chunk: chunk.buffer, deadline
            )
            result = self.calls.detect(data, DetectOptions(), context, deadline)
            return wire.legacy_reply(result.detections)

        return self.calls.run("MLServer/predict", context, work)


def add_to_server(calls: CallHandler, server: grpc.Server) -> None:
    mlserver_pb2_grpc.add_MLServerServicer_to_server(LegacyServicer(calls), server)
