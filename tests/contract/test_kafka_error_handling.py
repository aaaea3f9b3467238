"""Both Kafka event sources in template.yaml can never retry a record forever, and land in the DLQ."""

from __future__ import annotations

from typing import Any

import pytest

from local.cfn import template


def _kafka_mappings() -> dict[str, dict[str, Any]]:
    resources = template().data["Resources"]
    return {
        name: r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::EventSourceMapping" and "Topics" in r["Properties"]
    }


def test_there_is_one_mapping_per_kafka_mode() -> None:
    assert sorted(_kafka_mappings()) == ["WorkerMskEventSource", "WorkerSelfManagedKafkaEventSource"]


@pytest.mark.parametrize("name", ["WorkerMskEventSource", "WorkerSelfManagedKafkaEventSource"])
def test_a_kafka_mapping_reports_items_retries_boundedly_and_dead_letters(name: str) -> None:
    props = _kafka_mappings()[name]
    # The worker answers with Powertools' Kafka partial batch response; Lambda ignores it without this.
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 <= int(props["MaximumRetryAttempts"]) <= 10, "-1 would retry forever"
    assert 60 <= int(props["MaximumRecordAgeInSeconds"]) <= 604_800
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    # AWS offers these controls for Kafka only with provisioned pollers.
    assert int(props["ProvisionedPollerConfig"]["MinimumPollers"]) >= 1
    # The alias (SAM's AutoPublishAlias): SnapStart runs published versions only.
    assert props["FunctionName"] == {"Ref": "WorkerFunction.Alias"}


def test_the_worker_may_send_to_its_on_failure_destination() -> None:
    policies = template().data["Resources"]["WorkerFunction"]["Properties"]["Policies"]
    assert {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}} in policies
