"""Load `inf3kit.yaml`: parse YAML keeping line numbers, validate, and explain every problem."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from inf3kit.catalog import (
    Catalog,
    CatalogError,
    Compatibility,
    EngineImage,
    load_catalog,
    load_compatibility,
)
from inf3kit.spec.errors import Problem, SpecError
from inf3kit.spec.llm import (
    LlmService,
    llm_engine,
    llm_service,
    llm_summary_line,
    prevalidated_llm,
)
from inf3kit.spec.models import Spec
from inf3kit.spec.yaml_source import decode, structure_problems

_BOUNDS = {
    "greater_than_equal": ("ge", ">="),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "<="),
    "less_than": ("lt", "<"),
}
_TYPE_NAMES = {
    "int": "a whole number",
    "float": "a number",
    "string": "a string",
    "bool": "true or false",
    "dict": "a mapping (key: value)",
    "list": "a list",
    "model": "a mapping (key: value)",
}


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate a spec file, raising SpecError with every problem found."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(str(path), [Problem("", f"cannot read the file: {exc.strerror}")]) from None
    text, problems = decode(raw)
    if text is None:
        raise SpecError(str(path), problems)
    return parse_spec(text, source=str(path), base_dir=path.parent)


def parse_spec(text: str, *, source: str = "<string>", base_dir: Path | None = None) -> LoadedSpec:
    base_dir = base_dir or Path.cwd()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        structure = structure_problems(root)
        if structure:
            raise SpecError(source, structure)
        data = yaml.safe_load(text)
    except RecursionError:
        raise SpecError(
            source,
            [Problem("", "nested too deeply to read. Fix: flatten the structure")],
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            source,
            [Problem("", f"not valid YAML: {reason}. Fix: check indentation and quoting", line)],
        ) from None
    if data is None:
        raise SpecError(
            source,
            [Problem("", "the file is empty. Fix: start from examples/demo.yaml or docs/spec.md")],
        )
    if not isinstance(data, dict):
        raise SpecError(
            source,
            [
                Problem(
                    "",
                    f"the spec must be a mapping of sections, got {type(data).__name__}. "
                    "Fix: start from examples/demo.yaml",
                    1,
                )
            ],
        )
    catalog, compatibility = _catalog_for(data, base_dir, source, root)
    context: dict[str, Any] = {
        "catalog": catalog,
        "compatibility": compatibility,
        "base_dir": base_dir,
    }
    context["llm"] = prevalidated_llm(data, context)
    try:
        spec = Spec.model_validate(data, context=context)
    except ValidationError as exc:
        raise SpecError(source, [_problem(err, root) for err in exc.errors()]) from None
    return LoadedSpec(
        spec=spec, source=source, base_dir=base_dir, catalog=catalog, compatibility=compatibility
    )


class LoadedSpec:
    """A validated spec with what it was validated against: its folder and its catalog."""

    def __init__(
        self,
        *,
        spec: Spec,
        source: str,
        base_dir: Path,
        catalog: Catalog,
        compatibility: Compatibility,
    ) -> None:
        self.spec = spec
        self.source = source
        self.base_dir = base_dir
        self.catalog = catalog
        self.compatibility = compatibility

    def llm_service(self, *instance_types: str) -> LlmService:
        """An LLM spec's model shape, weights and settings for the stacks, with
        `tensor_parallel: auto` resolved to the one degree that suits all of `instance_types`
        (the endpoint's type, or the fleet's). Raises ValueError for a runtime spec."""
        spec = self.spec
        if spec.llm is None or spec.model.weights is None:
            raise ValueError("model.engine is runtime: the spec has no LLM service")
        return llm_service(spec.llm, spec.model.weights, list(instance_types), self.catalog)

    def llm_engine(self, *instance_types: str) -> tuple[str, EngineImage]:
        """The LLM engine distribution (`compatibility.engines` key) and container image that
        serve all of `instance_types`. Raises ValueError for a runtime spec."""
        if self.spec.llm is None:
            raise ValueError("model.engine is runtime: the spec has no LLM service")
        return llm_engine(self.spec.llm, list(instance_types), self.compatibility)

    def llm_summary(self) -> list[str]:
        """One line per place an LLM spec serves (endpoint, fleet): the resolved degree, groups
        per instance, engine image, and memory needed against memory usable. [] for runtime."""
        spec = self.spec
        places = [("endpoint", [spec.endpoint.instance_type])] if spec.endpoint else []
        places += [("fleet", list(spec.fleet.instance_types))] if spec.fleet else []
        if spec.llm is None:
            return []
        return [
            llm_summary_line(
                place, types, self.llm_service(*types), self.llm_engine(*types), self.catalog
            )
            for place, types in places
        ]

    def resolve(self, relative: str) -> Path:
        """A path written in the spec, resolved against the spec file's folder."""
        return (self.base_dir / relative).resolve()


