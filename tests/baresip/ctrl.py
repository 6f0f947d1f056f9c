#!/usr/bin/env python3
"""Drive baresip 1.0 through its ctrl_tcp module and print what it says.

Each argument is a step:
  'COMMAND [PARAMS]'  a baresip command, e.g. 'dial sip:...', 'sndcode 5551234#',
                      'hangup', 'quit' (the long names of its menu commands)
  'wait=EVENT'        wait (up to 60 s) for an event, e.g. wait=CALL_ESTABLISHED
  'sleep=SECONDS'     wait, printing what arrives

Messages are netstrings ("LEN:JSON,"): {"command", "params", "token"} out,
{"response": true, ...} and {"event": true, "type": ...} back.
"""

import json
import os
import socket
import sys
import time

PORT = int(os.environ.get("BARESIP_CTRL_PORT", "4444"))

sock = socket.create_connection(("127.0.0.1", PORT))
sock.settimeout(0.2)
pending = b""
# Event types received and not yet waited for.
unclaimed = []


def send(command, params):
    body = json.dumps({"command": command, "params": params, "token": command}).encode()
    sock.sendall(str(len(body)).encode() + b":" + body + b",")


def receive(seconds, until=None):
    """Prints messages for `seconds`; True as soon as event `until` has
    arrived (now or earlier, unclaimed)."""
    global pending
    end = time.time() + seconds
    while time.time() < end:
        try:
            data = sock.recv(65536)
            if not data:
                return False
            pending += data
        except socket.timeout:
            pass
        while b":" in pending:
            length, rest = pending.split(b":", 1)
            length = int(length)
            if len(rest) < length + 1:
                break
            message, pending = rest[:length], rest[length + 1 :]
            print(message.decode(errors="replace"), flush=True)
            event = json.loads(message).get("type")
            if event:
                unclaimed.append(event)
        if until and until in unclaimed:
            unclaimed.remove(until)
            return True
    return False


for step in sys.argv[1:]:
    if step.startswith("sleep="):
        receive(float(step[len("sleep=") :]))
    elif step.startswith("wait="):
        event = step[len("wait=") :]
        if not receive(60, until=event):
            sys.exit(f"ctrl.py: no {event} within 60 s")
    else:
        command, _, params = step.partition(" ")
        send(command, params)
        receive(0.5)
