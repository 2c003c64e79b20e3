"""User-facing errors, rendered in OpenAI's error shape."""

from __future__ import annotations

import json


class RequestError(Exception):
    """An error the client should see: HTTP status plus an OpenAI-style JSON body."""

    def __init__(self, status: int, message: str, type_: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param

    def body(self) -> bytes:
        """The error as OpenAI's JSON body (response/apis.error_body writes it in the client's API's shape)."""
        return error_body(self.message, self.type, self.code, self.param)


def error_body(message: str, type_: str, code: str, param: str | None = None) -> bytes:
    """`{"error": {"message", "type", "param", "code"}}` as UTF-8 JSON bytes (OpenAI's error shape)."""
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()
