# Try to reach the host (a listener the test opened) and the outside world.
import socket

for host, port in (("127.0.0.1", int("__PORT__")), ("1.1.1.1", 53), ("deb.debian.org", 80)):
    try:
        socket.create_connection((host, port), timeout=1.5).close()
        print(f"CONNECTED {host}:{port}")
    except OSError as exc:
        print(f"BLOCKED {host}:{port} {type(exc).__name__}")
