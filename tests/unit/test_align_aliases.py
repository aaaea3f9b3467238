"""What ``ops.aliases`` compares, and how it finds a stack's aliases (ListStackResources' shape, from AWS's API)."""

from __future__ import annotations

from ops.aliases import aliases_of, differences, frozen

LATEST = {
    "FunctionName": "notification-service-WorkerFunction-AbC",
    "Version": "$LATEST",
    "Description": "Delivers notification jobs",
    "RevisionId": "b",
    "LastModified": "2026-12-07T05:00:00.000+0000",
    "CodeSha256": "abc=",
    "Timeout": 120,
    "MemorySize": 1024,
    "Environment": {"Variables": {"POWERTOOLS_LOG_LEVEL": "DEBUG"}},
    "Layers": [{"Arn": "arn:aws:lambda:eu-west-1:123456789012:layer:common:7", "CodeSize": 1}],
    "VpcConfig": {"SubnetIds": ["subnet-b", "subnet-a"], "SecurityGroupIds": ["sg-1"], "VpcId": "vpc-1"},
    "SnapStart": {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"},
}


def test_only_what_a_version_freezes_counts() -> None:
    version = {**LATEST, "Version": "4", "Description": "other", "RevisionId": "a", "LastModified": "yesterday"}
    version["SnapStart"] = {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    version["VpcConfig"] = {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"], "VpcId": "vpc-1"}
    assert differences(LATEST, version) == []


def test_each_frozen_change_is_named() -> None:
    version = {**LATEST, "Version": "4", "Environment": {"Variables": {"POWERTOOLS_LOG_LEVEL": "INFO"}}}
    version["Layers"] = [{"Arn": "arn:aws:lambda:eu-west-1:123456789012:layer:common:6", "CodeSize": 1}]
    version["VpcConfig"] = {"SubnetIds": [], "SecurityGroupIds": [], "VpcId": ""}
    assert differences(LATEST, version) == ["Environment", "Layers", "VpcConfig"]
    assert "VpcConfig" not in frozen(version), "an empty VpcConfig is no VPC"


def test_aliases_are_found_worker_first() -> None:
    summaries = [
        {"LogicalResourceId": "ApiFunction", "ResourceType": "AWS::Lambda::Function", "PhysicalResourceId": "api"},
        {
            "LogicalResourceId": "ApiFunctionAliaslive",
            "ResourceType": "AWS::Lambda::Alias",
            "PhysicalResourceId": "arn:aws:lambda:eu-west-1:123456789012:function:notification-service-Api-1:live",
        },
        {
            "LogicalResourceId": "WorkerFunctionAliaslive",
            "ResourceType": "AWS::Lambda::Alias",
            "PhysicalResourceId": "arn:aws:lambda:eu-west-1:123456789012:function:notification-service-Wor-2:live",
        },
        {"LogicalResourceId": "FeedbackFunctionAliaslive", "ResourceType": "AWS::Lambda::Alias"},  # being created
    ]
    aliases = aliases_of(summaries)
    assert [(a.logical_id, a.function, a.name) for a in aliases] == [
        ("WorkerFunction", "notification-service-Wor-2", "live"),
        ("ApiFunction", "notification-service-Api-1", "live"),
    ]
