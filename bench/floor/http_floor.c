/*
 * http_floor: the kernel floor for an HTTP probe.
 *
 * The least an HTTP check can do for one run: a fresh TCP connection, one request,
 * the whole response, close. For each request: socket, a non-blocking connect, write
 * "GET PATH HTTP/1.1\r\nHost: ...\r\nConnection: close\r\n\r\n" once the connection is
 * writable, read until EOF, check that the status line says 200, close. Up to
 * --concurrency connections are in flight at once on one epoll set (edge-triggered,
 * registered once per connection for both directions, so no epoll_ctl MOD and no
 * EPOLL_CTL_DEL: close() removes it); a connection that ends starts the next request,
 * until --count requests have ended. No HTTP parsing beyond the status line, no
 * allocation after start-up, no timers (a --max-seconds wall limit bounds the run).
 * `make bench` compares netmond's CPU time per HTTP probe run against this program's.
 *
 * Usage: http_floor [--connect ADDR:PORT] [--count N] [--concurrency K] [--path PATH]
 *                   [--max-seconds S]
 *   ADDR is an IPv4 address (the benchmark runs on 127.0.0.1 only).
 * Prints one line on stdout:
 *   RESULT requests=N ok=N failed=N incomplete=N bytes=B wall_s=W rps=R cpu_us=C
 *          user_us=U sys_us=S cpu_us_per_req=P
 * where the CPU figures are this process's (getrusage RUSAGE_SELF) over the requests
 * only. Exit 0 when every request got a 200, 1 otherwise.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
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
#define BUF_SIZE 16384

struct conn {
  int fd;        /* -1 when the slot is idle */
  int sent;      /* the request has been written */
  int status_ok; /* the response began with "HTTP/1.x 200 " */
  size_t got;    /* response bytes so far */
  char head[16]; /* the first bytes of the response */
};

static void usage(FILE *f) {
  fprintf(f,
          "usage: http_floor [--connect ADDR:PORT] [--count N] [--concurrency K] [--path PATH]\n"
          "                  [--max-seconds S]\n"
          "  --connect      IPv4 address and port of the HTTP server (default 127.0.0.1:80)\n"
          "  --count        requests in total (default 2000)\n"
          "  --concurrency  requests in flight at once, 1..%d (default 1)\n"
          "  --path         the request path (default /)\n"
          "  --max-seconds  stop after this wall time whatever happens (default 30)\n",
          MAX_CONCURRENCY);
}

static struct sockaddr_in server;
static char request[512];
static size_t request_len;
static int ep = -1;
static long long started, ok, failed;
static unsigned long long bytes;
static char first_error[160];

static void fail(const char *what, int err) {
  failed++;
  if (first_error[0] == '\0')
    snprintf(first_error, sizeof first_error, "%s: %s", what, err ? strerror(err) : "error");
}

/* Starts the next request in slot c. Returns 0, or -1 when it failed at once (counted). */
static int start_request(struct conn *c) {
  started++;
  c->sent = 0;
  c->status_ok = 0;
  c->got = 0;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    fail("socket", errno);
    return -1;
  }
  if (connect(c->fd, (struct sockaddr *)&server, sizeof server) != 0 && errno != EINPROGRESS) {
    fail("connect", errno);
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
    fail("epoll_ctl", errno);
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  return 0;
}

/* Ends the request in slot c (closing its socket), counted as ok or failed. */
static void end_request(struct conn *c, int ok_now) {
  close(c->fd);
  c->fd = -1;
  if (ok_now) ok++;
}

/* Handles readiness on slot c. Returns 1 when the request has ended. */
static int on_ready(struct conn *c, unsigned events) {
  static char buf[BUF_SIZE];
  if (!c->sent) {
    if (events & EPOLLERR) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      fail("connect", err);
      end_request(c, 0);
      return 1;
    }
    if (!(events & EPOLLOUT)) return 0;
    ssize_t n = write(c->fd, request, request_len);
    if (n != (ssize_t)request_len) {
      fail("write", n < 0 ? errno : 0);
      end_request(c, 0);
      return 1;
    }
    c->sent = 1;
    /* Edge-triggered: the response may already be there; fall through to read. */
  }
  for (;;) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n > 0) {
      if (c->got < sizeof c->head) {
        size_t take = (size_t)n < sizeof c->head - c->got ? (size_t)n : sizeof c->head - c->got;
        memcpy(c->head + c->got, buf, take);
        if (c->got + take >= 13)
          c->status_ok = memcmp(c->head, "HTTP/1.", 7) == 0 && memcmp(c->head + 8, " 200 ", 5) == 0;
      }
      c->got += (size_t)n;
      bytes += (unsigned long long)n;
      continue;
    }
    if (n == 0) { /* EOF: the whole response is in */
      if (!c->status_ok) fail("response", 0);
      end_request(c, c->status_ok);
      return 1;
    }
    if (errno == EAGAIN) return 0;
    if (errno == EINTR) continue;
    fail("read", errno);
    end_request(c, 0);
    return 1;
  }
}

int main(int argc, char **argv) {
  const char *path = "/";
  const struct bench_option extra[] = {{"--path", &path}};
  struct floor_options o;
  parse_floor_options(argc, argv, "127.0.0.1:80", MAX_CONCURRENCY, extra, 1, usage, &o);
  if (path[0] != '/') {
    usage(stderr);
    return 2;
  }
  server = o.server;
  const long long count = o.count;
  const int concurrency = o.concurrency;
  int len =
      snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
               path, o.connect_text);
  if (len < 0 || (size_t)len >= sizeof request) {
    fprintf(stderr, "http_floor: path too long\n");
    return 2;
  }
  request_len = (size_t)len;

  stop_on_signals();
  signal(SIGPIPE, SIG_IGN);

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    perror("epoll_create1");
    return 1;
  }
  static struct conn conns[MAX_CONCURRENCY];

  struct floor_clock clock;
  floor_clock_start(&clock);
  double deadline = clock.t0 + o.max_seconds;
  int in_flight = 0;
  for (int i = 0; i < concurrency; i++) {
    conns[i].fd = -1;
    while (started < count && start_request(&conns[i]) != 0) {
    }
    if (conns[i].fd >= 0) in_flight++;
  }
  struct epoll_event events[MAX_CONCURRENCY];
  int timed_out = 0;
  while (in_flight > 0 && !stop_requested) {
    int ms = ms_until(deadline);
    if (ms < 0) {
      timed_out = 1;
      break;
    }
    int n = epoll_wait(ep, events, MAX_CONCURRENCY, ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c->fd < 0 || !on_ready(c, events[i].events)) continue;
      in_flight--;
      while (started < count && start_request(c) != 0) {
      }
      if (c->fd >= 0) in_flight++;
    }
  }
  floor_clock_stop(&clock);
  long long incomplete = count - ok - failed;
  for (int i = 0; i < concurrency; i++)
    if (conns[i].fd >= 0) close(conns[i].fd);
  close(ep);

  printf("RESULT requests=%lld ok=%lld failed=%lld incomplete=%lld bytes=%llu", count, ok, failed,
         incomplete, bytes);
  print_floor_clock(&clock, ok + failed);
  printf(" concurrency=%d\n", concurrency);
  if (first_error[0] != '\0') fprintf(stderr, "http_floor: first failure: %s\n", first_error);
  if (timed_out)
    fprintf(stderr, "http_floor: stopped after %.1f s (--max-seconds)\n", clock.t1 - clock.t0);
  return (ok == count) ? 0 : 1;
}
