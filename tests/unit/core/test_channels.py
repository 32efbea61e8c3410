"""gRPC with TLS, mutual TLS and a bearer token, on a real server: what passes, what is refused and how."""

from __future__ import annotations

import asyncio
import subprocess

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from emofactory.core.channels import TokenCheck, open_channel, server_credentials
from emofactory.core.config import ClientConfig, ServerConfig
from emofactory.local import tls_files

pytestmark = pytest.mark.hostile

TOKEN = "s3cr3t-token"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """The local stack's CA and server certificate, and a client certificate the CA signed."""
    folder = tmp_path_factory.mktemp("tls")
    files = tls_files(folder)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = [["req", *key, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=client"],
           ["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "client.crt", "-days", "1"]]  # fmt: skip
    for step in run:
        subprocess.run(["openssl", *step], cwd=folder / "tls", check=True, capture_output=True)
    return {**files, "client.crt": folder / "tls" / "client.crt", "client.key": folder / "tls" / "client.key"}


def echo(request: bytes, context) -> bytes:
    return request


def call(config: ServerConfig, client: ClientConfig):
    """Starts a server as `config` says (health, and a unary Echo), calls it as `client` says; returns
    (health status or the error code, echo answer or the error code)."""

    async def main():
        server = grpc.aio.server(interceptors=[TokenCheck(config.auth_token)] if config.auth_token else [])
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        handler = grpc.unary_unary_rpc_method_handler(echo)
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Echo", {"Say": handler})])
        credentials = server_credentials(config)
        port = server.add_secure_port("127.0.0.1:0", credentials) if credentials else server.add_insecure_port(
            "127.0.0.1:0")  # fmt: skip
        await server.start()
        try:
            return await asyncio.to_thread(client_side, f"127.0.0.1:{port}", client)
        finally:
            await server.stop(None)

    return asyncio.run(main())


def client_side(address: str, client: ClientConfig):
    out = []
    with open_channel(address, client) as channel:
        for attempt in (
            lambda: health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status,
            lambda: channel.unary_unary("/test.Echo/Say")(b"hello", timeout=5),
        ):
            try:
                out.append(attempt())
            except grpc.RpcError as exc:
                out.append(exc.code())
    return tuple(out)


SERVING = health_pb2.HealthCheckResponse.SERVING


def test_tls_with_a_token_passes_and_health_needs_no_token(tls):
    server = ServerConfig(tls_cert=str(tls["server.crt"]), tls_key=str(tls["server.key"]), auth_token=TOKEN)
    assert call(server, ClientConfig(tls_ca=str(tls["ca.crt"]), auth_token=TOKEN)) == (SERVING, b"hello")
    assert call(server, ClientConfig(tls_ca=str(tls["ca.crt"]))) == (SERVING, grpc.StatusCode.UNAUTHENTICATED)
    wrong = ClientConfig(tls_ca=str(tls["ca.crt"]), auth_token="guess")
    assert call(server, wrong) == (SERVING, grpc.StatusCode.UNAUTHENTICATED)
    plaintext = call(server, ClientConfig(auth_token=TOKEN))  # no TLS: no connection at all
    assert plaintext == (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE)


def test_mutual_tls_needs_a_client_certificate_the_ca_signed(tls):
    server = ServerConfig(
        tls_cert=str(tls["server.crt"]), tls_key=str(tls["server.key"]), tls_client_ca=str(tls["ca.crt"])
    )
    signed = ClientConfig(tls_ca=str(tls["ca.crt"]), tls_cert=str(tls["client.crt"]), tls_key=str(tls["client.key"]))
    assert call(server, signed) == (SERVING, b"hello")
    anonymous = call(server, ClientConfig(tls_ca=str(tls["ca.crt"])))
    assert anonymous == (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE)


def test_half_a_tls_setting_is_refused(tls):
    with pytest.raises(ValueError, match="tls_cert and server.tls_key go together"):
        server_credentials(ServerConfig(tls_cert=str(tls["server.crt"])))
    with pytest.raises(ValueError, match="tls_client_ca needs"):
        server_credentials(ServerConfig(tls_client_ca=str(tls["ca.crt"])))


def test_the_local_stack_keys_are_private(tls):
    assert all(tls[name].stat().st_mode & 0o077 == 0 for name in ("ca.key", "server.key"))
