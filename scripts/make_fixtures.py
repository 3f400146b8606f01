#!/usr/bin/env python3
"""Writes fixtures/demo: the bundled conversation with a made-up file server, fs01.contoso.test.

Each exchange is a request file and a response file in the fixture format the replay server
reads (see src/testing/fixtures.rs). Responses are shaped like Windows Server's: one line,
prefixes s/a/n/w on the envelope, p rebound per class, every property present in alphabetical
order, nil as xsi:nil, datetimes in cim:Datetime. The data is invented and deliberately nasty:
Unicode and XML-special characters in user and share names, IPv6 client addresses, uint64 max,
empty strings beside nil, datetimes with offsets, enumerations over several pages.

Run from the repository root: python3 scripts/make_fixtures.py
"""
import os
import shutil
import uuid
from xml.sax.saxutils import escape

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "demo")
TO = "http://fs01.contoso.test:5985/wsman"
WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
ANON = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
}
SEED = uuid.UUID("6f1d2b1e-0c4a-4a53-9d55-7a1b7e0c0001")


def guid(name):
    return "uuid:" + str(uuid.uuid5(SEED, name)).upper()


def esc(text):
    return escape(text, {'"': "&quot;", "'": "&apos;"})


class DT(str):
    """A cim:Datetime value."""


class Ref:
    def __init__(self, namespace, cls, selectors):
        self.uri = WMI + namespace + "/" + cls
        self.selectors = selectors


def epr_content(ref):
    sel = "".join(
        '<w:Selector Name="%s">%s</w:Selector>' % (esc(k), esc(str(v))) for k, v in ref.selectors
    )
    return (
        "<a:Address>%s</a:Address><a:ReferenceParameters><w:ResourceURI>%s</w:ResourceURI>"
        "<w:SelectorSet>%s</w:SelectorSet></a:ReferenceParameters>" % (ANON, ref.uri, sel)
    )


def prop(name, value):
    if value is None:
        return '<p:%s xsi:nil="true"/>' % name
    if isinstance(value, list):
        return "".join(prop(name, v) for v in value)
    if isinstance(value, DT):
        return "<p:%s><cim:Datetime>%s</cim:Datetime></p:%s>" % (name, value, name)
    if isinstance(value, Ref):
        return "<p:%s>%s</p:%s>" % (name, epr_content(value), name)
    if isinstance(value, bool):
        value = "true" if value else "false"
    return "<p:%s>%s</p:%s>" % (name, esc(str(value)), name)


def item(namespace, cls, props, echo_namespace=None):
    uri = WMI + (echo_namespace or namespace) + "/" + cls
    body = "".join(prop(k, props[k]) for k in sorted(props, key=str.lower))
    return (
        '<p:%s xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:p="%s" '
        'xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xsi:type="p:%s_Type">%s</p:%s>'
        % (cls, uri, cls, body, cls)
    )


def fragment(props):
    body = ""
    for k, v in props.items():
        body += '<%s xsi:nil="true"/>' % k if v is None else "<%s>%s</%s>" % (k, esc(str(v)), k)
    return (
        '<w:XmlFragment xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">%s</w:XmlFragment>' % body
    )


def response(action, relates_to, body, tag):
    head = " ".join('xmlns:%s="%s"' % (k, v) for k, v in NS.items() if k in "sanw")
    return (
        '<s:Envelope xml:lang="en-US" %s><s:Header><a:Action>%s</a:Action><a:MessageID>%s</a:MessageID>'
        "<a:To>%s</a:To><a:RelatesTo>%s</a:RelatesTo></s:Header><s:Body>%s</s:Body></s:Envelope>"
        % (head, action, guid("response " + tag), ANON, relates_to, body)
    )


