#!/usr/bin/env python3
"""Seeds for the fuzz targets, made from what the tests use.

Writes fuzz/seeds/TARGET/ (the committed corpora start from these; after a
run, `bench/fuzz/run` minimizes the run's corpus into them):

- parse_compile: the scripts of the language tests, the stock programs,
  the examples and the benchmarks;
- datagram: RFC 4475's torture messages and every message of the sipp
  scenarios (tests/sipp/*.xml), their [keywords] filled in;
- sdp: the session descriptions of those messages, and a few more shapes;
- rtp: RTP from sip-tester's captures (/usr/share/sip-tester/*.pcap:
  RFC 4733 keys and G.711 A-law), in the target's input format;
- wav: a small stock prompt, its head, and tiny files of every encoding,
  width, channel count and a few rates, made here;
- config: pbxd.toml, the test configurations' overrides, small files;
- soap: an envelope for every operation of the Parlay X WSDLs, a direction
  client's answers, the malformed ones the Parlay X tests send;
- http: a request to every page, with the JSON, SOAP, form and query
  bodies those pages take, in the target's input format.

Run from anywhere: python3 bench/fuzz/seeds.py [TARGET...]
"""

import glob
import hashlib
import json
import os
import re
import struct
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def write(target, data, name=None):
    if isinstance(data, str):
        data = data.encode()
    folder = os.path.join(SEEDS, target)
    os.makedirs(folder, exist_ok=True)
    name = name or hashlib.sha1(data).hexdigest()
    with open(os.path.join(folder, name), "wb") as out:
        out.write(data)


# -- scripts ---------------------------------------------------------------

def parse_compile():
    for folder in ["crates/pbx-lang/tests/data", "stdlib-scripts", "examples", "bench"]:
        for path in sorted(glob.glob(os.path.join(ROOT, folder, "**", "*"), recursive=True)):
            if path.endswith((".sppr", ".sppi")) and "/fuzz/" not in path:
                with open(path, "rb") as source:
                    write("parse_compile", source.read())


# -- SIP -------------------------------------------------------------------

FILLED = {
    "local_ip": "127.0.0.1",
    "remote_ip": "127.0.0.1",
    "media_ip": "127.0.0.1",
    "local_port": "5070",
    "remote_port": "5060",
    "phone_port": "5071",
    "media_port": "6000",
    "local_ip_type": "4",
    "media_ip_type": "4",
    "transport": "UDP",
    "pid": "4242",
    "call_number": "1",
    "cseq": "1",
    "call_id": "1-4242@127.0.0.1",
    "service": "200",
    "peer_tag_param": ";tag=4242SIPpTag001",
    "last_Via:": "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-pbxd-1;received=127.0.0.1;rport=5060",
    "last_From:": "From: <sip:200@example.com>;tag=pbxd-from-1",
    "last_To:": "To: <sip:ivanov@example.com>",
    "last_Call-ID:": "Call-ID: pbxd-call-1",
    "last_CSeq:": "CSeq: 1 INVITE",
    "$pbxd_uri": "sip:200@127.0.0.1:5060",
    "$pbxd_party": "<sip:200@example.com>;tag=pbxd-from-1",
    "$own_party": "<sip:ivanov@example.com>;tag=4242SIPpTag001",
    "$totag": "4242SIPpTag001",
    "$target": "sip:ivanov@127.0.0.1:5070",
    "$caller": "<sip:200@example.com>;tag=pbxd-from-1",
    "$callee": "<sip:ivanov@example.com>",
}

AUTHORIZATION = (
    'Authorization: Digest username="{user}", realm="example.com", '
    'nonce="1733580000-0123456789abcdef", uri="sip:example.com", '
    'response="0123456789abcdef0123456789abcdef", algorithm=MD5, '
    'cseq="1", qop=auth, nc=00000001, cnonce="4242"'
)


def fill(message):
    def keyword(match):
        word = match.group(1)
        if word.startswith("branch"):
            return "z9hG4bK-4242-1-" + word
        if word.startswith("authentication"):
            user = re.search(r"username=(\S+)", word)
            return AUTHORIZATION.format(user=user.group(1) if user else "ivanov")
        return FILLED.get(word, "x")

    lines = [line.strip() for line in message.strip("\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    text = "\n".join(lines)
    text = re.sub(r"\[([^\]\s]+(?: [^\]]*)?)\]", lambda m: keyword(m) if m.group(1) != "len" else "[len]", text)
    head, _, body = text.partition("\n\n")
    body = body.strip("\n")
    body = body.replace("\n", "\r\n") + ("\r\n" if body else "")
    head = head.replace("[len]", str(len(body.encode())))
    return (head.replace("\n", "\r\n") + "\r\n\r\n" + body).encode(), body


def sipp_messages():
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "sipp", "*.xml"))):
        with open(path, encoding="iso-8859-1") as scenario:
            text = scenario.read()
        for message in re.findall(r"<send[^>]*>\s*<!\[CDATA\[(.*?)\]\]>", text, re.S):
            yield fill(message)


