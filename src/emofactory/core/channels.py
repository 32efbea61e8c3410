"""gRPC with TLS and a bearer token, both ends: `open_channel` for clients (the CLI, tests, benchmarks)
from the `client` settings; `server_credentials` and `TokenCheck` for the services from `server`.

The health service answers without a token, so probes (kubelet, the local stack) need none; every other
RPC, reflection included, needs `authorization: Bearer <token>` where the server has one. The token is
compared in constant time and never logged."""

from __future__ import annotations

import hmac
from pathlib import Path

import grpc

from emofactory.core.config import ClientConfig, ServerConfig, load_section

HEALTH = "/grpc.health.v1.Health/"


def _read(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None


# -- clients ----------------------------------------------------------------------------------------
class _Token(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor, grpc.StreamUnaryClientInterceptor,
             grpc.StreamStreamClientInterceptor):  # fmt: skip
    """Adds the bearer token to every call's metadata."""

    def __init__(self, token: str):
        self.header = ("authorization", f"Bearer {token}")

    def _with_token(self, details):
        return details._replace(metadata=[*(details.metadata or ()), self.header])

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)


def open_channel(address: str, config: ClientConfig | None = None) -> grpc.Channel:
    """A channel to a service as the client settings say: TLS where a CA is given (and a client
    certificate for mutual TLS), the bearer token on every call where one is given."""
    config = config if config is not None else load_section(ClientConfig, "client")
    if config.tls_ca:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(config.tls_ca),
            private_key=_read(config.tls_key),
            certificate_chain=_read(config.tls_cert),
        )
        options = [("grpc.ssl_target_name_override", config.tls_server_name)] if config.tls_server_name else []
        channel = grpc.secure_channel(address, credentials, options=options)
    else:
        channel = grpc.insecure_channel(address)
    return grpc.intercept_channel(channel, _Token(config.auth_token)) if config.auth_token else channel


# -- servers ----------------------------------------------------------------------------------------
def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS credentials from the server settings (None: plaintext); a client CA makes it mutual TLS."""
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ValueError("server.tls_cert and server.tls_key go together: set both or neither")
    if not config.tls_cert:
        if config.tls_client_ca:
            raise ValueError("server.tls_client_ca needs server.tls_cert and server.tls_key")
        return None
    return grpc.ssl_server_credentials(
        [(_read(config.tls_key), _read(config.tls_cert))],
        root_certificates=_read(config.tls_client_ca),
        require_client_auth=bool(config.tls_client_ca),
    )


def _refusing(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, why: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that refuses the call."""

    async def refuse(request_or_iterator, context):
        await context.abort(code, why)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)


class ReadyGate(grpc.aio.ServerInterceptor):
    """UNAVAILABLE for every call but health until the service is ready (its bus and topology are
    there); FAILED_PRECONDITION with the reason once `refuse` says it never will be (a wrong setting)."""

    def __init__(self, ready):
        self.ready = ready
        self.refusal = ""

    def refuse(self, why: str) -> None:
        self.refusal = why

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or self.ready.is_set() or details.method.startswith(HEALTH):
            return handler
        if self.refusal:
            return _refusing(handler, grpc.StatusCode.FAILED_PRECONDITION, f"not serving: {self.refusal}")
        return _refusing(handler, grpc.StatusCode.UNAVAILABLE, "starting: waiting for NATS and its topology")


class TokenCheck(grpc.aio.ServerInterceptor):
    """Refuses, UNAUTHENTICATED, every call without the server's bearer token (health checks aside)."""

    def __init__(self, token: str):
        self.expected = f"Bearer {token}".encode()

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or details.method.startswith(HEALTH):
            return handler
        given = dict(details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(given.encode(), self.expected):
            return handler
        return _refusing(handler, grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required")
