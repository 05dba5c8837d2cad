/*
 * tcp_floor: the kernel floor for a TCP connect probe.
 *
 * The least a TCP check can do for one run: open a connection and close it. For each run:
 * socket, a non-blocking connect(), wait on one epoll set until the socket is writable,
 * read SO_ERROR (0: connected), close. Up to --concurrency connections are in flight at
 * once; each is registered once (EPOLLOUT, one-shot in effect: close() removes it, so no
 * EPOLL_CTL_DEL), and one that ends starts the next, until --count runs have ended. No
 * allocation after start-up, no timers (a --max-seconds wall limit bounds the run).
 * `make bench` compares netmond's CPU time per tcp probe run against this program's.
 *
 * Usage: tcp_floor [--connect ADDR:PORT] [--count N] [--concurrency K] [--max-seconds S]
 *   ADDR is an IPv4 loopback address (127.0.0.0/8): nothing else is accepted.
 * Prints one line on stdout:
 *   RESULT requests=N ok=N failed=N incomplete=N wall_s=W rps=R cpu_us=C user_us=U
 *          sys_us=S cpu_us_per_req=P concurrency=K
 * where the CPU figures are this process's (getrusage RUSAGE_SELF) over the runs only.
 * Exit 0 when every connect succeeded, 1 otherwise, 2 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_CONCURRENCY 1024

static void usage(FILE *f) {
  fprintf(f,
          "usage: tcp_floor [--connect ADDR:PORT] [--count N] [--concurrency K]\n"
          "                 [--max-seconds S]\n"
          "  --connect      IPv4 loopback address and port of a listener (default "
          "127.0.0.1:80)\n"
          "  --count        connects in total (default 2000)\n"
          "  --concurrency  connects in flight at once, 1..%d (default 1)\n"
          "  --max-seconds  stop after this wall time whatever happens (default 30)\n",
          MAX_CONCURRENCY);
}

static int ep = -1;
static struct sockaddr_in server;
static int in_flight;
static long long started, ok, failed;
static char first_error[160];

static void fail(const char *what, int err) {
  failed++;
  if (first_error[0] == '\0')
    snprintf(first_error, sizeof first_error, "%s: %s", what, strerror(err));
}

/* Starts the next connect. A connect that fails at once is counted and ends its run. */
static void start_connect(void) {
  started++;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail("socket", errno);
    return;
  }
  if (connect(fd, (struct sockaddr *)&server, sizeof server) != 0 && errno != EINPROGRESS) {
    fail("connect", errno);
    close(fd);
    return;
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    fail("epoll_ctl", errno);
    close(fd);
    return;
  }
  in_flight++;
}

static void fill(const struct floor_options *o) {
  while (in_flight < o->concurrency && started < o->count && !stop_requested) start_connect();
}

int main(int argc, char **argv) {
  struct floor_options o;
  parse_floor_options(argc, argv, "127.0.0.1:80", MAX_CONCURRENCY, NULL, 0, usage, &o);
  /* Loopback only: this program opens tens of thousands of connections a second. */
  if ((ntohl(o.server.sin_addr.s_addr) >> 24) != 127) {
    usage(stderr);
    return 2;
  }
  server = o.server;
  stop_on_signals();
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    perror("epoll_create1");
    return 1;
  }

  struct floor_clock clock;
  floor_clock_start(&clock);
  double deadline = clock.t0 + o.max_seconds;
  int timed_out = 0;
  fill(&o);
  while (in_flight > 0 && !stop_requested) {
    struct epoll_event got[64];
    int n = floor_wait(ep, got, 64, deadline);
    if (n < 0) {
      timed_out = 1;
      break;
    }
    for (int i = 0; i < n; i++) {
      int fd = got[i].data.fd, err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == 0)
        ok++;
      else
        fail("connect", err);
      close(fd);
      in_flight--;
    }
    fill(&o);
  }
  floor_clock_stop(&clock);
  close(ep);

  printf("RESULT requests=%lld ok=%lld failed=%lld incomplete=%lld", o.count, ok, failed,
         o.count - ok - failed);
  print_floor_clock(&clock, ok + failed);
  printf(" concurrency=%d\n", o.concurrency);
  if (first_error[0] != '\0') fprintf(stderr, "tcp_floor: first failure: %s\n", first_error);
  if (timed_out)
    fprintf(stderr, "tcp_floor: stopped after %.1f s (--max-seconds)\n", clock.t1 - clock.t0);
  return ok == o.count ? 0 : 1;
}
