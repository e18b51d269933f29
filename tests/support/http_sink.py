"""A real HTTP server for the SMS provider tests: appends every POST (path,
Authorization header, JSON body) as one JSON line to OUT and answers with the
status given for that recipient in --status TO=CODE (default 200).
Stops by itself after --lifetime seconds."""

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--status", action="append", default=[])
    parser.add_argument("--lifetime", type=int, default=600)
    args = parser.parse_args()
    statuses = dict(item.split("=", 1) for item in args.status)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            with lock, open(args.out, "a", encoding="utf-8") as out:
                out.write(json.dumps({
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "body": body,
                }) + "\n")
            status = int(statuses.get(str(body.get("to")), "200"))
            reply = json.dumps({"ok": status < 300}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Timer(args.lifetime, server.shutdown).start()
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