def request(action, resource_uri, message_id, body, selectors=()):
    head = " ".join('xmlns:%s="%s"' % (k, v) for k, v in NS.items())
    sel = ""
    if selectors:
        sel = "<w:SelectorSet>%s</w:SelectorSet>" % "".join(
            '<w:Selector Name="%s">%s</w:Selector>' % (k, esc(str(v))) for k, v in selectors
        )
    return (
        '<s:Envelope %s><s:Header><a:To>%s</a:To><w:ResourceURI s:mustUnderstand="true">%s</w:ResourceURI>'
        '<a:ReplyTo><a:Address s:mustUnderstand="true">%s</a:Address></a:ReplyTo>'
        '<a:Action s:mustUnderstand="true">%s</a:Action>'
        '<w:MaxEnvelopeSize s:mustUnderstand="true">512000</w:MaxEnvelopeSize><a:MessageID>%s</a:MessageID>'
        '<w:Locale xml:lang="en-US" s:mustUnderstand="false"/><p:DataLocale xml:lang="en-US" s:mustUnderstand="false"/>'
        "<w:OperationTimeout>PT60.000S</w:OperationTimeout>%s</s:Header><s:Body>%s</s:Body></s:Envelope>\n"
        % (head, TO, esc(resource_uri), ANON, action, message_id, sel, body)
    )


ENUM = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/"
counter = [0]


def write(kind, label, req, resp):
    counter[0] += 1
    stem = "%04d-%s-%s" % (counter[0], kind, label)
    with open(os.path.join(OUT, stem + ".request.xml"), "w", encoding="utf-8") as f:
        f.write(req)
    with open(os.path.join(OUT, stem + ".response.xml"), "w", encoding="utf-8") as f:
        f.write(resp + "\n")


def enumeration(label, resource_uri, pages, wql=None):
    """pages: list of lists of item XML; the first goes in the optimized EnumerateResponse.
    A trailing empty list makes the final PullResponse empty."""
    filt = ""
    if wql:
        filt = '<w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">%s</w:Filter>' % esc(wql)
    msg = guid("request %s enumerate" % label)
    body = "<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>500</w:MaxElements>%s</n:Enumerate>" % filt
    req = request(ENUM + "Enumerate", resource_uri, msg, body)
    contexts = [guid("context %s %d" % (label, i)) for i in range(len(pages))]
    last = len(pages) == 1
    items = "".join(pages[0])
    items_xml = "<w:Items>%s</w:Items>" % items if items else ""
    if last:
        resp_body = "<n:EnumerateResponse><n:EnumerationContext></n:EnumerationContext>%s<w:EndOfSequence/></n:EnumerateResponse>" % items_xml
    else:
        resp_body = "<n:EnumerateResponse><n:EnumerationContext>%s</n:EnumerationContext>%s</n:EnumerateResponse>" % (contexts[0], items_xml)
    write("Enumerate", label, req, response(ENUM + "EnumerateResponse", msg, resp_body, label + " 0"))
    for i in range(1, len(pages)):
        msg = guid("request %s pull %d" % (label, i))
        body = "<n:Pull><n:EnumerationContext>%s</n:EnumerationContext><n:MaxElements>500</n:MaxElements></n:Pull>" % contexts[i - 1]
        req = request(ENUM + "Pull", resource_uri, msg, body)
        items = "<n:Items>%s</n:Items>" % "".join(pages[i])
        if i == len(pages) - 1:
            resp_body = "<n:PullResponse>%s<n:EndOfSequence/></n:PullResponse>" % items
        else:
            resp_body = "<n:PullResponse><n:EnumerationContext>%s</n:EnumerationContext>%s</n:PullResponse>" % (contexts[i], items)
        write("Pull", label, req, response(ENUM + "PullResponse", msg, resp_body, "%s %d" % (label, i)))


# ---------------------------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------------------------
SMB_NS = "root/Microsoft/Windows/SMB"
CIMV2 = "root/cimv2"

USERS = [
    # (domain\user, client address, client name for SMB)
    ("CONTOSO\\Administrator", "192.168.101.13"),
    ("CONTOSO\\Zoë.Ångström", "fe80::9d3c:21a4:7b2e:5f10"),
    ("CONTOSO\\o'brien & \"sons\" <ops>", "2001:db8:85a3::8a2e:370:7334"),
    ("ЛАБ\\Пользователь", "10.20.30.40"),
    ("CONTOSO\\李雷", "192.168.101.77"),
]

