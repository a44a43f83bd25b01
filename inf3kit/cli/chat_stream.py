"""The OpenAI-style chat request `inf3kit invoke --stream` sends, and the text in what streams
back.

The engine answers a `"stream": true` chat request with one JSON chunk per token or few tokens:
JSON lines from the LMI container, `data: {...}` server-sent events from vLLM's OpenAI server.
SageMaker cuts that byte stream into PayloadParts wherever it likes, so a line may span parts;
`TokenText` keeps the unfinished line until its end arrives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_MAX_TOKENS = 256


class ChatRequestError(ValueError):
    """The request cannot be built; the message names the option, the problem and the fix."""


def chat_request(
    *, prompt: str | None, messages_file: Path | None, max_tokens: int
) -> dict[str, Any]:
    """`{"messages": [...], "max_tokens": N, "stream": true}` from a prompt or a messages file."""
    if (prompt is None) == (messages_file is None):
        raise ChatRequestError(
            "give exactly one of --prompt TEXT or --messages FILE (or --input FILE with your "
            "own request body)"
        )
    if max_tokens < 1:
        raise ChatRequestError(f"--max-tokens {max_tokens}: must be at least 1")
    if prompt is not None:
        messages: Any = [{"role": "user", "content": prompt}]
    else:
        assert messages_file is not None
        messages = _read_messages(messages_file)
    return {"messages": messages, "max_tokens": max_tokens, "stream": True}


def _read_messages(path: Path) -> list[dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ChatRequestError(
            f"cannot read --messages {path}: {exc.strerror}. Fix: pass a JSON file"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChatRequestError(
            f"--messages {path} is not JSON ({exc}). Fix: write a JSON list of "
            '{"role": ..., "content": ...} objects'
        ) from None
    if isinstance(data, dict) and "messages" in data:
        data = data["messages"]
    bad = not isinstance(data, list) or not data
    bad = bad or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in data
    )
    if bad:
        raise ChatRequestError(
            f"--messages {path}: expected a non-empty JSON list of objects with string `role` "
            'and `content`, e.g. [{"role": "user", "content": "Hi"}] (or {"messages": [...]})'
        )
    return list(data)


class TokenText:
    """Turns the streamed bytes into the generated text, chunk by chunk."""

    def __init__(self) -> None:
        self._pending = b""
        self.chunks = 0

    def feed(self, part: bytes) -> str:
        """The text of every line `part` completes."""
        self._pending += part
        *lines, self._pending = self._pending.split(b"\n")
        return "".join(self._text(line) for line in lines)

    def finish(self) -> str:
        """The text of a last line the stream did not end with a newline."""
        line, self._pending = self._pending, b""
        return self._text(line)

    def _text(self, raw: bytes) -> str:
        line = raw.decode("utf-8", errors="replace").strip()
        if line.startswith("data:"):
            line = line[len("data:") :].strip()
        if not line or line == "[DONE]":
            return ""
        self.chunks += 1
        try:
            chunk = json.loads(line)
        except json.JSONDecodeError:
            return line  # not JSON: show it as the engine sent it
        return _text_of(chunk)


def _text_of(chunk: Any) -> str:
    """The generated text of one chunk: an OpenAI chat delta, a completion's text, or LMI's
    `token.text`; an error the engine streams is raised."""
    if not isinstance(chunk, dict):
        return ""
    if "error" in chunk and "choices" not in chunk:
        error = chunk["error"]
        raise StreamedError(error.get("message", str(error)) if isinstance(error, dict) else error)
    choices = chunk.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0]
        delta = first.get("delta")
        if isinstance(delta, dict):
            return str(delta.get("content") or "")
        return str(first.get("text") or "")
    token = chunk.get("token")
    if isinstance(token, dict):
        return str(token.get("text") or "")
    return ""


class StreamedError(RuntimeError):
    """The engine reported an error inside the stream (an `{"error": ...}` chunk)."""
