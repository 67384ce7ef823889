"""The daemon loads only what its configuration uses, and TLS still works on demand.

A Kasa-only daemon never loads ``ssl`` (asyncio is imported without it,
``tls.py``), the INPLUG codec, ``cryptography`` or a hash library; the INPLUG
codec and ``cryptography`` (its AES) come with the first INPLUG, and the
textfile output brings no library.  After the hold-back, a TLS connection through asyncio
works as it always did.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.inplug import start_inplug

from conftest import ROOT, LoopThread, write_ini
from kasa_plug import KasaTestPlug

HEAVY = (
    "ssl",
    "_ssl",
    "_hashlib",
    "cryptography",
    "whitegoodsd.protocols.broadlink",
    "h11._connection",
)


def run_python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def loaded_after_once(ini: Path) -> set[str]:
    """The heavy modules loaded by ``whitegoodsd --once`` (run through the cli)."""
    out = run_python(f"""
        import contextlib, io, sys
        from whitegoodsd import cli
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            status = cli.main(["--once", "-c", {str(ini)!r}])
        assert status == 0, printed.getvalue()
        print(" ".join(m for m in {HEAVY!r} if m in sys.modules))
        """)
    return set(out.split())


def test_a_kasa_only_daemon_loads_no_tls_no_crypto_no_inplug_codec(
    tmp_path: Path, plugs: list[KasaTestPlug]
) -> None:
    plugs.append(KasaTestPlug(SettablePower(5000)))
    ini = write_ini(
        tmp_path / "kasa.ini",
        f"""
        [whitegoodsd]
        appliances = WASHER
        [WASHER]
        smartplug = 127.0.0.1:{plugs[0].port}
        threshold_running_mw = 100000
        minsamples = 3
        """,
    )
    assert loaded_after_once(ini) == set()


def test_asyncio_held_back_from_ssl_still_speaks_tls(tmp_path: Path) -> None:
    out = run_python(f"""
        import datetime, sys
        from whitegoodsd import tls
        tls.import_asyncio()
        import asyncio
        assert "ssl" not in sys.modules, "ssl loaded with asyncio"

        async def plain() -> bytes:
            # loop.sock_* asks whether a socket is an SSLSocket: no ssl for that.
            import socket
            a, b = socket.socketpair()
            a.setblocking(False)
            b.setblocking(False)
            loop = asyncio.get_running_loop()
            await loop.sock_sendall(a, b"plain")
            data = await loop.sock_recv(b, 16)
            a.close()
            b.close()
            return data

        assert asyncio.run(plain()) == b"plain"
        assert "ssl" not in sys.modules, "ssl loaded by a plain socket"

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256())
        )
        pem = {str(tmp_path / "cert.pem")!r}
        with open(pem, "wb") as out:
            out.write(cert.public_bytes(serialization.Encoding.PEM))
            out.write(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))

        async def tls_echo() -> bytes:
            import ssl
            server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_side.load_cert_chain(pem)
            client_side = ssl.create_default_context(cafile=pem)

            async def echo(reader, writer):
                writer.write(await reader.readline())
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_side)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_side, server_hostname="localhost"
            )
            writer.write(b"over tls\\n")
            line = await reader.readline()
            writer.close()
            server.close()
            await server.wait_closed()
            return line

        print(asyncio.run(tls_echo()).decode().strip())
        """)
    assert out == "over tls"


def test_an_inplug_brings_its_codec_and_cipher_and_the_textfile_nothing(
    tmp_path: Path, plugs: list[KasaTestPlug], loop_thread: LoopThread
) -> None:
    plugs.append(KasaTestPlug(SettablePower(5000)))
    inplug = loop_thread.run(start_inplug("127.0.0.1", 0, SettablePower(7000)))
    prom = tmp_path / "whitegoodsd.prom"
    try:
        ini = write_ini(
            tmp_path / "mixed.ini",
            f"""
            [whitegoodsd]
            appliances = WASHER, DRYER
            textfile = {prom}
            [WASHER]
            smartplug = 127.0.0.1:{plugs[0].port}
            threshold_running_mw = 100000
            minsamples = 3
            [DRYER]
            driver = inplug
            smartplug = 127.0.0.1:{inplug.port}
            threshold_running_mw = 100000
            minsamples = 3
            """,
        )
        out = run_python(f"""
            import sys
            from whitegoodsd import deferred, tls
            tls.import_asyncio()
            deferred.defer()
            import asyncio
            from whitegoodsd import config
            from whitegoodsd.monitor import Monitor

            async def one_pass() -> None:
                monitor = Monitor(config.load({str(ini)!r}))
                result = await monitor.poll_pass()
                await monitor.close()
                assert not result.failed, result.failed

            asyncio.run(one_pass())
            print(" ".join(m for m in {(*HEAVY, "prometheus_client")!r} if m in sys.modules))
            """)
    finally:
        loop_thread.run(inplug.close())
    assert set(out.split()) == {"whitegoodsd.protocols.broadlink", "cryptography"}
    assert 'whitegoodsd_appliance_power_watts{appliance="DRYER",driver="inplug"} 7.0' in (
        prom.read_text()
    )


def test_a_deferred_module_loads_at_its_first_use_and_works() -> None:
    out = run_python("""
        import sys
        from whitegoodsd import deferred
        deferred.defer()
        import hashlib, h11
        from hashlib import sha256  # an attribute asked at import: loads it
        assert "_hashlib" in sys.modules or "_sha256" in sys.modules
        assert "h11._connection" not in sys.modules, "loaded by the import statement"
        connection = h11.Connection(h11.CLIENT)
        assert isinstance(connection, h11.Connection)
        print(hashlib.sha256(b"abc").hexdigest() == sha256(b"abc").hexdigest())
        print(hashlib.md5(b"").hexdigest())
        """)
    assert out.split() == ["True", "d41d8cd98f00b204e9800998ecf8427e"]