smb = [
    dict(SessionId=8813272891621, ClientComputerName="192.168.101.13", ClientUserName=USERS[0][0],
         NumOpens=12, Dialect="3.1.1", SecondsExists=3600, SecondsIdle=12),
    dict(SessionId=8813272891625, ClientComputerName="[fe80::9d3c:21a4:7b2e:5f10]", ClientUserName=USERS[1][0],
         NumOpens=3, Dialect="3.1.1", SecondsExists=86399, SecondsIdle=86000),
    dict(SessionId=18446744073709551615, ClientComputerName="[2001:db8:85a3::8a2e:370:7334]", ClientUserName=USERS[2][0],
         NumOpens=18446744073709551615, Dialect="3.0.2", SecondsExists=4294967295, SecondsIdle=0),
    dict(SessionId=8813272891633, ClientComputerName="WS-0042", ClientUserName="CONTOSO\\svc_backup",
         NumOpens=0, Dialect=None, SecondsExists=59, SecondsIdle=59, ClusterNodeName=None),
    dict(SessionId=8813272891640, ClientComputerName="mac-studio.contoso.test", ClientUserName="",
         NumOpens=1, Dialect="2.1", SecondsExists=7, SecondsIdle=7),
    dict(SessionId=8813272891700, ClientComputerName="10.20.30.40", ClientUserName=USERS[3][0],
         NumOpens=4, Dialect="2.0.2", SecondsExists=120, SecondsIdle=3),
    dict(SessionId=8813272891777, ClientComputerName="192.168.101.77", ClientUserName=USERS[4][0],
         NumOpens=2, Dialect="3.1.1", SecondsExists=30, SecondsIdle=1),
]
smb_items = []
for s in smb:
    props = dict(ClientComputerName=None, ClientUserName=None, ClusterNodeName="FS01", Dialect=None,
                 NumOpens=0, ScopeName="FS01", SecondsExists=0, SecondsIdle=0, SessionId=0,
                 SmbInstance=0, TransportName="TCP")
    props.update(s)
    # Windows may echo the SMB namespace in lower case.
    smb_items.append(item(SMB_NS, "MSFT_SmbSession", props, echo_namespace="root/microsoft/windows/smb"))

server_sessions = []
for i, (user, addr) in enumerate(USERS[:4]):
    server_sessions.append(dict(
        ActiveTime=[3600, 86399, 4294967295, 120][i], Caption=None, ClientType=["", "", "", "DOS LM 1.0"][i],
        ComputerName=addr, Description=None, IdleTime=[12, 86000, 0, 3][i], InstallDate=None, Name=None,
        ResourcesOpened=[12, 3, 0, 4][i], SessionType=[0, 0, 1, 0][i], Status=None,
        TransportName="\\Device\\NetbiosSmb", UserName=user.split("\\", 1)[1]))

shares = [
    (0, "Finance", 9), (0, "IPC$", 0), (1, "Projets & Co", 3), (2, "Home$", 18446744073709551615 % 4294967296),
    (3, "Общий", 4), (0, "Software", 3),
]
server_connections = []
for n, (u, share, files) in enumerate(shares):
    s = server_sessions[u]
    server_connections.append(dict(
        ActiveTime=s["ActiveTime"] - n if s["ActiveTime"] > n else 0, Caption=None, ComputerName=s["ComputerName"],
        ConnectionID=100 + n, Description=None, InstallDate=None, Name=None, NumberOfFiles=files,
        NumberOfUsers=1, ShareName=share, Status=None, UserName=s["UserName"]))

logons = [
    dict(AuthenticationPackage="Negotiate", LogonId="999", LogonType=0, StartTime=DT("2026-11-02T06:01:13.125-08:00")),
    dict(AuthenticationPackage="Negotiate", LogonId="997", LogonType=5, StartTime=DT("2026-11-02T06:01:14-08:00")),
    dict(AuthenticationPackage="Kerberos", LogonId="3254871", LogonType=3, StartTime=DT("2026-11-20T08:15:42.866781-08:00")),
    dict(AuthenticationPackage="NTLM", LogonId="4422019", LogonType=3, StartTime=DT("2026-11-20T17:02:09.4124+01:00")),
    dict(AuthenticationPackage="Kerberos", LogonId="5120044", LogonType=10, StartTime=DT("2026-11-21T03:30:00Z")),
    dict(AuthenticationPackage="Kerberos", LogonId="18446744073709551615", LogonType=11, StartTime=None),
]
for l in logons:
    l.update(Caption=None, Description=None, InstallDate=None, Name=None, Status=None)

