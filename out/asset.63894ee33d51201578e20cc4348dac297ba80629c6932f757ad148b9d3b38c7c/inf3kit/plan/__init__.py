"""Cost and capacity before deploy: profiles of a bundle, and plans per instance type.

Pure logic over the catalog, the spec and profiles; the in-process measurement uses the
runtime (which never imports this package), and nothing here imports the CDK.
"""

from inf3kit.plan.planner import Excluded, Load, Plan, Row, build_plan
from inf3kit.plan.profile import (
    LoadPoint,
    Profile,
    ProfileError,
    profile_path,
    read_profile,
    stored_profiles,
    write_profile,
)

__all__ = [
    "Excluded",
    "Load",
    "LoadPoint",
    "Plan",
    "Profile",
    "ProfileError",
    "Row",
    "build_plan",
    "profile_path",
    "read_profile",
    "stored_profiles",
    "write_profile",
]
