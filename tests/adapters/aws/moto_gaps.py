"""Resource types the framework's stack holds that moto's CloudFormation does not model. moto leaves a None in
the stack for each, and then fails every DescribeStackResource it cannot answer before reaching it (`serverless
remove` asks for the REST API's); so each of these types gets a record here: its properties and a physical id,
no service behind it, except the API key, which the deploy reads back to print: a real key in moto's API Gateway.
What the deploy tests read back (API Gateway's stage, Lambda's versions, S3) is moto's own.
"""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel

RECORDED = (
    "AWS::S3::BucketPolicy",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGateway::UsagePlanKey",
)


class _Recorded(CloudFormationModel):
    resource_type = ""

    def __init__(self, name: str, properties: dict[str, Any]) -> None:
        self.physical_resource_id = name
        self.properties = properties

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> _Recorded:
        return cls(resource_name, cloudformation_json.get("Properties", {}))

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[override]
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any], *args: Any
    ) -> _Recorded:
        return cls(new_resource_name, cloudformation_json.get("Properties", {}))

    @classmethod
    def delete_from_cloudformation_json(cls, *args: Any) -> None:  # type: ignore[override]
        return None

    def is_created(self) -> bool:
        return True


class ApiGatewayApiKey(_Recorded, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApiGateway::ApiKey"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> _Recorded:
        from moto.apigateway.models import apigateway_backends

        properties = cloudformation_json.get("Properties", {})
        key = apigateway_backends[account_id][region_name].create_api_key(
            {"name": properties.get("Name", resource_name), "enabled": properties.get("Enabled", True)}
        )
        return cls(key.id, properties)


# moto finds its models among CloudFormationModel's direct subclasses: one per type, kept alive here
_MODELS = [ApiGatewayApiKey] + [
    type(
        name.replace("::", ""),
        (_Recorded, CloudFormationModel),
        {"cloudformation_type": staticmethod(lambda name=name: name)},
    )
    for name in RECORDED
]
UNMODELLED = RECORDED + ("AWS::ApiGateway::ApiKey",)


def fill_gaps() -> None:
    """Make moto's CloudFormation (in this process) see the records above."""
    from moto.cloudformation import parsing

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    assert set(UNMODELLED) <= set(parsing.get_model_map())
