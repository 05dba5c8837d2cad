// STUB: replaced by the echo server.
