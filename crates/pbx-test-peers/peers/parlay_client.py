"""A real SOAP client for pbxd's Parlay X tests: zeep, reading the WSDL
pbxd serves, authenticating with HTTP Digest.

    python3 parlay_client.py WSDL_URL USER PASSWORD

prints `ready` once it has read the WSDL, then takes one request per line
on stdin, a JSON object {"op": NAME, "args": {...}}, and answers each on
stdout with one JSON line: {"result": ...} or {"fault": {"message",
"code", "messageId", "text", "variables"}}.
"""

import datetime
import json
import sys

import requests
from requests.auth import HTTPDigestAuth
from zeep import Client
from zeep.exceptions import Fault
from zeep.helpers import serialize_object
from zeep.transports import Transport


def plain(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if hasattr(value, "__float__") and not isinstance(value, (int, float, bool)):
        return float(value)
    return value


def fault_of(fault):
    found = {"message": fault.message, "code": fault.code}
    if fault.detail is not None:
        for exception in fault.detail:
            for child in exception:
                tag = child.tag.split("}")[-1]
                if tag == "variables":
                    found.setdefault("variables", []).append(child.text)
                else:
                    found[tag] = child.text
    return found


def main():
    wsdl, user, password = sys.argv[1:4]
    session = requests.Session()
    session.auth = HTTPDigestAuth(user, password)
    client = Client(wsdl, transport=Transport(session=session, timeout=10))
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = getattr(client.service, request["op"])(**request.get("args", {}))
            answer = {"result": plain(serialize_object(result))}
        except Fault as fault:
            answer = {"fault": fault_of(fault)}
        except Exception as error:  # a transport error, say: the test sees it
            answer = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
