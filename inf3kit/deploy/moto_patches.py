"""The one place where inf3kit adjusts the local AWS emulator (moto) to behave like AWS.

Each patch names the gap it closes; nothing else in moto is changed, and nothing here ships in
what inf3kit deploys to AWS.

1. moto's SageMaker validates endpoint-config instance types against a list that lags AWS: it
   has `ml.inf1.*` but no `ml.inf2.*`, `ml.trn1.*` or the provisional `ml.inf3.*`. The launcher
   accepts every SageMaker Neuron type of inf3kit's catalog and leaves other types to moto.
2. moto's CloudFormation passes an `AWS::KMS::Key`'s `Tags` (`Key`/`Value`, the CloudFormation
   shape) to its KMS tagger, which expects the API shape (`TagKey`/`TagValue`) and fails with
   KeyError, so any tagged stack with a KMS key fails. The tags are converted first.
"""

from __future__ import annotations

from typing import Any

from inf3kit.catalog import load_catalog


def accept_catalog_neuron_types() -> None:
    from moto.sagemaker import models

    neuron_types = {t.name for t in load_catalog().types(platform="sagemaker") if t.is_neuron}
    original = models.FakeEndpointConfig.validate_instance_type

    def validate_instance_type(self: Any, instance_type: str) -> None:
        if instance_type not in neuron_types:
            original(self, instance_type)

    models.FakeEndpointConfig.validate_instance_type = validate_instance_type  # type: ignore[method-assign]


def convert_kms_key_tags() -> None:
    from moto.kms import models

    original = models.Key.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kw: Any) -> Any:
        properties = cloudformation_json.get("Properties", {})
        properties["Tags"] = [
            {"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t
            for t in properties.get("Tags", [])
        ]
        return original(cls, resource_name, cloudformation_json, *args, **kw)

    models.Key.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]


def apply_all() -> None:
    accept_catalog_neuron_types()
    convert_kms_key_tags()
