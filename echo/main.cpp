// STUB: replaced by the echo server's main.
int main() { return 0; }
