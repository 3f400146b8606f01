#!/usr/bin/env python3
"""The comparison in benches/stream.rs: pypsrp 0.9.1 enumerating MSFT_SmbSession from the same
fixture server, turning each item into a dict of its properties and writing NDJSON, as the CLI
does. Usage: pypsrp_enumerate.py URL basic|ntlm OUT_FILE (user and password "demo")."""
import json
import sys
import xml.etree.ElementTree as ET
from urllib.parse import urlparse

from pypsrp.wsman import NAMESPACES, WSMan

RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession"
N = NAMESPACES["wsen"]
W = NAMESPACES["wsman"]
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def items(parent, out):
    count = 0
    for items in parent.iter():
        if items.tag not in ("{%s}Items" % N, "{%s}Items" % W):
            continue
        for item in items:
            record = {}
            for prop in item:
                name = prop.tag.rsplit("}", 1)[-1]
                record[name] = None if prop.get(XSI_NIL) == "true" else (prop.text or "")
            out.write(json.dumps(record) + "\n")
            count += 1
    return count


def main():
    url, auth, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
    parsed = urlparse(url)
    wsman = WSMan(parsed.hostname, port=parsed.port, path=parsed.path.lstrip("/"), ssl=False,
                  username="demo", password="demo", auth=auth, cert_validation=False,
                  encryption="never" if auth == "basic" else "always", operation_timeout=60,
                  read_timeout=120, max_envelope_size=2 << 20)
    enumerate_ = ET.Element("{%s}Enumerate" % N)
    ET.SubElement(enumerate_, "{%s}OptimizeEnumeration" % W)
    ET.SubElement(enumerate_, "{%s}MaxElements" % W).text = "1000"
    count = 0
    with open(out_path, "w") as out:
        body = wsman.enumerate(RESOURCE, enumerate_)
        while True:
            count += items(body, out)
            if body.find(".//{%s}EndOfSequence" % W) is not None or body.find(".//{%s}EndOfSequence" % N) is not None:
                break
            context = body.find(".//{%s}EnumerationContext" % N).text
            pull = ET.Element("{%s}Pull" % N)
            ET.SubElement(pull, "{%s}EnumerationContext" % N).text = context
            ET.SubElement(pull, "{%s}MaxElements" % N).text = "1000"
            body = wsman.pull(RESOURCE, pull)
    print(count)


if __name__ == "__main__":
    main()
