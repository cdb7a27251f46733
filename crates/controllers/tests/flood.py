"""A hostile peer for the servers' tests: opens COUNT connections to HOST:PORT from the loopback
addresses 127.0.0.2, 127.0.0.3, ... (PER_SOURCE connections from each), sends each the start of
a request header (HEADER_BYTES of it, never finished), says `sent N` once it has (or once for
STILL seconds no connection would take more), and holds them until its standard input closes.
Bounded: it stops sending after 60 s whatever happens."""
import resource, selectors, socket, sys, time

host, port, count, per_source, header_bytes = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6])
still = float(sys.argv[6])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < count + 64:
    sys.exit(f"flood.py: {count} connections need {count + 64} descriptors; the hard limit is {hard}")
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

start = b"POST /hook/team/shop HTTP/1.1\r\nHost: x\r\n"
pending = {}
sockets = []
deadline = time.monotonic() + 60
for i in range(count):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.bind((f"127.0.0.{2 + i // per_source}", 0))
    s.setblocking(False)
    s.connect_ex((host, port))
    sockets.append(s)
    filler = b"X-Filler: " + b"a" * max(0, header_bytes - len(start) - 12) + b"\r\n"
    pending[s] = memoryview(start + filler if header_bytes > len(start) else start)

# Write what each connection takes; a connection the server closed counts as sent. Stops when
# all is sent, or when for STILL seconds no connection would take more (the server reads no more).
selector = selectors.DefaultSelector()
for s in sockets:
    selector.register(s, selectors.EVENT_WRITE)
sent = 0
while pending and time.monotonic() < deadline:
    ready = selector.select(timeout=still)
    if not ready:
        break
    for key, _ in ready:
        s = key.fileobj
        try:
            n = s.send(pending[s])
            pending[s] = pending[s][n:]
            done = len(pending[s]) == 0
        except (BlockingIOError, InterruptedError):
            done = False
        except OSError:
            done = True
        if done:
            del pending[s]
            selector.unregister(s)
            sent += 1
print(f"sent {sent} of {count}", flush=True)
sys.stdin.read()
