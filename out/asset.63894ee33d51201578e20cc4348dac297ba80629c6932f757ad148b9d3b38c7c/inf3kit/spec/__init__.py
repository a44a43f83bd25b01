"""The deployment spec: pydantic models, YAML loading and clear validation errors."""

from inf3kit.spec.delivery import DeliverySpec
from inf3kit.spec.endpoint import EndpointSpec
from inf3kit.spec.errors import Problem, SpecError
from inf3kit.spec.fleet import FleetSpec
from inf3kit.spec.loader import LoadedSpec, load_spec, parse_spec
from inf3kit.spec.models import EnvironmentSpec, ModelSpec, NetworkSpec, ServingSpec, Spec
from inf3kit.spec.monitoring import MonitoringSpec

__all__ = [
    "DeliverySpec",
    "EndpointSpec",
    "EnvironmentSpec",
    "FleetSpec",
    "LoadedSpec",
    "ModelSpec",
    "MonitoringSpec",
    "NetworkSpec",
    "Problem",
    "ServingSpec",
    "Spec",
    "SpecError",
    "load_spec",
    "parse_spec",
]
