/*
 * dns_floor: the kernel floor for a DNS probe.
 *
 * The least a DNS check over UDP can do for one run: send one query, receive its answer,
 * check it. One non-blocking UDP socket connected to the server (as c-ares's is: the
 * kernel then drops datagrams from anyone else), registered once on an epoll set; up to
 * --concurrency queries in flight on it, told apart by their transaction ids. For each
 * query: a precomputed query for --query/--type with a fresh id (sequential, skipping ids
 * still in flight) and RD set, no EDNS (as netmond's dns probe asks), one send(); on
 * readiness, recv() until EAGAIN, and for each answer check the id is one in flight, QR,
 * the question is ours, RCODE is NOERROR and ANCOUNT >= 1; an answer ends its query, and
 * the next query goes out, until --count queries have ended. A datagram that matches no
 * query in flight is ignored. No record parsing, no allocation after start-up, no timers
 * (a --max-seconds wall limit bounds the run; a lost datagram leaves its query
 * incomplete). `make bench` compares netmond's CPU time per DNS probe run against this
 * program's.
 *
 * Usage: dns_floor [--connect ADDR:PORT] [--count N] [--concurrency K] [--query NAME]
 *                  [--type N] [--max-seconds S]
 *   ADDR is an IPv4 loopback address (127.0.0.0/8): nothing else is accepted.
 * Prints one line on stdout:
 *   RESULT requests=N ok=N failed=N incomplete=N stray=N bytes=B wall_s=W rps=R cpu_us=C
 *          user_us=U sys_us=S cpu_us_per_req=P concurrency=K
 * where the CPU figures are this process's (getrusage RUSAGE_SELF) over the queries only.
 * Exit 0 when every query got a NOERROR answer with records, 1 otherwise, 2 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_CONCURRENCY 1024
#define HEADER_SIZE 12

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: dns_floor [--connect ADDR:PORT] [--count N] [--concurrency K] [--query NAME]\n"
      "                 [--type N] [--max-seconds S]\n"
      "  --connect      IPv4 loopback address and port of the DNS server (default 127.0.0.1:53)\n"
      "  --count        queries in total (default 2000)\n"
      "  --concurrency  queries in flight at once, 1..%d (default 1)\n"
      "  --query        the name asked (default bench.test)\n"
      "  --type         the record type asked, as a number (default 1: A)\n"
      "  --max-seconds  stop after this wall time whatever happens (default 30)\n",
      MAX_CONCURRENCY);
}

/* The query in wire form, bytes 0-1 (the id) rewritten for every query. */
static unsigned char query[HEADER_SIZE + 256 + 4];
static size_t query_len;

