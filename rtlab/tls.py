"""The TLS context of ``rtlab serve --certfile --keyfile``, with errors that name the file.

OpenSSL's own messages (``[SSL] PEM lib``, ``KEY_VALUES_MISMATCH``) name neither file
nor cause; an instructor setting up a class server needs to know which of the two
files is wrong and how.
"""

from __future__ import annotations

import ssl
from pathlib import Path


class TLSFileError(ValueError):
    """A certificate or key file that cannot serve: the message names the file and why."""


def _check_pem(option: str, path: str, what: str, marker: str) -> None:
    """Check that the file exists, is readable and holds a PEM block of ``marker``."""
    file = Path(path)
    if not file.exists():
        raise TLSFileError(f"{option} {path}: no such file")
    if file.is_dir():
        raise TLSFileError(f"{option} {path}: is a folder, not a file")
    try:
        text = file.read_bytes().decode("ascii", errors="replace")
    except OSError as error:
        raise TLSFileError(f"{option} {path}: cannot be read ({error.strerror})") from None
    headers = [line for line in text.splitlines() if line.startswith("-----BEGIN ")]
    if not any(marker in line for line in headers):
        found = f" (it holds {headers[0].strip('-')[6:]})" if headers else ""
        raise TLSFileError(
            f"{option} {path}: not a PEM {what}: no '-----BEGIN ...{marker}-----' line{found}"
        )


def context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """A server context for ``certfile`` (PEM, the chain may follow) and its ``keyfile``."""
    _check_pem("--certfile", certfile, "certificate", "CERTIFICATE")
    _check_pem("--keyfile", keyfile, "private key", "PRIVATE KEY")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        tls.load_cert_chain(certfile, keyfile, password=_no_passphrase)
    except _Passphrase:
        raise TLSFileError(
            f"--keyfile {keyfile}: the key is encrypted with a passphrase; rtlab serve needs "
            "it unencrypted (openssl pkey -in KEY -out UNENCRYPTED_KEY)"
        ) from None
    except ssl.SSLError as error:
        if "KEY_VALUES_MISMATCH" in str(error) or "key values mismatch" in str(error):
            raise TLSFileError(
                f"--keyfile {keyfile}: not the private key of the certificate in --certfile "
                f"{certfile}"
            ) from None
        raise TLSFileError(
            f"--certfile {certfile} with --keyfile {keyfile}: OpenSSL cannot load them "
            f"({error.reason or error})"
        ) from None
    return tls


class _Passphrase(Exception):
    """The key asked for a passphrase."""


def _no_passphrase() -> bytes:
    """Never prompt on the terminal for a passphrase: a key that needs one is refused."""
    raise _Passphrase