PROCESS_DEFAULTS = dict(
    Caption=None, CommandLine=None, CreationClassName="Win32_Process", CreationDate=None,
    CSCreationClassName="Win32_ComputerSystem", CSName="FS01", Description=None, ExecutablePath=None,
    ExecutionState=None, Handle="0", HandleCount=0, InstallDate=None, KernelModeTime=0,
    MaximumWorkingSetSize=None, MinimumWorkingSetSize=None, Name=None,
    OSCreationClassName="Win32_OperatingSystem",
    OSName="Microsoft Windows Server 2022 Standard|C:\\Windows|\\Device\\Harddisk0\\Partition2",
    OtherOperationCount=0, OtherTransferCount=0, PageFaults=0, PageFileUsage=0, ParentProcessId=0,
    PeakPageFileUsage=0, PeakVirtualSize=0, PeakWorkingSetSize=0, Priority=0, PrivatePageCount=0,
    ProcessId=0, QuotaNonPagedPoolUsage=0, QuotaPagedPoolUsage=0, QuotaPeakNonPagedPoolUsage=0,
    QuotaPeakPagedPoolUsage=0, ReadOperationCount=0, ReadTransferCount=0, SessionId=0, Status=None,
    TerminationDate=None, ThreadCount=0, UserModeTime=0, VirtualSize=0, WindowsVersion="10.0.20348",
    WorkingSetSize=0, WriteOperationCount=0, WriteTransferCount=0)

procs = [
    dict(Name="System Idle Process", ProcessId=0, ThreadCount=4, KernelModeTime=137507861455, VirtualSize=8192, PeakVirtualSize=8192, WorkingSetSize=8192),
    dict(Name="System", ProcessId=4, ThreadCount=180, HandleCount=4102, KernelModeTime=2289062500, CreationDate=DT("2026-11-02T06:00:58.500000-08:00"), WorkingSetSize=151552, VirtualSize=3997696, PeakVirtualSize=15052800),
    dict(Name="svchost.exe", ProcessId=1184, ParentProcessId=712, SessionId=0, ExecutablePath="C:\\Windows\\system32\\svchost.exe",
         CommandLine="C:\\Windows\\system32\\svchost.exe -k LocalServiceNetworkRestricted -p -s LanmanServer",
         CreationDate=DT("2026-11-02T06:01:14.71-08:00"), ThreadCount=12, HandleCount=640, WorkingSetSize=18952192, VirtualSize=2203455725568, PeakVirtualSize=2203470405632, PrivatePageCount=6410240, MaximumWorkingSetSize=1380, MinimumWorkingSetSize=200),
    dict(Name="explorer.exe", ProcessId=6220, ParentProcessId=6180, SessionId=2, ExecutablePath="C:\\Windows\\Explorer.EXE",
         CommandLine="C:\\Windows\\Explorer.EXE", CreationDate=DT("2026-11-21T03:30:02.913-08:00"), ThreadCount=71, HandleCount=2974, WorkingSetSize=145399808, VirtualSize=18446744073709551615, Priority=8),
    dict(Name="powershell.exe", ProcessId=7344, ParentProcessId=6220, SessionId=2,
         ExecutablePath="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
         CommandLine="\"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe\" -NoProfile -Command \"Get-SmbSession | ? {$_.NumOpens -gt 0} & 'done' <log>\"",
         CreationDate=DT("2026-11-21T03:41:17.203125+00:00"), ThreadCount=19, HandleCount=811, WorkingSetSize=98304000, Priority=8),
    dict(Name="robocopy.exe", ProcessId=8120, ParentProcessId=1184, SessionId=0,
         ExecutablePath="C:\\Windows\\System32\\Robocopy.exe",
         CommandLine="robocopy.exe \\\\fs02\\Projets & Co D:\\Mirror /MIR /R:1",
         CreationDate=DT("2026-11-20T23:00:00.1+05:30"), ThreadCount=9, HandleCount=212, WorkingSetSize=12582912, ReadTransferCount=18446744073709551615, ReadOperationCount=4294967296),
]
processes = []
for p in procs:
    d = dict(PROCESS_DEFAULTS)
    d.update(p)
    d["Handle"] = str(d["ProcessId"])
    d["Caption"] = d["Description"] = d["Name"]
    processes.append(d)

