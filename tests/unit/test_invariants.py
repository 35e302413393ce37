"""Property-based: whatever the properties and request type, CloudFormation gets one valid answer."""

from __future__ import annotations

from typing import Any

from cloudhsm_backup_restore import app
from cloudhsm_backup_restore.attributes import body_size
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.conftest import FakeContext, World

scalars = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["backup-abcdefghijk", "Retain", "Delete", "true", "false", "eu-west-1", "3600", "0", ""]),
    st.integers(),
    st.booleans(),
    st.none(),
)
keys = st.one_of(
    st.sampled_from(["BackupId", "OnDelete", "NeverExpires", "Region", "ServiceTimeout", "ServiceToken"]),
    st.text(max_size=20),
)
properties = st.one_of(st.dictionaries(keys, st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=6), scalars)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    request_type=st.sampled_from(["Create", "Update", "Delete"]),
    props=properties,
    physical=st.one_of(st.just("backup-abcdefghijk"), st.text(min_size=1, max_size=60)),
)
def test_exactly_one_valid_response_whatever_the_properties(
    world: World, request_type: str, props: Any, physical: str
) -> None:
    world.cloudhsm._queue.clear()  # no CloudHSM call is stubbed: any call fails, which must be answered too
    overrides: dict[str, Any] = {"ResourceProperties": props}
    if request_type != "Create":
        overrides["PhysicalResourceId"] = physical
    event = world.event(request_type, **overrides)
    app.handler(event, FakeContext(world.clock))
    raw = world.capture.bodies[world.last_path]
    assert len(raw) == 1
    assert len(raw[0]) <= 4096
    body = world.capture.responses(world.last_path)[0]
    assert body["PhysicalResourceId"]
    assert body["Status"] in ("SUCCESS", "FAILED")
    assert body["RequestId"] == event["RequestId"]
    if body["Status"] == "FAILED":
        assert 0 < len(body["Reason"]) <= 256
    if request_type == "Delete":
        assert body["PhysicalResourceId"] == physical
    assert body_size(body) <= 4096
