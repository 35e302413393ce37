"""Backup -> Data: strings only, timestamps ISO 8601 UTC, "" for absent fields, tags fitted to 4096 bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from cloudhsm_backup_restore.attributes import ATTRIBUTE_NAMES, body_size, fit_response, to_attributes


def test_every_attribute_present_as_a_string() -> None:
    data = to_attributes({"BackupId": "backup-abcdefghijk", "BackupState": "READY", "NeverExpires": True})
    assert set(ATTRIBUTE_NAMES) <= set(data)
    assert all(isinstance(value, str) for value in data.values())
    assert data["NeverExpires"] == "true"
    assert data["SourceRegion"] == ""
    assert data["DeleteTimestamp"] == ""
    assert data["TagList"] == "[]"
    assert data["TagsTruncated"] == "false"


def test_timestamps_become_iso8601_utc_whatever_their_zone() -> None:
    cet = timezone(timedelta(hours=1))
    data = to_attributes(
        {
            "CreateTimestamp": datetime(2026, 11, 1, 13, 30, tzinfo=cet),
            "CopyTimestamp": datetime(2026, 11, 2, 8, 0, 0, 500000, tzinfo=UTC),
            "NeverExpires": False,
        }
    )
    assert data["CreateTimestamp"] == "2026-11-01T12:30:00Z"
    assert data["CopyTimestamp"] == "2026-11-02T08:00:00.500000Z"
    assert data["NeverExpires"] == "false"


def test_tags_as_compact_json_and_one_attribute_each() -> None:
    data = to_attributes({"TagList": [{"Key": "Environment", "Value": "prod"}, {"Key": "team", "Value": "hsm"}]})
    assert data["TagList"] == '[{"Key":"Environment","Value":"prod"},{"Key":"team","Value":"hsm"}]'
    assert data["Tag.Environment"] == "prod"
    assert data["Tag.team"] == "hsm"


def _envelope(data: dict[str, str], logical_id: str = "RestoredBackup") -> dict[str, object]:
    return {
        "Status": "SUCCESS",
        "PhysicalResourceId": "backup-abcdefghijk",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/" + "0" * 36,
        "RequestId": "0" * 36,
        "LogicalResourceId": logical_id,
        "Reason": "",
        "Data": data,
        "NoEcho": False,
    }


def test_fifty_maximal_tags_are_trimmed_from_the_end_to_fit_4096_bytes() -> None:
    tags = [{"Key": f"{i:02d}" + "k" * 126, "Value": "v" * 256} for i in range(50)]
    backup = {"BackupId": "backup-abcdefghijk", "BackupState": "READY", "TagList": tags}
    body = fit_response(_envelope(to_attributes(backup), logical_id="L" * 255))
    data = body["Data"]
    assert body_size(body) <= 4096
    assert data["TagsTruncated"] == "true"
    kept = json.loads(data["TagList"])
    assert 0 < len(kept) < 50
    assert kept == tags[: len(kept)]
    assert [key for key in data if key.startswith("Tag.")] == ["Tag." + tag["Key"] for tag in kept]
    assert data["BackupState"] == "READY"
    # One more tag would not have fitted: the trim keeps as many as possible.
    bigger = dict(data, TagList=json.dumps(tags[: len(kept) + 1], separators=(",", ":")))
    bigger["Tag." + tags[len(kept)]["Key"]] = tags[len(kept)]["Value"]
    assert body_size(dict(body, Data=bigger)) > 4096


def test_a_body_that_fits_is_left_alone() -> None:
    body = _envelope(to_attributes({"TagList": [{"Key": "a", "Value": "b"}]}))
    assert fit_response(body) is body
