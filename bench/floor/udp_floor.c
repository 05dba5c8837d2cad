/*
 * udp_floor: the kernel floor for a udp probe.
 *
 * The least a UDP port check can do for one run: send one datagram to the port and
 * receive the reply. Aimed at an echo server (netmond-echo), which sends each datagram
 * back. By default one non-blocking UDP socket connected to the server, registered once
 * on an epoll set, carries every request: up to --concurrency in flight, each an 8-byte
 * sequence number (padded to --size bytes), and a reply ends the request whose number it
 * carries. --socket per-request does what netmond's udp probe does instead: a fresh
 * connected socket per request (socket, connect, epoll_ctl ADD, send, recv, close), so the
 * reply needs no matching. No allocation after start-up, no timers (a --max-seconds wall
 * limit bounds the run; a lost datagram leaves its request incomplete). `make bench`
 * compares netmond's CPU time per udp probe run against this program's.
 *
 * Usage: udp_floor [--connect ADDR:PORT] [--count N] [--concurrency K] [--size BYTES]
 *                  [--socket one|per-request] [--max-seconds S]
 *   ADDR is an IPv4 loopback address (127.0.0.0/8): nothing else is accepted.
 * Prints one line on stdout:
 *   RESULT requests=N ok=N failed=N incomplete=N stray=N wall_s=W rps=R cpu_us=C
 *          user_us=U sys_us=S cpu_us_per_req=P concurrency=K per_request=0|1
 * where the CPU figures are this process's (getrusage RUSAGE_SELF) over the requests only.
 * Exit 0 when every request got its reply, 1 otherwise, 2 usage.
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
#define MAX_SIZE 1400

static void usage(FILE *f) {
  fprintf(f,
          "usage: udp_floor [--connect ADDR:PORT] [--count N] [--concurrency K] [--size BYTES]\n"
          "                 [--socket one|per-request] [--max-seconds S]\n"
          "  --connect      IPv4 loopback address and port of an echo server (default "
          "127.0.0.1:7)\n"
          "  --count        requests in total (default 2000)\n"
          "  --concurrency  requests in flight at once, 1..%d (default 1)\n"
          "  --size         bytes per datagram, 8..%d (default 8)\n"
          "  --socket       one: one connected socket for every request (default);\n"
          "                 per-request: a fresh connected socket per request, as netmond's\n"
          "                 udp probe opens\n"
          "  --max-seconds  stop after this wall time whatever happens (default 30)\n",
          MAX_CONCURRENCY, MAX_SIZE);
}

/* One request in flight: its socket (per-request; -1 when idle) and its number. */
struct slot {
  int fd;
  int busy;
  uint64_t seq;
};

static struct sockaddr_in server;
static int per_request, ep = -1, shared_fd = -1;
static struct slot slots[MAX_CONCURRENCY];
static int concurrency, in_flight, gave_up;
static size_t size;
static long long started, ok, failed, stray;
static char first_error[160];

static void fail(const char *what, int err) {
  failed++;
  if (first_error[0] == '\0')
    snprintf(first_error, sizeof first_error, "%s: %s", what, strerror(err));
}

/* Ends slot S's request (its socket closed, per-request). */
static void end_request(int s) {
  if (per_request) {
    close(slots[s].fd);
    slots[s].fd = -1;
  }
  slots[s].busy = 0;
  in_flight--;
}

/* Sends slot S's next request. A request that fails at once is counted and ends. */
static void send_request(int s) {
  static unsigned char out[MAX_SIZE];
  struct slot *sl = &slots[s];
  started++;
  int fd = shared_fd;
  if (per_request && (fd = sl->fd = floor_udp_socket(ep, &server, (uint32_t)s)) < 0) {
    fail("socket/connect", errno);
    return;
  }
  sl->seq = (uint64_t)started << 16 | (uint64_t)s; /* which slot, and which of its requests */
  memcpy(out, &sl->seq, sizeof sl->seq);
  sl->busy = 1;
  in_flight++;
  if (send(fd, out, size, 0) != (ssize_t)size) {
    fail("send", errno);
    end_request(s);
  }
}

