"""ExperimentService over a real loopback server: assignment, events, results, try-on counts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from loopback import SKUS
from tryon_client.stubs.tryon.v1 import experiments_pb2 as pb
from tryon_client.stubs.tryon.v1 import experiments_pb2_grpc
from tryon_client.stubs.tryon.v2 import tryon_pb2, tryon_pb2_grpc

from catalog.database import create_catalog_engine, make_sessionmaker
from tryon.experiments import store
from tryon.experiments.report import build_report


@pytest.fixture()
def experiments(server) -> Iterator[experiments_pb2_grpc.ExperimentServiceStub]:
    with grpc.insecure_channel(server.target) as channel:
        yield experiments_pb2_grpc.ExperimentServiceStub(channel)


@pytest.fixture()
def running_experiment(catalog_url: str) -> str:
    """The key of a new running 50/50 experiment in the server's database."""
    key = f"exp-{uuid.uuid4().hex[:8]}"
    engine = create_catalog_engine(catalog_url)
    with make_sessionmaker(engine).begin() as session:
        store.create_experiment(session, key, [("control", 50), ("tryon", 50)])
        store.start_experiment(session, key)
    engine.dispose()
    return key


def purchase(event_id: str, unit: str, order: str, *items: tuple[str, int, float]) -> pb.Event:
    when = Timestamp()
    when.GetCurrentTime()
    lines = [pb.LineItem(sku=sku, quantity=n, unit_price=price) for sku, n, price in items]
    return pb.Event(
        event_id=event_id,
        unit_id=unit,
        time=when,
        purchase=pb.Purchase(order_id=order, items=lines),
    )


def returned(event_id: str, unit: str, order: str, sku: str, quantity: int) -> pb.Event:
    return pb.Event(
        event_id=event_id,
        unit_id=unit,
        **{"return": pb.Return(order_id=order, sku=sku, quantity=quantity)},
    )


def test_assignment_is_sticky_and_splits_units_across_arms(experiments, running_experiment):
    arms = {}
    for index in range(40):
        request = pb.AssignRequest(experiment_key=running_experiment, unit_id=f"shopper-{index}")
        first, again = experiments.Assign(request), experiments.Assign(request)
        assert first.in_experiment and first.arm == again.arm
        assert 0 <= first.bucket < 1 and first.bucket == again.bucket
        arms[first.arm] = arms.get(first.arm, 0) + 1
    assert set(arms) == {"control", "tryon"}


