"""Hardware catalog and compatibility matrix (data shipped in `data/`, user-overridable)."""

from inf3kit.catalog.compatibility import (
    Compatibility,
    CompiledVariant,
    FamilySupport,
    NeuronRelease,
    ReleaseCheck,
    ServingImage,
    load_compatibility,
    version_key,
)
from inf3kit.catalog.engines import EngineImage, EngineSupport
from inf3kit.catalog.hardware import (
    CATALOG_ENV,
    SAGEMAKER_PREFIX,
    Catalog,
    CatalogError,
    InstanceType,
    family_of,
    load_catalog,
)

__all__ = [
    "CATALOG_ENV",
    "SAGEMAKER_PREFIX",
    "Catalog",
    "CatalogError",
    "Compatibility",
    "CompiledVariant",
    "EngineImage",
    "EngineSupport",
    "FamilySupport",
    "InstanceType",
    "NeuronRelease",
    "ReleaseCheck",
    "ServingImage",
    "family_of",
    "load_catalog",
    "load_compatibility",
    "version_key",
]