static void fill(long long count) {
  for (int s = 0; s < concurrency && in_flight < concurrency && started < count; s++)
    if (!slots[s].busy) send_request(s);
}

/* Reads what socket FD (slot S's, per-request) has; ends the requests it answers. */
static void on_readable(int fd, int s) {
  static unsigned char in[MAX_SIZE + 1];
  for (;;) {
    ssize_t r = recv(fd, in, sizeof in, 0);
    if (r < 0) {
      if (errno == EAGAIN) return;
      if (errno == EINTR) continue;
      /* ICMP port unreachable (ECONNREFUSED) and the like: nobody answers. Per request,
       * that request failed; on the shared socket no request can be told, so stop. */
      fail("recv", errno);
      if (per_request)
        end_request(s);
      else
        gave_up = 1;
      return;
    }
    if ((size_t)r != size) {
      stray++;
      continue;
    }
    uint64_t seq;
    memcpy(&seq, in, sizeof seq);
    int t = (int)(seq & 0xffff);
    if (t >= concurrency || !slots[t].busy || slots[t].seq != seq) {
      stray++;
      continue;
    }
    ok++;
    end_request(t);
    if (per_request) return; /* its socket is closed */
  }
}

int main(int argc, char **argv) {
  const char *size_text = "8", *socket_text = "one";
  const struct bench_option extra[] = {{"--size", &size_text}, {"--socket", &socket_text}};
  struct floor_options o;
  parse_floor_options(argc, argv, "127.0.0.1:7", MAX_CONCURRENCY, extra, 2, usage, &o);
  long n = atol(size_text);
  /* Loopback only: this program sends tens of thousands of datagrams a second. */
  if ((ntohl(o.server.sin_addr.s_addr) >> 24) != 127 || n < 8 || n > MAX_SIZE ||
      (strcmp(socket_text, "one") != 0 && strcmp(socket_text, "per-request") != 0)) {
    usage(stderr);
    return 2;
  }
  size = (size_t)n;
  per_request = strcmp(socket_text, "per-request") == 0;
  server = o.server;
  concurrency = o.concurrency;
  for (int s = 0; s < concurrency; s++) slots[s].fd = -1;
  stop_on_signals();
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0 || (!per_request && (shared_fd = floor_udp_socket(ep, &server, UINT32_MAX)) < 0)) {
    perror("epoll_create1/socket/connect");
    return 1;
  }

  struct floor_clock clock;
  floor_clock_start(&clock);
  double deadline = clock.t0 + o.max_seconds;
  int timed_out = 0;
  fill(o.count);
  while (in_flight > 0 && !stop_requested && !gave_up) {
    struct epoll_event got[64];
    int ready = floor_wait(ep, got, 64, deadline);
    if (ready < 0) {
      timed_out = 1;
      break;
    }
    for (int i = 0; i < ready; i++) {
      uint32_t s = got[i].data.u32;
      if (s == UINT32_MAX)
        on_readable(shared_fd, 0);
      else if (slots[s].busy)
        on_readable(slots[s].fd, (int)s);
    }
    fill(o.count);
  }
  floor_clock_stop(&clock);
  for (int s = 0; s < concurrency; s++)
    if (slots[s].fd >= 0) close(slots[s].fd);
  if (shared_fd >= 0) close(shared_fd);
  close(ep);

  printf("RESULT requests=%lld ok=%lld failed=%lld incomplete=%lld stray=%lld", o.count, ok, failed,
         o.count - ok - failed, stray);
  print_floor_clock(&clock, ok + failed);
  printf(" concurrency=%d per_request=%d\n", concurrency, per_request);
  if (first_error[0] != '\0') fprintf(stderr, "udp_floor: first failure: %s\n", first_error);
  if (timed_out)
    fprintf(stderr, "udp_floor: stopped after %.1f s (--max-seconds)\n", clock.t1 - clock.t0);
  return ok == o.count ? 0 : 1;
}