SDP_MORE = [
    # Hold, IPv6, two streams, rtcp-mux and a=ptime, no telephone-event.
    "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n",
    "v=0\r\no=- 1 2 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
    "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 5000 RTP/AVP 96\r\nc=IN IP4 192.0.2.1\r\na=rtpmap:96 H264/90000\r\n"
    "m=audio 4000 RTP/AVP 9 8\r\nc=IN IP4 192.0.2.1\r\na=rtcp-mux\r\na=ptime:20\r\na=inactive\r\n",
    "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc\r\n",
    "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    "m=audio 0 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",
]


def datagram_and_sdp():
    for path in sorted(glob.glob(os.path.join(ROOT, "crates/pbxd/tests/data/rfc4475/*.dat"))):
        with open(path, "rb") as message:
            data = message.read()
        write("datagram", data)
        _, _, body = data.partition(b"\r\n\r\n")
        if body.startswith(b"v=0"):
            write("sdp", body)
    for message, body in sipp_messages():
        write("datagram", message)
        if body.startswith("v=0"):
            write("sdp", body)
    for body in SDP_MORE:
        write("sdp", body)


# -- RTP -------------------------------------------------------------------

def pcap_udp_payloads(path):
    """(time in ms, UDP payload) of each IPv4 UDP packet of an Ethernet pcap."""
    with open(path, "rb") as capture:
        data = capture.read()
    if struct.unpack("<I", data[:4])[0] != 0xA1B2C3D4:
        return []
    packets, at = [], 24
    while at + 16 <= len(data):
        seconds, micros, length, _ = struct.unpack("<IIII", data[at:at + 16])
        frame = data[at + 16:at + 16 + length]
        at += 16 + length
        if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        header = (ip[0] & 0x0F) * 4
        if ip[9] != 17:
            continue
        udp = ip[header:]
        packets.append((seconds * 1000 + micros // 1000, udp[8:]))
    return packets


def rtp_input(flags, event_type, packets, source=0):
    """The rtp target's input: settings, then (length, ms, source, bytes)."""
    out = bytearray([flags, event_type])
    previous = packets[0][0] if packets else 0
    for when, payload in packets:
        step = max(0, min(255, when - previous))
        previous = when
        out += struct.pack(">HBB", len(payload), step, source) + payload
    return bytes(out)


def rtp():
    captures = sorted(glob.glob("/usr/share/sip-tester/*.pcap"))
    if not captures:
        print("seeds: no /usr/share/sip-tester/*.pcap (apt-get install sip-tester); rtp seeds are few", file=sys.stderr)
    for path in captures:
        packets = pcap_udp_payloads(path)
        if "dtmf" in path:
            # Keys as RFC 4733 (payload type 101), and the same packets
            # unannounced (telephone-event not negotiated), with latching.
            write("rtp", rtp_input(0x01, 101, packets))
            write("rtp", rtp_input(0x03, 0x80, packets, source=1))
        else:
            # A-law audio in chunks: played out, detected in-band, recorded.
            for index, start in enumerate(range(0, len(packets), 25)):
                chunk = packets[start:start + 25]
                flags = [0x01, 0x03, 0x07 | (5 << 3), 0x06][index % 4]
                write("rtp", rtp_input(flags, 101, chunk))
    # Hand-made: padding, CSRCs, an extension, reordering, a jump.
    def packet(sequence, timestamp, payload_type=0, first=0x80, extra=b"", payload=b"\xff" * 160):
        return struct.pack(">BBHII", first, payload_type, sequence, timestamp, 0x1234) + extra + payload
    odd = [
        (0, packet(1, 0)),
        (20, packet(3, 320)),
        (20, packet(2, 160)),
        (20, packet(2, 160)),
        (20, packet(4, 480, first=0xA0, payload=b"\xd5" * 160 + b"\x00\x00\x03")),
        (20, packet(5, 640, first=0x82, extra=b"\x00\x00\x00\x01\x00\x00\x00\x02")),
        (20, packet(6, 800, first=0x90, extra=b"\xbe\xde\x00\x01\x10\xaa\x00\x00")),
        (300, packet(40000, 99999)),
        (20, packet(40001, 100159, payload_type=101, payload=b"\x05\x8a\x03\x20")),
    ]
    write("rtp", rtp_input(0x05 | (10 << 3), 101, odd))


# -- WAV -------------------------------------------------------------------

def wav_file(tag, channels, rate, bits, data, extensible=False, extra_chunk=False):
    block = channels * ((bits + 7) // 8)
    if extensible:
        fmt = struct.pack("<HHIIHHHHIH14s", 0xFFFE, channels, rate, rate * block, block, bits,
                          22, bits, 0, tag, b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71")
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if extra_chunk:
        chunks += b"LIST" + struct.pack("<I", 5) + b"INFOx\x00"
    chunks += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def wav():
    import math
    def samples(count, rate, width):
        out = bytearray()
        for index in range(count):
            value = int(12000 * math.sin(2 * math.pi * 440 * index / rate))
            if width == 1:
                out += bytes([(value >> 8) + 128])
            else:
                out += value.to_bytes(2, "little", signed=True).rjust(width, b"\x00")
        return bytes(out)
    for bits in [8, 16, 24, 32]:
        write("wav", wav_file(1, 1, 8000, bits, samples(200, 8000, bits // 8)))
    write("wav", wav_file(1, 2, 16000, 16, samples(400, 16000, 2)))
    write("wav", wav_file(1, 1, 44100, 16, samples(441, 44100, 2), extra_chunk=True))
    write("wav", wav_file(1, 1, 11025, 16, samples(221, 11025, 2), extensible=True))
    write("wav", wav_file(6, 1, 8000, 8, bytes(range(256))))
    write("wav", wav_file(7, 1, 8000, 8, bytes(range(255, -1, -1))))
    write("wav", wav_file(7, 1, 8000, 8, bytes(range(256)))[:-100])  # cut short
    small = os.path.join(ROOT, "stdlib-scripts", "8.wav")
    if os.path.exists(small):
        with open(small, "rb") as prompt:
            data = prompt.read()
        write("wav", data)
        write("wav", data[:2048])


# -- configuration -----------------------------------------------------------

CONFIGS = [
    'data_dir = "data"\n[sip]\nlisten = "127.0.0.1:5060"\n',
    '[server]\ntime_zone = "UTC"\n[domains."a.example"]\n[domains."a.example".accounts.x]\n'
    'password = "p"\naliases = ["100"]\nworking_hours = "Mon-Fri 09:00-18:00; Sat 10:00-12:00"\n'
    'rules = [{ when = "busy", then = "divert 200" }, { when = "no answer after 10s", then = "divert #voicemail" }]\n',
    '[trunks.out]\nproxy = "192.0.2.1:5060"\nnumbers = ["8*"]\n'
    'outgoing = [{ match = "8*", strip = 1, prepend = "+7" }]\n',
    '[limits]\nmax_calls = 10\n[runtime]\nthreads = 2\n[media]\nthreads = 1\n',
]

def test_overrides():
    """The `--set key=value` settings the pbxd tests give, placeholders filled."""
    found = set()
    for path in glob.glob(os.path.join(ROOT, "crates", "pbxd", "tests", "**", "*.rs"), recursive=True):
        with open(path, encoding="utf-8") as source:
            text = source.read()
        pattern = r'r#"([a-z_]+(?:\.[^"=\s]+)+=.*?)"#|"([a-z_]+(?:\.[^"=\s]+)+=[^"\\]*)"'
        for match in re.finditer(pattern, text):
            setting = match.group(1) or match.group(2)
            found.add(re.sub(r"\{[^}]*\}", lambda m: {"{name}": "a", "{}": "x"}.get(m.group(0), "5070"), setting))
    return sorted(found)


def config():
    with open(os.path.join(ROOT, "pbxd.toml"), "rb") as demo:
        text = demo.read()
    write("config", text)
    for extra in CONFIGS:
        write("config", extra)
    overrides = test_overrides()
    for start in range(0, len(overrides), 4):
        group = "\n".join(overrides[start:start + 4]).encode()
        write("config", text + b"\x00" + group)
        write("config", CONFIGS[start // 4 % len(CONFIGS)].encode() + b"\x00" + group)


# -- SOAP and JSON -----------------------------------------------------------

WSDLS = ["third_party_call", "call_notification", "payment", "account_management"]
XSD = "{http://www.w3.org/2001/XMLSchema}"

VALUES = {
    "callingParty": "tel:201",
    "calledParty": "sip:petrov@example.com",
    "callIdentifier": "1",
    "sourceCallIdentifier": "2",
    "participant": "sip:202@example.com",
    "addresses": "sip:ivanov@example.com",
    "address": "sip:ivanov@example.com",
    "criteria": "Busy",
    "endpoint": "http://127.0.0.1:9/notify",
    "interfaceName": "CallDirection",
    "correlator": "c-1",
    "endUserIdentifier": "sip:ivanov@example.com",
    "referenceCode": "ref-1",
    "reservationIdentifier": "1",
    "description": "a call",
    "currency": "RUB",
    "amount": "1.50",
    "code": "c",
    "balanceType": "prepaid",
    "acceptList": "sip:*@example.com",
    "blockList": "5550000",
    "forwardList": "200",
    "date": "2026-11-23T10:00:00Z",
    "maxEntries": "10",
    "requester": "sip:admin@example.com",
}


def wsdl_operations(name):
    """{operation: [(part, [subparts] or None)]} from a WSDL's schemas."""
    path = os.path.join(ROOT, "crates", "pbx-http", "src", "parlay", name + ".wsdl")
    if not os.path.exists(path):
        return {}
    tree = ET.parse(path)
    types = {}
    for complex_type in tree.iter(XSD + "complexType"):
        if complex_type.get("name"):
            types[complex_type.get("name")] = [e.get("name") for e in complex_type.iter(XSD + "element")]
    operations = {}
    for portop in tree.iter("{http://schemas.xmlsoap.org/wsdl/}operation"):
        operations.setdefault(portop.get("name"), [])
    for element in tree.iter(XSD + "element"):
        name = element.get("name")
        if name in operations and not operations[name]:
            parts = []
            for part in element.iter(XSD + "element"):
                if part is element:
                    continue
                kind = (part.get("type") or "").split(":")[-1]
                parts.append((part.get("name"), types.get(kind)))
            operations[name] = parts
    return operations


def soap_envelope(operation, parts, namespace="urn:x"):
    inner = ""
    for part, subparts in parts:
        if subparts:
            value = "".join(f"<{s}>{VALUES.get(s, 'x')}</{s}>" for s in subparts)
        else:
            value = VALUES.get(part, "x")
        inner += f"<{part}>{value}</{part}>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:ns="{namespace}"><soapenv:Body><ns:{operation}>{inner}</ns:{operation}>'
        "</soapenv:Body></soapenv:Envelope>"
    )


def json_parts(parts):
    out = {}
    for part, subparts in parts:
        if subparts:
            out[part] = {s: VALUES.get(s, "x") for s in subparts}
        elif part in ("addresses", "criteria", "acceptList", "blockList", "forwardList"):
            out[part] = [VALUES.get(part, "x")]
        else:
            out[part] = VALUES.get(part, "x")
    return json.dumps(out)


BAD_SOAP = [
    "<Envelope><Body><makeCall>",
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Envelope><Body>'
    "<getCallInformation><callIdentifier>&e;</callIdentifier></getCallInformation></Body></Envelope>",
    "<Envelope><Body><launchRocket/></Body></Envelope>",
    "<Envelope><Body><endCall><callIdentifier>&#x31;&amp;&lt;<![CDATA[2]]></callIdentifier></endCall></Body></Envelope>",
    "<a>" * 40 + "</a>" * 40,
]


def decisions():
    for action, addresses in [("Continue", []), ("EndCall", []), ("Route", ["sip:200@example.com"]),
                              ("Fork", ["201", "202,203"])]:
        inner = f"<actionToPerform>{action}</actionToPerform>" + "".join(
            f"<routingAddress>{a}</routingAddress>" for a in addresses)
        yield (
            '<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            f'<soapenv:Body><ns:handleBusyResponse xmlns:ns="urn:test"><result>{inner}</result>'
            "</ns:handleBusyResponse></soapenv:Body></soapenv:Envelope>"
        )
    yield ('<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
           "<soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>no</faultstring></soapenv:Fault>"
           "</soapenv:Body></soapenv:Envelope>")


def soap():
    for name in WSDLS:
        for operation, parts in wsdl_operations(name).items():
            write("soap", soap_envelope(operation, parts))
    for body in BAD_SOAP:
        write("soap", body)
    for body in decisions():
        write("soap", body)


# -- HTTP --------------------------------------------------------------------

PAGES = [
    "/healthz", "/metrics", "/remote_call.htm", "/api/cdr", "/api/cdr.csv",
    "/ParlayX/ThirdPartyCall", "/api/3pcc/{operation}", "/api/parlay/{operation}",
    "/ParlayX/CallNotification", "/ParlayX/CallNotificationManager",
    "/ParlayX/CallDirectionManager", "/ParlayX/CallHandling", "/ParlayX/Payment",
    "/ParlayX/AccountManagement", "/api/payment/{operation}", "/", "/login", "/logout",
    "/console", "/console/dial", "/console/end", "{operation}",
]
GET, POST = 0, 1
ADMIN, USER, COOKIE = 0x04, 0x08, 0x10
JSON, XML, FORM = 1 << 5, 2 << 5, 3 << 5


def http_input(page, flags, operation="", query="", headers=(), body=""):
    text = "\n".join([operation, query, *headers]) + "\n\n" + body
    return bytes([PAGES.index(page), flags]) + text.encode()


def http():
    write("http", http_input("/healthz", GET))
    write("http", http_input("/metrics", GET))
    for query in ["user=ivanov&dest=202", "user=ivanov%40example.com&dest=%2B74951234567&connect=true",
                  "user=ivanov&dest=202&auth=ivanov%3Awrong", "user=201&dest=+7+495"]:
        write("http", http_input("/remote_call.htm", GET, query=query))
        write("http", http_input("/remote_call.htm", GET | ADMIN, query=query))
    write("http", http_input("/remote_call.htm", GET, query="user=ivanov&dest=202",
                             headers=['Authorization: Digest username="ivanov", realm="example.com", '
                                      'nonce="x", uri="/remote_call.htm", response="0"']))
    for page in ["/api/cdr", "/api/cdr.csv"]:
        for query in ["", "account=ivanov&from=2026-11-01&to=2026-12-01&limit=10", "after=5&limit=x"]:
            write("http", http_input(page, GET | ADMIN, query=query))
            write("http", http_input(page, GET | USER, query=query))
    services = {
        "third_party_call": ("/ParlayX/ThirdPartyCall", "/api/3pcc/{operation}"),
        "call_notification": ("/ParlayX/CallNotification", "/api/parlay/{operation}"),
        "payment": ("/ParlayX/Payment", "/api/payment/{operation}"),
        "account_management": ("/ParlayX/AccountManagement", "/api/payment/{operation}"),
    }
    for name, (soap_page, json_page) in services.items():
        write("http", http_input(soap_page, GET, query="wsdl", headers=["Host: pbx.example.com:8080"]))
        for operation, parts in wsdl_operations(name).items():
            who = USER if operation in ("makeCall", "getBalance") else ADMIN
            write("http", http_input(soap_page, POST | who | XML, body=soap_envelope(operation, parts)))
            write("http", http_input(json_page, POST | who | JSON, operation=operation, body=json_parts(parts)))
    for page in ["/ParlayX/CallHandling", "/ParlayX/CallDirectionManager"]:
        write("http", http_input(page, POST | ADMIN | XML, body=BAD_SOAP[1]))
    write("http", http_input("/api/3pcc/{operation}", POST | ADMIN | JSON, operation="makeCall", body="{not json"))
    write("http", http_input("/api/3pcc/{operation}", POST | JSON, operation="makeCall", body="{}"))
    write("http", http_input("/", GET))
    write("http", http_input("/", GET | COOKIE))
    write("http", http_input("/login", GET))
    write("http", http_input("/login", POST | FORM, body="name=ivanov%40example.com&password=wrong"))
    write("http", http_input("/console", GET | COOKIE))
    write("http", http_input("/console/dial", POST | COOKIE | FORM, body="csrf={csrf}&number=202"))
    write("http", http_input("/console/end", POST | COOKIE | FORM, body="csrf={csrf}&task=1"))
    write("http", http_input("/logout", POST | COOKIE | FORM, body="csrf=wrong"))
    write("http", http_input("{operation}", GET, operation="/nowhere"))


TARGETS = {
    "parse_compile": parse_compile,
    "datagram": datagram_and_sdp,
    "sdp": datagram_and_sdp,
    "rtp": rtp,
    "wav": wav,
    "config": config,
    "soap": soap,
    "http": http,
}

if __name__ == "__main__":
    done = set()
    for target in sys.argv[1:] or list(TARGETS):
        make = TARGETS[target]
        if make not in done:
            make()
            done.add(make)
    for target in sorted(os.listdir(SEEDS)):
        files = os.listdir(os.path.join(SEEDS, target))
        size = sum(os.path.getsize(os.path.join(SEEDS, target, f)) for f in files)
        print(f"{target}: {len(files)} files, {size} bytes")
