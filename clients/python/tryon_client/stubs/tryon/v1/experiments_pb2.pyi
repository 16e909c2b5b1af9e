import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AssignRequest(_message.Message):
    __slots__ = ("experiment_key", "unit_id")
    EXPERIMENT_KEY_FIELD_NUMBER: _ClassVar[int]
    UNIT_ID_FIELD_NUMBER: _ClassVar[int]
    experiment_key: str
    unit_id: str
    def __init__(self, experiment_key: _Optional[str] = ..., unit_id: _Optional[str] = ...) -> None: ...

class AssignResponse(_message.Message):
    __slots__ = ("arm", "in_experiment", "bucket")
    ARM_FIELD_NUMBER: _ClassVar[int]
    IN_EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    arm: str
    in_experiment: bool
    bucket: float
    def __init__(self, arm: _Optional[str] = ..., in_experiment: _Optional[bool] = ..., bucket: _Optional[float] = ...) -> None: ...

class LineItem(_message.Message):
    __slots__ = ("sku", "quantity", "unit_price")
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    sku: str
    quantity: int
    unit_price: float
    def __init__(self, sku: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[float] = ...) -> None: ...

class Purchase(_message.Message):
    __slots__ = ("order_id", "items")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    items: _containers.RepeatedCompositeFieldContainer[LineItem]
    def __init__(self, order_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[LineItem, _Mapping]]] = ...) -> None: ...

class Return(_message.Message):
    __slots__ = ("order_id", "sku", "quantity")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    sku: str
    quantity: int
    def __init__(self, order_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("event_id", "unit_id", "time", "purchase")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    UNIT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_FIELD_NUMBER: _ClassVar[int]
    RETURN_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    unit_id: str
    time: _timestamp_pb2.Timestamp
    purchase: Purchase
    def __init__(self, event_id: _Optional[str] = ..., unit_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., purchase: _Optional[_Union[Purchase, _Mapping]] = ..., **kwargs) -> None: ...

class RecordEventsRequest(_message.Message):
    __slots__ = ("experiment_key", "events")
    EXPERIMENT_KEY_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    experiment_key: str
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, experiment_key: _Optional[str] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class RecordEventsResponse(_message.Message):
    __slots__ = ("stored", "duplicates")
    STORED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    stored: int
    duplicates: int
    def __init__(self, stored: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class GetResultsRequest(_message.Message):
    __slots__ = ("experiment_key",)
    EXPERIMENT_KEY_FIELD_NUMBER: _ClassVar[int]
    experiment_key: str
    def __init__(self, experiment_key: _Optional[str] = ...) -> None: ...

class ArmResult(_message.Message):
    __slots__ = ("name", "units", "buyers", "items_bought", "items_returned", "return_rate", "conversion", "revenue_per_unit", "tryons")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    BUYERS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_BOUGHT_FIELD_NUMBER: _ClassVar[int]
    ITEMS_RETURNED_FIELD_NUMBER: _ClassVar[int]
    RETURN_RATE_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FIELD_NUMBER: _ClassVar[int]
    REVENUE_PER_UNIT_FIELD_NUMBER: _ClassVar[int]
    TRYONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    units: int
    buyers: int
    items_bought: int
    items_returned: int
    return_rate: float
    conversion: float
    revenue_per_unit: float
    tryons: int
    def __init__(self, name: _Optional[str] = ..., units: _Optional[int] = ..., buyers: _Optional[int] = ..., items_bought: _Optional[int] = ..., items_returned: _Optional[int] = ..., return_rate: _Optional[float] = ..., conversion: _Optional[float] = ..., revenue_per_unit: _Optional[float] = ..., tryons: _Optional[int] = ...) -> None: ...

class Estimate(_message.Message):
    __slots__ = ("effect", "ci_low", "ci_high", "p_value")
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    def __init__(self, effect: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., p_value: _Optional[float] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("arm", "metric", "absolute", "relative")
    ARM_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    ABSOLUTE_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_FIELD_NUMBER: _ClassVar[int]
    arm: str
    metric: str
    absolute: Estimate
    relative: Estimate
    def __init__(self, arm: _Optional[str] = ..., metric: _Optional[str] = ..., absolute: _Optional[_Union[Estimate, _Mapping]] = ..., relative: _Optional[_Union[Estimate, _Mapping]] = ...) -> None: ...

class GetResultsResponse(_message.Message):
    __slots__ = ("experiment", "srm_p_value", "arms", "comparisons", "unknown_skus")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    SRM_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_SKUS_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    srm_p_value: float
    arms: _containers.RepeatedCompositeFieldContainer[ArmResult]
    comparisons: _containers.RepeatedCompositeFieldContainer[Comparison]
    unknown_skus: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, experiment: _Optional[str] = ..., srm_p_value: _Optional[float] = ..., arms: _Optional[_Iterable[_Union[ArmResult, _Mapping]]] = ..., comparisons: _Optional[_Iterable[_Union[Comparison, _Mapping]]] = ..., unknown_skus: _Optional[_Iterable[str]] = ...) -> None: ...
