"A real SMTP server on loopback that keeps what it receives"
import email
import email.policy
import socket

from aiosmtpd.controller import Controller


class _Handler:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(
            envelope.content, policy=email.policy.default)
        message['X-Envelope-To'] = ', '.join(envelope.rcpt_tos)
        self.messages.append(message)
        return '250 OK'


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class SMTPServer:
    "Usage: with SMTPServer() as smtp: ... smtp.messages, smtp.uri"

    def __init__(self, port=None):
        self.port = port or free_port()
        self.handler = _Handler()
        self.controller = None

    @property
    def uri(self):
        return 'smtp://127.0.0.1:%s' % self.port

    @property
    def messages(self):
        return self.handler.messages

    def start(self):
        self.controller = Controller(
            self.handler, hostname='127.0.0.1', port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None

    __enter__ = start

    def __exit__(self, *exc):
        self.stop()
