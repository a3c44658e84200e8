"""The 2018 demo's ``MLServer/predict``, served by the same model and limits.

The demo's client streams the encoded image in chunks and gets back parallel lists
of boxes (``[y_min, x_min, y_max, x_max]``), classes and confidences.
"""

from __future__ import annotations

from collections.abc import Iterator
from detector_service import wire
from detector_service.calls import ModelCalls
from detector_service.proto.legacy import mlserver_pb2
from detector_service.proto.legacy import mlserver_pb2_grpc
from detector_service.types import DetectOptions

import grpc


SERVICE_NAME = mlserver_pb2.DESCRIPTOR.services_by_name["MLServer"].full_name


class LegacyServicer(mlserver_pb2_grpc.MLServerServicer):
    def __init__(self, model: ModelCalls) -> None:
        self.model = model

    def predict(
        self,
        request_iterator: Iterator[mlserver_pb2.Chunk],
        context: grpc.ServicerContext,
    ) -> mlserver_pb2.Reply:
        _, data = self.model.receive(request_iterator, lambda c: c.buffer, context)
        result = self.model.detect(data, DetectOptions(), context)
        return wire.legacy_reply(result.detections)


def add_to_server(model: ModelCalls, server: grpc.Server) -> None:
    mlserver_pb2_grpc.add_MLServerServicer_to_server(LegacyServicer(model), server)
