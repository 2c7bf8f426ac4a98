"""A webhook receiver over HTTPS for the TLS test (tests/tests/it/webhooks.rs).

Python's ssl module (OpenSSL, not Palisade's rustls) serves the certificate
chain and key given as arguments on 127.0.0.1. The first line printed is
"listening PORT"; then every POST is answered 204 and printed as one JSON
line {"path", "tls", "headers", "body"}. Standard library only; stops when
its stdin closes (the test dropped it).
"""
import http.server
import json
import ssl
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length).decode()
        headers = {name.lower(): value for name, value in self.headers.items()}
        record = {
            "path": self.path,
            "tls": self.connection.version(),
            "headers": headers,
            "body": body,
        }
        print(json.dumps(record), flush=True)
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    chain, key = sys.argv[1], sys.argv[2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(chain, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening {server.server_address[1]}", flush=True)
    sys.stdin.read()


main()