def _catalog_for(
    data: dict[str, Any], base_dir: Path, source: str, root: Any
) -> tuple[Catalog, Compatibility]:
    """The catalog and compatibility matrix, with the spec's `catalog:` file merged into both."""
    override = data.get("catalog")
    path = base_dir / override if isinstance(override, str) else None
    try:
        return load_catalog(path), load_compatibility(path)
    except CatalogError as exc:
        raise SpecError(
            source, [Problem("catalog", f"{exc}. Fix: correct the file", _line(root, ("catalog",)))]
        ) from None


def _problem(err: ErrorDetails, root: Any) -> Problem:
    loc = tuple(err["loc"])
    path = _format_path(loc)
    if err["type"] == "extra_forbidden":
        return Problem(path, _unknown_key(loc), _line(root, loc, key=True))
    return Problem(path, _describe(err), _line(root, loc))


def _format_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(err: ErrorDetails) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err["input"]
    if kind == "missing":
        return "required but missing. Fix: add it (see docs/spec.md for its format)"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind in _BOUNDS:
        key, op = _BOUNDS[kind]
        return f"got {value!r}, must be {op} {ctx[key]}. Fix: use a value {op} {ctx[key]}"
    if kind == "literal_error":
        return f"got {value!r}; allowed: {ctx['expected']}. Fix: use one of those"
    if kind == "string_pattern_mismatch":
        return f"got {value!r}, which does not match {ctx['pattern']}. Fix: {_pattern_hint(err)}"
    if kind in ("too_short", "too_long"):
        return f"{err['msg']}. Fix: adjust the number of entries"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        expected = _TYPE_NAMES.get(kind.split("_")[0], kind.split("_")[0])
        return (
            f"got {value!r} ({type(value).__name__}), expected {expected}. "
            f"Fix: write {expected} here"
        )
    return f"got {value!r}: {err['msg']}"


def _pattern_hint(err: ErrorDetails) -> str:
    hints = {
        "name": "use 2-32 lowercase letters, digits and '-', starting with a letter (DNS-safe)",
        "vpc": "write `new`, or an existing VPC id like vpc-0123456789abcdef0",
        "account": "use the 12-digit AWS account id, quoted",
        "pipeline_account": "use the 12-digit AWS account id, quoted",
        "region": "use a region code like us-east-1",
        "pipeline_region": "use a region code like us-east-1",
        "id": "use an AMI id like ami-0123456789abcdef0",
        "certificate_arn": "use an ACM certificate ARN (arn:aws:acm:...)",
        "neuron_sdk": "use a Neuron SDK release like 2.31.1, quoted",
    }
    field = next((p for p in reversed(err["loc"]) if isinstance(p, str)), "")
    return hints.get(field, "match the pattern")


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    key = str(loc[-1])
    allowed = _allowed_keys(loc[:-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    guess = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"unknown key {key!r}.{guess} Allowed here: {', '.join(allowed)}. Fix: rename or remove it"
    )


def _allowed_keys(parent: tuple[int | str, ...]) -> list[str]:
    """Walk the model classes along `parent` to list the keys valid at that place."""
    model: type[BaseModel] | None = Spec
    for part in parent:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field else None
    return list(model.model_fields) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found:
            return found
    return None


def _line(root: Any, loc: tuple[int | str, ...], *, key: bool = False) -> int | None:
    """The 1-based YAML line of the node at `loc` (or of its key), else of its nearest parent."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    child = k if key and part == loc[-1] else v
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line