session_process = [("3254871", "1184"), ("3254871", "8120"), ("5120044", "6220"), ("5120044", "7344"), ("999", "4"), ("999", "0")]

# ---------------------------------------------------------------------------------------------
# The conversation
# ---------------------------------------------------------------------------------------------
shutil.rmtree(OUT, ignore_errors=True)
os.makedirs(OUT)

def uri(ns, cls):
    return WMI + ns + "/" + cls

# MSFT_SmbSession over four pages: one item first (as 2008R2-2022 do), an empty final page.
enumeration("MSFT_SmbSession", uri(SMB_NS, "MSFT_SmbSession"), [smb_items[:1], smb_items[1:4], smb_items[4:], []])

enumeration("Win32_ServerSession", uri(CIMV2, "Win32_ServerSession"),
            [[item(CIMV2, "Win32_ServerSession", s)] for s in server_sessions[:1]] + [[item(CIMV2, "Win32_ServerSession", s) for s in server_sessions[1:]]])

conn_items = [item(CIMV2, "Win32_ServerConnection", c) for c in server_connections]
enumeration("Win32_ServerConnection", uri(CIMV2, "Win32_ServerConnection"), [conn_items[:1], conn_items[1:]])

sc_items = []
for c in server_connections:
    sess = next(s for s in server_sessions if s["ComputerName"] == c["ComputerName"] and s["UserName"] == c["UserName"])
    sc_items.append(item(CIMV2, "Win32_SessionConnection", dict(
        Antecedent=Ref(CIMV2, "Win32_ServerSession", [("ComputerName", sess["ComputerName"]), ("UserName", sess["UserName"])]),
        Dependent=Ref(CIMV2, "Win32_ServerConnection", [("ComputerName", c["ComputerName"]), ("ShareName", c["ShareName"]), ("UserName", c["UserName"])]))))
enumeration("Win32_SessionConnection", uri(CIMV2, "Win32_SessionConnection"), [sc_items[:1], sc_items[1:]])

logon_items = [item(CIMV2, "Win32_LogonSession", l) for l in logons]
enumeration("Win32_LogonSession", uri(CIMV2, "Win32_LogonSession"), [logon_items[:1], logon_items[1:]])

proc_items = [item(CIMV2, "Win32_Process", p) for p in processes]
enumeration("Win32_Process", uri(CIMV2, "Win32_Process"), [proc_items[:1], proc_items[1:4], proc_items[4:]])

sp_items = [item(CIMV2, "Win32_SessionProcess", dict(
    Antecedent=Ref(CIMV2, "Win32_LogonSession", [("LogonId", l)]),
    Dependent=Ref(CIMV2, "Win32_Process", [("Handle", h)]))) for l, h in session_process]
enumeration("Win32_SessionProcess", uri(CIMV2, "Win32_SessionProcess"), [sp_items[:1], sp_items[1:]])

# The abstract base class: items are the concrete subclasses.
mixed = logon_items[:3] + [item(CIMV2, "Win32_ServerSession", s) for s in server_sessions] + logon_items[3:]
enumeration("Win32_Session", uri(CIMV2, "Win32_Session"), [mixed[:1], mixed[1:6], mixed[6:]])

# WQL: a selection, a projection (w:XmlFragment items, no class name), and a bad class.
enumeration("WQL-powershell", WMI + CIMV2 + "/*", [[proc_items[4]]],
            wql="SELECT * FROM Win32_Process WHERE Name = 'powershell.exe'")
frags = [fragment(dict(Name=p["Name"], ProcessId=p["ProcessId"])) for p in processes]
enumeration("WQL-projection", WMI + CIMV2 + "/*", [frags[:1], frags[1:]], wql="SELECT Name, ProcessId FROM Win32_Process")

