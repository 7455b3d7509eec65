"""A small interpreter of ``manifest_schema.json`` (the keyword subset it uses; no ``jsonschema`` dependency).

Keywords: ``$ref``, ``anyOf``, ``type``, ``const``, ``enum``, ``required``, ``properties``,
``additionalProperties``, ``propertyNames``, ``pattern``, ``minimum``, ``minLength``, ``items``.
Every violation is reported with the checkpoint and field it concerns.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

__all__ = ["ManifestError", "validate_manifest", "check_block", "SCHEMA_PATH"]

SCHEMA_PATH = Path(__file__).with_name("manifest_schema.json")


class ManifestError(ValueError):
    """The manifest is not valid JSON or does not follow ``manifest_schema.json``."""



@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}


def _is_type(value: Any, t: str) -> bool:
    # bool is an int subclass in Python but not a JSON number
    if t in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _JSON_TYPES[t])


def _where(path: tuple[str, ...]) -> str:
    """``('checkpoints', 'x', 'files', 'model.safetensors', 'sha256')`` → readable location."""
    def fmt(parts: tuple[str, ...]) -> str:
        s = ""
        for p in parts:
            s += f".{p}" if re.fullmatch(r"[A-Za-z_]\w*", p) else f'["{p}"]'
        return s.lstrip(".") or "(top level)"

    if len(path) >= 2 and path[0] == "checkpoints":
        return f"checkpoint {path[1]!r}: field {fmt(path[2:]) if path[2:] else '(record)'}"
    return f"field {fmt(path)}"


def _check(value: Any, schema: Mapping[str, Any], path: tuple[str, ...], errors: list[str]) -> None:
    """Append to ``errors`` every violation of ``schema`` (the keyword subset the schema file uses)."""
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/$defs/"), ref
        schema = {**_schema()["$defs"][ref.rsplit("/", 1)[1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    desc = f" ({schema['description']})" if "description" in schema else ""
    if "anyOf" in schema:
        if not any(not _errors_of(value, s) for s in schema["anyOf"]):
            alts = " or ".join(s.get("type") or _schema()["$defs"].get(s.get("$ref", "").rsplit("/", 1)[-1], {})
                               .get("description", "?") for s in schema["anyOf"])
            errors.append(f"{_where(path)}: expected {alts}, got {value!r}")
        return
    if "const" in schema and value != schema["const"]:
        errors.append(f"{_where(path)}: must be {schema['const']!r}, got {value!r}{desc}")
        return
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            errors.append(f"{_where(path)}: expected {'/'.join(types)}, got {type(value).__name__} {value!r}{desc}")
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{_where(path)}: must be one of {schema['enum']}, got {value!r}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{_where(path)}: must not be empty{desc}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{_where(path)}: {value!r} does not match {schema['pattern']}{desc}")
    if _is_type(value, "number") and "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{_where(path)}: must be >= {schema['minimum']}, got {value!r}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], path + (str(i),), errors)
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{_where(path + (key,))}: required key missing")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        for key, v in value.items():
            if names is not None and "pattern" in names and not re.search(names["pattern"], key):
                ndesc = f" ({names['description']})" if "description" in names else ""
                errors.append(f"{_where(path + (key,))}: key {key!r} does not match {names['pattern']}{ndesc}")
            if key in props:
                _check(v, props[key], path + (key,), errors)
            elif extra is False:
                errors.append(f"{_where(path + (key,))}: unknown key (allowed: {', '.join(sorted(props))})")
            elif isinstance(extra, dict):
                _check(v, extra, path + (key,), errors)


def _errors_of(value: Any, schema: Mapping[str, Any]) -> list[str]:
    errs: list[str] = []
    _check(value, schema, (), errs)
    return errs


def validate_manifest(data: Any) -> None:
    """Check a parsed manifest against ``manifest_schema.json`` plus cross-field rules.

    Raises:
        ManifestError: listing every violation (checkpoint name and field for each).
    """
    errors: list[str] = []
    _check(data, _schema(), (), errors)
    if not errors:
        for name, rec in data["checkpoints"].items():
            # a published checkpoint without a pinned commit could silently follow a moving branch
            if rec["hub"]["published"] and rec["hub"]["revision"] is None:
                errors.append(f"checkpoint {name!r}: field hub.revision: published is true but revision is null")
    if errors:
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise ManifestError("invalid checkpoints manifest:\n  " + "\n  ".join(errors[:20]) + more)


def check_block(value: Any, schema: Mapping[str, Any], name: str, sub: tuple[str, ...]) -> None:
    # validate caller-supplied blocks before they are turned into dataclasses
    errors: list[str] = []
    _check(value, schema, ("checkpoints", name) + sub, errors)
    if errors:
        raise ManifestError("invalid checkpoint record:\n  " + "\n  ".join(errors))

