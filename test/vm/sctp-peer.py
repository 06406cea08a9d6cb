# SCTP traffic helper for the in-VM SCTP suite (Node has no SCTP sockets):
#   python3 sctp-peer.py serve NAME PORT    answers every association with "NAME SOURCE" (the source it saw); prints "listening"
#   python3 sctp-peer.py get HOST PORT COUNT [TIMEOUT_S]
#                                           COUNT associations one after another; prints a JSON array of answers,
#                                           "ERR refused" or "ERR timeout" for the ones that failed. The socket has
#                                           IP_RECVERR: SCTP otherwise treats an ICMP port unreachable as a soft
#                                           error and retries its INIT until the timeout.
#   python3 sctp-peer.py reject HOST PORT TIMEOUT_S
#                                           sends one INIT and waits for the ICMP port unreachable that rejects it;
#                                           prints "icmp port-unreachable" or "no icmp" (an SCTP connect() never
#                                           fails on ICMP alone: it retries until its own timeout, so the ICMP
#                                           itself is what shows the proxy refused at once)
import json
import socket
import sys
import time

IP_RECVERR = 11  # <linux/in.h>; not exported by Python's socket module


def serve(name, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    print("listening", flush=True)
    while True:
        c, peer = s.accept()
        try:
            c.sendall(f"{name} {peer[0]}".encode())
        finally:
            c.close()


def get(host, port, count, timeout):
    out = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
        s.settimeout(timeout)
        s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        try:
            s.connect((host, port))
            out.append(s.recv(256).decode())
        except ConnectionRefusedError:
            out.append("ERR refused")
        except (socket.timeout, TimeoutError):
            out.append("ERR timeout")
        except OSError as e:
            out.append(f"ERR {e.errno}")
        finally:
            s.close()
    print(json.dumps(out), flush=True)


def reject(host, port, timeout):
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    raw.settimeout(timeout)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    s.setblocking(False)
    s.connect_ex((host, port))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            raw.settimeout(max(0.01, deadline - time.monotonic()))
            pkt = raw.recv(2048)
            ihl = (pkt[0] & 15) * 4
            icmp_type, icmp_code = pkt[ihl], pkt[ihl + 1]
            inner = pkt[ihl + 8:]
            inner_proto, inner_dst = inner[9], socket.inet_ntoa(inner[16:20])
            if icmp_type == 3 and icmp_code == 3 and inner_proto == socket.IPPROTO_SCTP and inner_dst == host:
                print("icmp port-unreachable", flush=True)
                return
    except (socket.timeout, TimeoutError):
        pass
    finally:
        s.close()
    print("no icmp", flush=True)


if sys.argv[1] == "serve":
    serve(sys.argv[2], int(sys.argv[3]))
elif sys.argv[1] == "reject":
    reject(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
else:
    get(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]) if len(sys.argv) > 5 else 3.0)
