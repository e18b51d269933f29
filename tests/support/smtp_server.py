"""A real SMTP server for the send tests (aiosmtpd on loopback).

Every accepted message is appended as one JSON line to OUT: envelope sender,
recipients, Message-ID and the raw message. Behaviour for fault tests:
  --defer-every N   answer 451 to the first attempt of every message whose
                    Message-ID hashes to 0 modulo N (a retry is accepted)
  --reject WORD     answer 550 at RCPT TO for recipients containing WORD
  --delay-ms MS     wait this long before accepting each message
The server stops by itself after --lifetime seconds.
"""

import argparse
import asyncio
import hashlib
import json
import re
import sys

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, args):
        self.args = args
        self.out = open(args.out, "a", encoding="utf-8")
        self.deferred = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.reject and self.args.reject in address:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.content.decode("utf-8", errors="replace")
        match = re.search(r"^Message-ID:\s*(\S+)", raw, re.IGNORECASE | re.MULTILINE)
        message_id = match.group(1) if match else ""
        if self.args.defer_every and message_id not in self.deferred:
            digest = int(hashlib.sha256(message_id.encode()).hexdigest(), 16)
            if digest % self.args.defer_every == 0:
                self.deferred.add(message_id)
                return "451 4.3.0 Try again later"
        if self.args.delay_ms:
            await asyncio.sleep(self.args.delay_ms / 1000)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "message_id": message_id,
            "data": raw,
        }
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()
        return "250 2.0.0 Ok: queued as %d" % (hash(message_id) & 0xFFFFFF)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--defer-every", type=int, default=0)
    parser.add_argument("--reject", default="")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--lifetime", type=int, default=600)
    args = parser.parse_args()
    controller = Controller(Handler(args), hostname="127.0.0.1", port=args.port)
    controller.start()
    print("ready", flush=True)
    await asyncio.sleep(args.lifetime)
    controller.stop()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