msg = guid("request bad wql")
bad = "SELECT * FROM Win32_NoSuchClass"
write("Enumerate", "WQL-unknown-class",
      request(ENUM + "Enumerate", WMI + CIMV2 + "/*", msg,
              '<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>500</w:MaxElements><w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">%s</w:Filter></n:Enumerate>' % bad),
      response("http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault", msg,
               '<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>n:CannotProcessFilter</s:Value></s:Subcode></s:Code>'
               '<s:Reason><s:Text xml:lang="en-US">The data source could not process the filter. The filter might be missing or it might be invalid. Change the filter and try the request again.  </s:Text></s:Reason>'
               '<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858778" Machine="fs01.contoso.test"><f:Message>'
               '<f:ProviderFault provider="WMI Provider" path="%%systemroot%%\\system32\\WsmWmiPl.dll"><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858778" Machine="FS01">'
               '<f:Message>The specified class does not exist in the given namespace. </f:Message></f:WSManFault>'
               '<f:ExtendedError><p:__ExtendedStatus xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/__ExtendedStatus" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xsi:type="p:__ExtendedStatus_Type">'
               '<p:Description xsi:nil="true"/><p:Operation>ExecQuery</p:Operation><p:ParameterInfo>%s</p:ParameterInfo><p:ProviderName>WinMgmt</p:ProviderName><p:StatusCode xsi:nil="true"/></p:__ExtendedStatus></f:ExtendedError>'
               '</f:ProviderFault></f:Message></f:WSManFault></s:Detail></s:Fault>' % esc(bad), "bad wql"))

# Get of one SMB session by its key.
msg = guid("request get smb")
write("Get", "MSFT_SmbSession",
      request("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", uri(SMB_NS, "MSFT_SmbSession"), msg, "",
              selectors=[("SessionId", smb[0]["SessionId"])]),
      response("http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse", msg, smb_items[0], "get smb"))

# ---------------------------------------------------------------------------------------------
# Associations, methods and their failures
# ---------------------------------------------------------------------------------------------
ASSOC = "http://schemas.dmtf.org/wbem/wsman/1/cimbinding/associationFilter"
BINDING = "http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd"


def association_enumeration(label, kind, obj, fields, pages):
    """An Enumerate with the DMTF association filter, in the object's namespace."""
    body_fields = "".join("<b:%s>%s</b:%s>" % (k, esc(v), k) for k, v in fields)
    filt = ('<w:Filter Dialect="%s" xmlns:b="%s"><b:%s><b:Object>%s</b:Object>%s</b:%s></w:Filter>'
            % (ASSOC, BINDING, kind, epr_content(obj), body_fields, kind))
    msg = guid("request %s enumerate" % label)
    req = request(ENUM + "Enumerate", WMI + CIMV2 + "/*", msg,
                  "<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>500</w:MaxElements>%s</n:Enumerate>" % filt)
    items = "".join(pages[0])
    body = ("<n:EnumerateResponse><n:EnumerationContext></n:EnumerationContext><w:Items>%s</w:Items>"
            "<w:EndOfSequence/></n:EnumerateResponse>" % items)
    write("Enumerate", label, req, response(ENUM + "EnumerateResponse", msg, body, label))


session4 = server_sessions[3]
association_enumeration(
    "associators-Win32_ServerSession", "AssociatedInstances",
    Ref(CIMV2, "Win32_ServerSession", [("ComputerName", session4["ComputerName"]), ("UserName", session4["UserName"])]),
    [("AssociationClassName", "Win32_SessionConnection"), ("ResultClassName", "Win32_ServerConnection")],
    [[conn_items[4]]])
association_enumeration(
    "references-Win32_LogonSession", "AssociationInstances",
    Ref(CIMV2, "Win32_LogonSession", [("LogonId", "5120044")]),
    [("ResultClassName", "Win32_SessionProcess")],
    [[sp_items[2], sp_items[3]]])

# The provider rejects an association class that does not exist.
msg = guid("request bad association")
bad_filter = ('<w:Filter Dialect="%s" xmlns:b="%s"><b:AssociatedInstances><b:Object>%s</b:Object>'
              "<b:AssociationClassName>Win32_NoSuchAssociation</b:AssociationClassName></b:AssociatedInstances></w:Filter>"
              % (ASSOC, BINDING, epr_content(Ref(CIMV2, "Win32_LogonSession", [("LogonId", "999")]))))
