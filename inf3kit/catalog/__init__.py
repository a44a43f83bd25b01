"""Hardware catalog and compatibility matrix (data shipped in `data/`, user-overridable)."""

from inf3kit.catalog.compatibility import (
    Compatibility,
    FamilySupport,
    ServingImage,
    load_compatibility,
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
    "EngineImage",
    "EngineSupport",
    "FamilySupport",
    "InstanceType",
    "ServingImage",
    "family_of",
    "load_catalog",
    "load_compatibility",
]
