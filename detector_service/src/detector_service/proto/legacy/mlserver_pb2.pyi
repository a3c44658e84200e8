from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Chunk(_message.Message):
    __slots__ = ("buffer",)
    BUFFER_FIELD_NUMBER: _ClassVar[int]
    buffer: bytes
    def __init__(self, buffer: _Optional[bytes] = ...) -> None: ...

class Boundingbox(_message.Message):
    __slots__ = ("box",)
    BOX_FIELD_NUMBER: _ClassVar[int]
    box: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, box: _Optional[_Iterable[float]] = ...) -> None: ...

class Reply(_message.Message):
    __slots__ = ("boxes", "classes", "confs")
    BOXES_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    CONFS_FIELD_NUMBER: _ClassVar[int]
    boxes: _containers.RepeatedCompositeFieldContainer[Boundingbox]
    classes: _containers.RepeatedScalarFieldContainer[str]
    confs: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, boxes: _Optional[_Iterable[_Union[Boundingbox, _Mapping]]] = ..., classes: _Optional[_Iterable[str]] = ..., confs: _Optional[_Iterable[float]] = ...) -> None: ...
