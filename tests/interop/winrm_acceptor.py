#!/usr/bin/env python3
"""A WinRM-shaped HTTP server whose authentication and message encryption come from pyspnego,
an implementation independent of ours (and of sspi): the interoperability test for the client.

It authenticates in empty-body POSTs, under the `Negotiate` scheme with pyspnego's Negotiate
acceptor (raw NTLM with credentials from the file named by NTLM_USER_FILE, DOMAIN:USER:PASSWORD
lines, or Kerberos in SPNEGO) or under the `Kerberos` scheme (MIT GSSAPI through python-gssapi;
keytab from KRB5_KTNAME, realm from KRB5_CONFIG), answering the AP-REP for mutual
authentication. OFFER (default "Negotiate,Kerberos") names the schemes it offers and accepts. Then it accepts only
multipart/encrypted bodies, unwrapped with pyspnego's unwrap_winrm, and answers every request
with an EnumerateResponse of two MSFT_SmbSession, sealed with wrap_winrm.

With TLS_CERT_FILE and TLS_KEY_FILE it serves HTTPS instead, as WinRM on 5986 does: no message
encryption, and the authentication must carry channel bindings (tls-server-end-point, RFC 5929)
that match its certificate, or those of a certificate it does not have when
CHANNEL_BINDINGS=wrong.

Prints its URL on the first line of stdout, then serves until killed.
"""
import base64
import hashlib
import os
import re
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import spnego
from spnego.channel_bindings import GssChannelBindings

BOUNDARY = b"--Encrypted Boundary"
PROTOCOLS = {
    "negotiate": ("negotiate", "application/HTTP-SPNEGO-session-encrypted"),
    "kerberos": ("kerberos", "application/HTTP-Kerberos-session-encrypted"),
}

ITEM = (
    '<p:MSFT_SmbSession xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession" '
    'xsi:type="p:MSFT_SmbSession_Type"><p:ClientComputerName>{addr}</p:ClientComputerName>'
    "<p:ClientUserName>{user}</p:ClientUserName><p:NumOpens>{opens}</p:NumOpens>"
    "<p:SessionId>{sid}</p:SessionId></p:MSFT_SmbSession>"
)


def response_for(message_id):
    items = ITEM.format(addr="10.9.8.7", user="INTEROP\\pyspnego", opens=3, sid=18446744073709551615)
    items += ITEM.format(addr="[fe80::1]", user="INTEROP\\second", opens=0, sid=42)
    return (
        '<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header>'
        "<a:Action>http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse</a:Action>"
        "<a:RelatesTo>%s</a:RelatesTo></s:Header><s:Body><n:EnumerateResponse>"
        "<n:EnumerationContext></n:EnumerationContext><w:Items>%s</w:Items><w:EndOfSequence/>"
        "</n:EnumerateResponse></s:Body></s:Envelope>" % (message_id, items)
    ).encode("utf-8")


def unwrap(context, body):
    """The sealed parts of a multipart/encrypted body, unwrapped and joined."""
    plaintext = b""
    chunks = body.split(BOUNDARY)
    i = 1
    while i + 1 < len(chunks):
        length = int(re.search(rb"Length=(\d+)", chunks[i]).group(1))
        binary = chunks[i + 1].split(b"application/octet-stream\r\n", 1)[1]
        header_len = int.from_bytes(binary[:4], "little")
        header = binary[4 : 4 + header_len]
        data = binary[4 + header_len : 4 + header_len + length]
        plaintext += context.unwrap_winrm(header, data)
        i += 2
    return plaintext


def wrap(context, protocol, plaintext):
    result = context.wrap_winrm(plaintext)
    return (
        BOUNDARY + b"\r\n\tContent-Type: " + protocol.encode() + b"\r\n"
        b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
        + str(len(plaintext) + result.padding_length).encode() + b"\r\n"
        + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
        + len(result.header).to_bytes(4, "little") + result.header + result.data
        + BOUNDARY + b"--\r\n"
    )


class Handler(BaseHTTPRequestHandler):
    """One instance per connection: the security context lives on the connection."""

    protocol_version = "HTTP/1.1"
    context = None
    scheme = None

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def challenge(self, token=None):
        if token is None:
            headers = [("WWW-Authenticate", offered) for offered in OFFER]
        else:
            headers = [("WWW-Authenticate", "%s %s" % (self.scheme, base64.b64encode(token).decode()))]
        return self.reply(401, headers=headers)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        auth = self.headers.get("Authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() not in PROTOCOLS or scheme.lower() not in [o.lower() for o in OFFER]:
                return self.challenge()
            if self.context is None or self.context.complete or self.scheme != scheme:
                self.scheme = scheme
                self.context = spnego.server(
                    protocol=PROTOCOLS[scheme.lower()][0], service="HTTP", channel_bindings=BINDINGS
                )
            try:
                out = self.context.step(base64.b64decode(token))
            except Exception as error:  # wrong password, bad token
                sys.stderr.write("authentication failed: %s\n" % error)
                self.context = None
                return self.challenge()
            if not self.context.complete:
                return self.challenge(out)
            headers = [("Content-Type", "application/soap+xml;charset=UTF-8")]
            if out:  # Kerberos mutual authentication: the AP-REP comes with the 200
                headers.append(("WWW-Authenticate", "%s %s" % (scheme, base64.b64encode(out).decode())))
            return self.reply(400 if body else 200, headers=headers)
        if self.context is None or not self.context.complete:
            return self.challenge()
        if BINDINGS is not None:  # HTTPS: TLS protects the body
            message_id = re.search(rb"<a:MessageID>([^<]+)</a:MessageID>", body).group(1).decode()
            return self.reply(200, response_for(message_id),
                              headers=[("Content-Type", "application/soap+xml;charset=UTF-8")])
        if not self.headers.get("Content-Type", "").startswith("multipart/encrypted"):
            return self.reply(400, b"unencrypted request refused")
        protocol = PROTOCOLS[self.scheme.lower()][1]
        request = unwrap(self.context, body)
        message_id = re.search(rb"<a:MessageID>([^<]+)</a:MessageID>", request).group(1).decode()
        sealed = wrap(self.context, protocol, response_for(message_id))
        self.reply(200, sealed, headers=[(
            "Content-Type",
            'multipart/encrypted;protocol="%s";boundary="Encrypted Boundary"' % protocol,
        )])


BINDINGS = None
OFFER = [o.strip() for o in os.environ.get("OFFER", "Negotiate,Kerberos").split(",") if o.strip()]


def main():
    global BINDINGS
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if os.environ.get("TLS_CERT_FILE"):
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(os.environ["TLS_CERT_FILE"], os.environ["TLS_KEY_FILE"])
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        with open(os.environ["TLS_CERT_FILE"]) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        if os.environ.get("CHANNEL_BINDINGS") == "wrong":
            der = b"another certificate"
        # The test certificates are signed with SHA-256, so the hash is SHA-256 (RFC 5929 4.1).
        BINDINGS = GssChannelBindings(application_data=b"tls-server-end-point:" + hashlib.sha256(der).digest())
        scheme = "https"
    print("%s://127.0.0.1:%d/wsman" % (scheme, server.server_address[1]), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
