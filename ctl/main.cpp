// STUB: replaced by netmonctl.
int main() { return 0; }