/* Encodes NAME and TYPE into query[]. Returns 0, or -1 when NAME is not a valid name. */
static int encode_query(const char *name, unsigned type) {
  static const unsigned char header[HEADER_SIZE] = {0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  memcpy(query, header, sizeof header); /* RD; one question; no EDNS */
  size_t at = HEADER_SIZE;
  const char *label = name;
  while (*label != '\0') {
    const char *dot = strchr(label, '.');
    size_t n = dot ? (size_t)(dot - label) : strlen(label);
    if (n == 0 || n > 63 || at + 1 + n + 5 > sizeof query) return -1;
    query[at++] = (unsigned char)n;
    memcpy(query + at, label, n);
    at += n;
    label += n + (dot ? 1 : 0);
  }
  query[at++] = 0;
  query[at++] = (unsigned char)(type >> 8);
  query[at++] = (unsigned char)type;
  query[at++] = 0;
  query[at++] = 1; /* IN */
  query_len = at;
  return 0;
}

static int fd = -1;
static unsigned char in_flight_id[65536]; /* 1 while the query with that id awaits its answer */
static int in_flight;
static uint16_t next_id;
static long long started, ok, failed, stray;
static unsigned long long bytes;
static char first_error[160];

static void fail(const char *what, int err) {
  failed++;
  if (first_error[0] == '\0')
    snprintf(first_error, sizeof first_error, "%s%s%s", what, err ? ": " : "",
             err ? strerror(err) : "");
}

/* Sends the next query. Returns 0, or -1 when it failed at once (counted). */
static int send_query(void) {
  started++;
  while (in_flight_id[next_id]) next_id++;
  uint16_t id = next_id++;
  query[0] = (unsigned char)(id >> 8);
  query[1] = (unsigned char)id;
  ssize_t n = send(fd, query, query_len, 0);
  if (n != (ssize_t)query_len) {
    fail("send", n < 0 ? errno : 0);
    return -1;
  }
  in_flight_id[id] = 1;
  in_flight++;
  return 0;
}

/* Judges one datagram. Returns 1 when it ended a query in flight, 0 when it was stray. */
static int on_answer(const unsigned char *a, size_t n) {
  if (n < HEADER_SIZE) {
    stray++;
    return 0;
  }
  unsigned id = (unsigned)a[0] << 8 | a[1];
  /* c-ares, too, drops an answer whose id or question is not a query's of its own. */
  if (!in_flight_id[id] || !(a[2] & 0x80) || n < query_len ||
      memcmp(a + 4, query + 4, 2) != 0 /* QDCOUNT 1 */ ||
      memcmp(a + HEADER_SIZE, query + HEADER_SIZE, query_len - HEADER_SIZE) != 0) {
    stray++;
    return 0;
  }
  in_flight_id[id] = 0;
  in_flight--;
  unsigned rcode = a[3] & 0x0f, ancount = (unsigned)a[6] << 8 | a[7];
  if (rcode != 0)
    fail("answer: RCODE not NOERROR", 0);
  else if (ancount < 1)
    fail("answer: no records", 0);
  else
    ok++;
  return 1;
}

int main(int argc, char **argv) {
  const char *name = "bench.test", *type_text = "1";
  const struct bench_option extra[] = {{"--query", &name}, {"--type", &type_text}};
  struct floor_options o;
  parse_floor_options(argc, argv, "127.0.0.1:53", MAX_CONCURRENCY, extra, 2, usage, &o);
  long type = atol(type_text);
  /* Loopback only: this program sends tens of thousands of queries a second. */
  if ((ntohl(o.server.sin_addr.s_addr) >> 24) != 127 || type < 1 || type > 65535 ||
      encode_query(name, (unsigned)type) != 0) {
    usage(stderr);
    return 2;
  }
  const long long count = o.count;
  const int concurrency = o.concurrency;
  stop_on_signals();

  int ep = epoll_create1(EPOLL_CLOEXEC);
  fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (ep < 0 || fd < 0) {
    perror("epoll_create1/socket");
    return 1;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (connect(fd, (struct sockaddr *)&o.server, sizeof o.server) != 0 ||
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    perror("connect/epoll_ctl");
    return 1;
  }

  struct floor_clock clock;
  floor_clock_start(&clock);
  double deadline = clock.t0 + o.max_seconds;
  while (in_flight < concurrency && started < count) send_query();
  static unsigned char buf[65536];
  int timed_out = 0, gave_up = 0;
  while (in_flight > 0 && !stop_requested && !gave_up) {
    int ms = ms_until(deadline);
    if (ms < 0) {
      timed_out = 1;
      break;
    }
    struct epoll_event got;
    int n = epoll_wait(ep, &got, 1, ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    if (n == 0) continue;
    for (;;) {
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r < 0) {
        if (errno == EAGAIN) break;
        if (errno == EINTR) continue;
        /* ICMP port unreachable (ECONNREFUSED) and the like: nobody is answering. */
        fail("recv", errno);
        gave_up = 1;
        break;
      }
      bytes += (unsigned long long)r;
      if (on_answer(buf, (size_t)r))
        while (in_flight < concurrency && started < count) send_query();
    }
  }
  floor_clock_stop(&clock);
  close(fd);
  close(ep);

  printf("RESULT requests=%lld ok=%lld failed=%lld incomplete=%lld stray=%lld bytes=%llu", count,
         ok, failed, count - ok - failed, stray, bytes);
  print_floor_clock(&clock, ok + failed);
  printf(" concurrency=%d\n", concurrency);
  if (first_error[0] != '\0') fprintf(stderr, "dns_floor: first failure: %s\n", first_error);
  if (timed_out)
    fprintf(stderr, "dns_floor: stopped after %.1f s (--max-seconds)\n", clock.t1 - clock.t0);
  return (ok == count) ? 0 : 1;
}
