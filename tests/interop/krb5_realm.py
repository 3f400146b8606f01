#!/usr/bin/env python3
"""Starts a throwaway MIT Kerberos realm on loopback for the interoperability tests.

Creates a KDC database in a temporary directory with a user `alice` (password in
KRB5_TEST_PASSWORD, pre-authentication required, as Active Directory does), a user `bob`
(password Bob-Passw0rd!, no pre-authentication: MIT's default for new principals) and a service
`HTTP/winrm.example.test` exported to a keytab, starts krb5kdc in the foreground on a free port,
prints one JSON line {"kdc": "127.0.0.1:PORT", "krb5_config": PATH, "keytab": PATH, "ccache": PATH,
"realm": ...} (the credential cache holds alice's ticket-granting ticket, from MIT kinit),
and stops the KDC and removes everything when its standard input closes or it is killed.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REALM = "WINRM.TEST"
SERVICE = "HTTP/winrm.example.test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    password = os.environ.get("KRB5_TEST_PASSWORD", "Alice-Passw0rd!")
    work = tempfile.mkdtemp(prefix="winrm-sessions-krb5-")
    port = free_port()
    krb5_conf = os.path.join(work, "krb5.conf")
    kdc_conf = os.path.join(work, "kdc.conf")
    keytab = os.path.join(work, "http.keytab")
    user_keytab = os.path.join(work, "alice.keytab")
    with open(krb5_conf, "w") as f:
        f.write(
            "[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n dns_lookup_realm = false\n"
            " rdns = false\n udp_preference_limit = 1\n\n[realms]\n %s = {\n  kdc = 127.0.0.1:%d\n }\n"
            % (REALM, REALM, port)
        )
    with open(kdc_conf, "w") as f:
        f.write(
            "[kdcdefaults]\n kdc_listen = 127.0.0.1:%d\n kdc_tcp_listen = 127.0.0.1:%d\n\n[realms]\n %s = {\n"
            "  database_name = %s/principal\n  key_stash_file = %s/stash\n  acl_file = %s/kadm5.acl\n"
            "  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n }\n"
            % (port, port, REALM, work, work, work)
        )
    env = dict(os.environ, KRB5_CONFIG=krb5_conf, KRB5_KDC_PROFILE=kdc_conf)
    run = lambda *args: subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run("kdb5_util", "create", "-s", "-r", REALM, "-P", "master-key-for-tests")
    run("kadmin.local", "-r", REALM, "-q", "addprinc +requires_preauth -pw %s alice" % password)
    run("kadmin.local", "-r", REALM, "-q", "addprinc -pw Bob-Passw0rd! bob")
    run("kadmin.local", "-r", REALM, "-q", "addprinc -randkey %s" % SERVICE)
    run("kadmin.local", "-r", REALM, "-q", "ktadd -k %s %s" % (keytab, SERVICE))
    # alice's own keys, unchanged, for password-less clients.
    run("kadmin.local", "-r", REALM, "-q", "ktadd -norandkey -k %s alice" % user_keytab)
    kdc = subprocess.Popen(["krb5kdc", "-n", "-r", REALM], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(*_):
        kdc.terminate()
        try:
            kdc.wait(5)
        except subprocess.TimeoutExpired:
            kdc.kill()
        shutil.rmtree(work, ignore_errors=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.time() > deadline or kdc.poll() is not None:
                sys.stderr.write("krb5kdc did not start\n")
                stop()
            time.sleep(0.05)
    # A ticket cache as a user's `kinit` leaves it.
    ccache = os.path.join(work, "krb5cc_alice")
    if shutil.which("kinit"):
        run("kinit", "-k", "-t", user_keytab, "-c", "FILE:" + ccache, "alice@" + REALM)
    else:
        ccache = None
    print(json.dumps({"kdc": "127.0.0.1:%d" % port, "krb5_config": krb5_conf, "keytab": keytab,
                      "user_keytab": user_keytab, "ccache": ccache, "realm": REALM,
                      "service": SERVICE}), flush=True)
    sys.stdin.read()
    stop()


if __name__ == "__main__":
    main()
