"""TLS for a FHIR server connection: which certificates to trust and which client certificate to show."""

from __future__ import annotations

import ssl

from aftercare.fhir_client.errors import FhirConfigError

# A client certificate: one PEM file holding certificate and key, or (certificate file, key file).
ClientCert = str | tuple[str, str]


def ssl_context(verify: bool | str = True, cert: ClientCert | None = None) -> ssl.SSLContext:
    """A context trusting the system CAs (`verify=True`), only the CA bundle at a path (`verify="ca.pem"`),
    or anything (`verify=False`, for development only), presenting `cert` when given (mutual TLS)."""
    try:
        if isinstance(verify, str):
            context = ssl.create_default_context(cafile=verify)
        else:
            context = ssl.create_default_context()
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        if cert is not None:
            certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
            context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as error:
        raise FhirConfigError(
            f"TLS files cannot be loaded: {type(error).__name__}: {error.strerror or error}"
        ) from error
    return context