def test_an_unknown_experiment_is_not_found(experiments):
    with pytest.raises(grpc.RpcError) as error:
        experiments.Assign(pb.AssignRequest(experiment_key="no-such-test", unit_id="u1"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "tryon ab create" in error.value.details()


def test_events_are_stored_once_and_results_match_the_store(
    experiments, running_experiment, catalog_url
):
    units = [f"buyer-{index}" for index in range(6)]
    for unit in units:
        experiments.Assign(pb.AssignRequest(experiment_key=running_experiment, unit_id=unit))
    events = [
        purchase(f"p-{unit}", unit, f"order-{unit}", (SKUS[0], 2, 30.0), (SKUS[1], 1, 20.0))
        for unit in units
    ]
    events.append(returned("r-0", units[0], f"order-{units[0]}", SKUS[0], 1))
    request = pb.RecordEventsRequest(experiment_key=running_experiment, events=events)
    assert experiments.RecordEvents(request) == pb.RecordEventsResponse(stored=7, duplicates=0)
    # A client retrying the whole batch stores nothing twice.
    assert experiments.RecordEvents(request) == pb.RecordEventsResponse(stored=0, duplicates=7)

    results = experiments.GetResults(pb.GetResultsRequest(experiment_key=running_experiment))
    engine = create_catalog_engine(catalog_url)
    with make_sessionmaker(engine).begin() as session:
        expected = build_report(session, running_experiment)
    engine.dispose()
    assert results.experiment == running_experiment
    assert [arm.name for arm in results.arms] == [arm["name"] for arm in expected["arms"]]
    for got, want in zip(results.arms, expected["arms"], strict=True):
        assert got.units == want["units"] and got.items_bought == want["items_bought"]
        assert got.items_returned == want["items_returned"]
        assert got.return_rate == pytest.approx(want["return_rate"] or 0.0)
    assert sum(arm.items_bought for arm in results.arms) == 18
    assert sum(arm.items_returned for arm in results.arms) == 1


def test_results_name_bought_skus_that_the_catalog_lacks(experiments, running_experiment):
    experiments.Assign(pb.AssignRequest(experiment_key=running_experiment, unit_id="u-new"))
    events = [
        purchase("p-new", "u-new", "order-new", (SKUS[0], 1, 10.0), ("NOT-IN-CATALOG", 1, 5.0))
    ]
    request = pb.RecordEventsRequest(experiment_key=running_experiment, events=events)
    assert experiments.RecordEvents(request).stored == 1
    results = experiments.GetResults(pb.GetResultsRequest(experiment_key=running_experiment))
    assert list(results.unknown_skus) == ["NOT-IN-CATALOG"]


def test_a_bad_event_is_named_and_nothing_of_its_batch_is_stored(experiments, running_experiment):
    experiments.Assign(pb.AssignRequest(experiment_key=running_experiment, unit_id="u-bad"))
    good = purchase("p-good", "u-bad", "order-good", (SKUS[0], 1, 10.0))
    bad = returned("r-unknown-order", "u-bad", "order-nobody-placed", SKUS[0], 1)
    request = pb.RecordEventsRequest(experiment_key=running_experiment, events=[good, bad])
    with pytest.raises(grpc.RpcError) as error:
        experiments.RecordEvents(request)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "r-unknown-order" in error.value.details()
    status = rpc_status.from_call(error.value)
    violation = error_details_pb2.BadRequest()
    status.details[0].Unpack(violation)
    assert violation.field_violations[0].field == "r-unknown-order"
    # The good purchase of the refused batch was not stored: sending it alone stores it.
    alone = pb.RecordEventsRequest(experiment_key=running_experiment, events=[good])
    assert experiments.RecordEvents(alone).stored == 1


def test_try_ons_with_a_unit_id_are_counted_for_the_shoppers_arm(
    experiments, running_experiment, stub: tryon_pb2_grpc.TryOnServiceStub, photo
):
    unit = "tries-things-on"
    arm = experiments.Assign(pb.AssignRequest(experiment_key=running_experiment, unit_id=unit))
    response = stub.TryOn(
        tryon_pb2.TryOnRequest(person_image=photo, garment_sku=SKUS[0], unit_id=unit)
    )
    assert response.tryon_id
    anonymous = stub.TryOn(tryon_pb2.TryOnRequest(person_image=photo, garment_sku=SKUS[0]))
    assert anonymous.tryon_id and anonymous.tryon_id != response.tryon_id
    results = experiments.GetResults(pb.GetResultsRequest(experiment_key=running_experiment))
    tryons = {result.name: result.tryons for result in results.arms}
    assert tryons[arm.arm] == 1 and sum(tryons.values()) == 1


def test_bad_input_gets_a_clear_status_and_stores_nothing_half_way(
    experiments, running_experiment, catalog_url
):
    unit = "u-careless"
    experiments.Assign(pb.AssignRequest(experiment_key=running_experiment, unit_id=unit))
    with pytest.raises(grpc.RpcError) as unknown:
        experiments.RecordEvents(
            pb.RecordEventsRequest(
                experiment_key="no-such-test",
                events=[purchase("p-0", unit, "o-0", (SKUS[0], 1, 10.0))],
            )
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert "tryon ab create" in unknown.value.details()

    shapeless = pb.Event(event_id="e-0", unit_id=unit)  # neither purchase nor return
    with pytest.raises(grpc.RpcError) as malformed:
        experiments.RecordEvents(
            pb.RecordEventsRequest(experiment_key=running_experiment, events=[shapeless])
        )
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'e-0' (events[0]) is neither a purchase nor a return" in malformed.value.details()

    good = purchase("p-1", unit, "o-1", (SKUS[0], 1, 10.0), ("NOT-IN-CATALOG", 1, 5.0))
    negative = purchase("p-2", unit, "o-2", (SKUS[1], -3, 10.0))
    with pytest.raises(grpc.RpcError) as refused:
        experiments.RecordEvents(
            pb.RecordEventsRequest(experiment_key=running_experiment, events=[good, negative])
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'p-2'" in refused.value.details() and "got -3" in refused.value.details()

    # The good purchase alone is stored, its unknown SKU too, and the report flags it.
    alone = pb.RecordEventsRequest(experiment_key=running_experiment, events=[good])
    assert experiments.RecordEvents(alone).stored == 1
    engine = create_catalog_engine(catalog_url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        assert build_report(session, running_experiment)["unknown_skus"] == ["NOT-IN-CATALOG"]
        store.stop_experiment(session, running_experiment)
    engine.dispose()

    # Stopped: a later purchase is refused by name, a return of an earlier order still counts.
    late = purchase("p-3", unit, "o-3", (SKUS[0], 1, 10.0))
    with pytest.raises(grpc.RpcError) as stopped:
        experiments.RecordEvents(
            pb.RecordEventsRequest(experiment_key=running_experiment, events=[late])
        )
    assert stopped.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'p-3'" in stopped.value.details() and "stopped at" in stopped.value.details()
    back = returned("r-1", unit, "o-1", SKUS[0], 1)
    request = pb.RecordEventsRequest(experiment_key=running_experiment, events=[back])
    assert experiments.RecordEvents(request).stored == 1
