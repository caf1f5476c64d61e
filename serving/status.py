"""Errors with TF Serving's status codes, and how each code maps to an HTTP status and a gRPC code."""

import typing

import grpc

# tensorflow_serving/model_servers/http_server.cc ToHTTPStatusCode.
HTTP_STATUS = {
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


class ServingError(Exception):
    """A request failed; `code` is a canonical status name such as "INVALID_ARGUMENT" or "NOT_FOUND".

    `http_status` overrides the code's usual HTTP status (413 for a request over a size limit).
    """

    def __init__(self, code: str, message: str, http_status: typing.Optional[int] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self._http_status = http_status

    @property
    def http_status(self) -> int:
        return self._http_status or HTTP_STATUS.get(self.code, 500)

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return grpc.StatusCode[self.code]


def invalid_argument(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingError:
    return ServingError("NOT_FOUND", message)


def failed_precondition(message: str) -> ServingError:
    return ServingError("FAILED_PRECONDITION", message)


def unimplemented(message: str) -> ServingError:
    return ServingError("UNIMPLEMENTED", message)


def resource_exhausted(message: str) -> ServingError:
    return ServingError("RESOURCE_EXHAUSTED", message)
