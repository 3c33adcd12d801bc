"""docs/asyncapi.yaml: generated from the code, in step with docs/protocol.md, valid AsyncAPI 3."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from mqttpush import codec
from mqttpush.card import CARD_STATUS, CARD_STATUS_SOURCE
from mqttpush.tools.asyncapi import render
from tests.conftest import REPO
from tests.node_tools import node_tools

SPEC = REPO / "docs" / "asyncapi.yaml"
PROTOCOL = (REPO / "docs" / "protocol.md").read_text()


def _document() -> dict:
    return yaml.safe_load(SPEC.read_text())


def _table_rows(heading: str) -> list[list[str]]:
    """The rows of the first table after ``heading`` in docs/protocol.md, cells split."""
    section = PROTOCOL.split(heading, 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    rows = [r for r in rows if not all(set(cell) <= set("-: ") for cell in r)]  # the rule
    return rows if heading.startswith("|") else rows[1:]  # past the header row


def test_the_file_is_what_the_code_generates():
    assert SPEC.read_text() == render(), "docs/asyncapi.yaml is stale: run 'mqttpush asyncapi'"


def test_channels_are_the_topics_of_the_protocol_document():
    documented = set()
    for row in _table_rows("## Topics"):
        first = re.findall(r"`([^`]+)`", row[1])[0]  # the main form of each topic
        documented.add(re.sub(r"\{(\w+)\}", lambda m: "{" + m[1].replace("_", "") + "}", first))
    channels = {
        c["address"].replace("mqttpush/v1", "{prefix}", 1).lower()
        for c in _document()["channels"].values()
    }
    assert channels == {t.lower() for t in documented}


def test_headers_fields_and_operations_match_the_protocol_document():
    document = _document()
    names = {
        re.findall(r"`([^`]+)`", row[0])[0] for row in _table_rows("## Envelope user properties")
    }
    assert names == {
        codec.SENDER,
        codec.OPERATION,
        codec.CORRELATION_ID,
        codec.TRACE_ID,
        codec.TOKEN,
        codec.PRIORITY,
    }
    for message in document["components"]["messages"].values():
        assert names <= set(message["headers"]["properties"])
    fields = {
        re.findall(r"`([^`]+)`", row[0])[0] for row in _table_rows("| Field | Type | Meaning |")
    }
    schemas = document["components"]["schemas"]
    assert fields == set(schemas["PushNotification"]["properties"])
    methods = {re.findall(r"`([^`]+)`", row[0])[0] for row in _table_rows("| Operation | Params |")}
    rpc = document["channels"]["rpc"]["messages"]
    assert {m.removesuffix("Request") for m in rpc} == methods
    # MQTT bindings: QoS 1 on every operation, retained on the card channel only.
    for op in document["operations"].values():
        retain = op["channel"]["$ref"] == "#/channels/card"
        assert op["bindings"]["mqtt"] == {"qos": 1, "retain": retain, "bindingVersion": "0.2.0"}
    card = document["components"]["messages"]["card"]["headers"]["properties"]
    assert {CARD_STATUS, CARD_STATUS_SOURCE} <= set(card)
    push = document["channels"]["push"]["messages"]
    assert document["components"]["messages"]["cloudEventNotification"]["contentType"] == (
        codec.CLOUDEVENTS_CONTENT_TYPE
    )
    assert set(push) == {"notification", "cloudEventNotification"}
    config = schemas["TaskPushNotificationConfig"]["properties"]
    assert {"filter", "format", "rate"} <= set(config)


def _validate(path) -> tuple[int, dict]:
    tools = node_tools()
    result = subprocess.run(
        ["node", str(tools / "validate-asyncapi.mjs"), str(path)],
        capture_output=True, text=True, timeout=120, check=False, cwd=tools,
    )  # fmt: skip
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.broker  # starts node: an integration test, not part of `make test-fast`
def test_the_asyncapi_parser_accepts_the_document_and_would_catch_a_broken_one(tmp_path):
    code, summary = _validate(SPEC)
    assert (code, summary["errors"]) == (0, [])
    assert summary["version"] == "3.0.0"
    assert len(summary["channels"]) == 6
    assert "callAgent" in summary["operations"]
    broken = _document()
    broken["operations"]["callAgent"]["channel"] = {"$ref": "#/channels/nowhere"}
    broken["components"]["messages"]["notification"]["bindings"]["mqtt"]["qos"] = "high"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    code, summary = _validate(tmp_path / "broken.yaml")
    assert code == 1
    assert summary["errors"]