write("Enumerate", "associators-rejected",
      request(ENUM + "Enumerate", WMI + CIMV2 + "/*", msg,
              "<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>500</w:MaxElements>%s</n:Enumerate>" % bad_filter),
      response("http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault", msg,
               '<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>n:CannotProcessFilter</s:Value></s:Subcode></s:Code>'
               '<s:Reason><s:Text xml:lang="en-US">The data source could not process the filter. The filter might be missing or it might be invalid. Change the filter and try the request again.  </s:Text></s:Reason>'
               '<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858778" Machine="fs01.contoso.test"><f:Message>'
               '<f:ProviderFault provider="WMI Provider" path="%systemroot%\\system32\\WsmWmiPl.dll"><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2147749902" Machine="FS01">'
               '<f:Message>Invalid class </f:Message></f:WSManFault></f:ProviderFault></f:Message></f:WSManFault></s:Detail></s:Fault>', "bad association"))

# WQL ASSOCIATORS OF, as Get-CimAssociatedInstance sends it.
enumeration("WQL-associators", WMI + CIMV2 + "/*", [[proc_items[3], proc_items[4]]],
            wql='ASSOCIATORS OF {Win32_LogonSession.LogonId="5120044"} WHERE AssocClass = Win32_SessionProcess ResultClass = Win32_Process')

SMB_URI = uri(SMB_NS, "MSFT_SmbSession")


def force_close(label, session_id, body):
    msg = guid("request force close %s" % label)
    req = request(SMB_URI + "/ForceClose", SMB_URI, msg,
                  '<p:ForceClose_INPUT xmlns:p="%s" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"></p:ForceClose_INPUT>' % SMB_URI,
                  selectors=[("SessionId", session_id)])
    action = SMB_URI + "/ForceCloseResponse" if "Fault" not in body else "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
    write("Invoke", "ForceClose-" + label, req, response(action, msg, body, "force close " + label))


def force_close_output(code):
    return ('<p:ForceClose_OUTPUT xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:p="%s" '
            'xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common"><p:ReturnValue>%d</p:ReturnValue></p:ForceClose_OUTPUT>' % (SMB_URI, code))


force_close("closed", 8813272891625, force_close_output(0))
force_close("gone", 8813272891640, force_close_output(2))
force_close("denied", 8813272891700,
            '<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>w:AccessDenied</s:Value></s:Subcode></s:Code>'
            '<s:Reason><s:Text xml:lang="en-US">Access is denied. </s:Text></s:Reason><s:Detail>'
            '<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="5" Machine="fs01.contoso.test">'
            '<f:Message>Access is denied. </f:Message></f:WSManFault></s:Detail></s:Fault>')

# A Get of a session that has ended in the meantime.
msg = guid("request get gone smb")
write("Get", "MSFT_SmbSession-gone",
      request("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", SMB_URI, msg, "", selectors=[("SessionId", 1234)]),
      response("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", msg,
               '<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>a:DestinationUnreachable</s:Value></s:Subcode></s:Code>'
               '<s:Reason><s:Text xml:lang="en-US">The WS-Management service cannot process the request because the resource is not found. </s:Text></s:Reason>'
               '<s:Detail><w:FaultDetail>http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidResourceURI</w:FaultDetail>'
               '<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858752" Machine="fs01.contoso.test"><f:Message>'
               '<f:ProviderFault provider="WMI Provider" path="%systemroot%\\system32\\WsmWmiPl.dll"><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2147749890" Machine="FS01">'
               '<f:Message>Not found </f:Message></f:WSManFault></f:ProviderFault></f:Message></f:WSManFault></s:Detail></s:Fault>', "get gone"))

# What the README's examples ask of fs01 (added last, so the files above keep their numbers):
# the robocopy.exe processes, and closing CONTOSO\Administrator's session.
robocopy = [i for i, p in enumerate(processes) if p["Name"] == "robocopy.exe"]
enumeration("WQL-robocopy", WMI + CIMV2 + "/*", [[proc_items[i] for i in robocopy]],
            wql="SELECT * FROM Win32_Process WHERE Name = 'robocopy.exe'")
force_close("administrator", 8813272891621, force_close_output(0))

print("wrote %d exchanges to %s" % (counter[0], os.path.normpath(OUT)))
