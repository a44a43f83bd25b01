"""Hostile or sloppy YAML: a clear, line-numbered error at once, never a traceback or a hang."""

from __future__ import annotations

from pathlib import Path

import pytest

from inf3kit.spec import SpecError, load_spec, parse_spec

GOOD = """\
name: ranker
model:
  bundle: s3://models/ranker.tar.gz
endpoint:
  instance_type: ml.inf2.xlarge
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    return [str(p) for p in info.value.problems]


def test_fails_when_a_key_is_repeated() -> None:
    text = GOOD + "  instance_type: ml.inf2.8xlarge\n"
    assert problems(text) == [
        "endpoint.instance_type (line 6): the key 'instance_type' appears twice (first at line "
        "5); YAML would keep only the last. Fix: remove or merge one of them"
    ]


def test_fails_when_a_top_level_section_is_repeated() -> None:
    assert problems(GOOD + "name: other\n") == [
        "name (line 6): the key 'name' appears twice (first at line 1); YAML would keep only "
        "the last. Fix: remove or merge one of them"
    ]


def test_fails_when_the_file_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(GOOD.encode() + "description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert [str(p) for p in info.value.problems] == [
        "<spec> (line 6): not UTF-8: byte 0xe9 at offset 114 cannot be decoded. Fix: save the "
        "file as UTF-8"
    ]


def test_fails_when_aliases_expand_exponentially() -> None:
    """The "billion laughs": ten levels of ten aliases each are 10^10 values once expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    text = GOOD + "tags: {}\n" + "\n".join(lines) + "\n"
    assert problems(text) == [
        "<spec> (line 1): the document expands to more than 100,000 values through YAML aliases "
        "(anchors referenced inside each other). Fix: write the values out, or use fewer nested "
        "aliases"
    ]


def test_fails_when_nesting_is_too_deep() -> None:
    assert problems("name: " + "[" * 5000 + "]" * 5000 + "\n") == [
        "<spec>: nested too deeply to read. Fix: flatten the structure"
    ]


def test_small_aliases_still_work() -> None:
    text = GOOD.replace("name: ranker\n", "name: &n ranker\ndescription: *n\n")
    assert parse_spec(text).spec.description == "ranker"
