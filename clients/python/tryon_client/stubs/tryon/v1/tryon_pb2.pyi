from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_UNSPECIFIED: _ClassVar[ImageFormat]
    IMAGE_FORMAT_JPEG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_PNG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_WEBP: _ClassVar[ImageFormat]
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
IMAGE_FORMAT_JPEG: ImageFormat
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat

class OutputOptions(_message.Message):
    __slots__ = ("format", "quality", "max_width", "max_height")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    MAX_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MAX_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    format: ImageFormat
    quality: int
    max_width: int
    max_height: int
    def __init__(self, format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ..., max_width: _Optional[int] = ..., max_height: _Optional[int] = ...) -> None: ...

class TryOnRequest(_message.Message):
    __slots__ = ("person_image", "garment_sku", "output", "unit_id")
    PERSON_IMAGE_FIELD_NUMBER: _ClassVar[int]
    GARMENT_SKU_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    UNIT_ID_FIELD_NUMBER: _ClassVar[int]
    person_image: bytes
    garment_sku: str
    output: OutputOptions
    unit_id: str
    def __init__(self, person_image: _Optional[bytes] = ..., garment_sku: _Optional[str] = ..., output: _Optional[_Union[OutputOptions, _Mapping]] = ..., unit_id: _Optional[str] = ...) -> None: ...

class TryOnManyRequest(_message.Message):
    __slots__ = ("person_image", "garment_skus", "output", "unit_id")
    PERSON_IMAGE_FIELD_NUMBER: _ClassVar[int]
    GARMENT_SKUS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    UNIT_ID_FIELD_NUMBER: _ClassVar[int]
    person_image: bytes
    garment_skus: _containers.RepeatedScalarFieldContainer[str]
    output: OutputOptions
    unit_id: str
    def __init__(self, person_image: _Optional[bytes] = ..., garment_skus: _Optional[_Iterable[str]] = ..., output: _Optional[_Union[OutputOptions, _Mapping]] = ..., unit_id: _Optional[str] = ...) -> None: ...

class TryOnResponse(_message.Message):
    __slots__ = ("image", "mime_type", "garment_sku", "garment_revision", "model_name", "model_version", "confidence", "timings_ms", "width", "height", "batch_size", "person_cached", "tryon_id")
    class TimingsMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    GARMENT_SKU_FIELD_NUMBER: _ClassVar[int]
    GARMENT_REVISION_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_MS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    PERSON_CACHED_FIELD_NUMBER: _ClassVar[int]
    TRYON_ID_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    mime_type: str
    garment_sku: str
    garment_revision: int
    model_name: str
    model_version: str
    confidence: float
    timings_ms: _containers.ScalarMap[str, float]
    width: int
    height: int
    batch_size: int
    person_cached: bool
    tryon_id: str
    def __init__(self, image: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., garment_sku: _Optional[str] = ..., garment_revision: _Optional[int] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., confidence: _Optional[float] = ..., timings_ms: _Optional[_Mapping[str, float]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., batch_size: _Optional[int] = ..., person_cached: _Optional[bool] = ..., tryon_id: _Optional[str] = ...) -> None: ...

class ListGarmentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Garment(_message.Message):
    __slots__ = ("sku", "name", "category", "brand", "colour", "revision")
    SKU_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    COLOUR_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    sku: str
    name: str
    category: str
    brand: str
    colour: str
    revision: int
    def __init__(self, sku: _Optional[str] = ..., name: _Optional[str] = ..., category: _Optional[str] = ..., brand: _Optional[str] = ..., colour: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class ListGarmentsResponse(_message.Message):
    __slots__ = ("garments", "next_page_token")
    GARMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    garments: _containers.RepeatedCompositeFieldContainer[Garment]
    next_page_token: str
    def __init__(self, garments: _Optional[_Iterable[_Union[Garment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
