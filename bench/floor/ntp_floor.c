/*
 * ntp_floor: the kernel floor for an NTP (SNTP) probe.
 *
 * The least an SNTP check can do for one run: send one client request, receive the
 * server's answer, check it and compute the offset. One non-blocking UDP socket connected
 * to the server (the kernel then drops datagrams from anyone else), registered once on an
 * epoll set; up to --concurrency requests in flight on it, told apart by their transmit
 * timestamps. For each request: a 48-byte request (LI 0, version 4, mode 3, all else zero)
 * whose transmit timestamp is a fresh 64-bit random nonce (a splitmix64 sequence seeded
 * once from getrandom: what the server echoes as the origin must prove it saw this very
 * request), T1 from CLOCK_REALTIME (vDSO), one send(); on readiness, recv() until EAGAIN,
 * and for each answer check its length (>= 48), version 1..4, mode 4 (server), a non-zero
 * stratum and transmit timestamp, and an origin timestamp that is the nonce of a request
 * in flight; T4 from the clock, and offset and delay from T1..T4 (RFC 5905), summed for
 * the RESULT line. An answer ends its request, and the next request goes out, until
 * --count requests have ended. A datagram that matches no request in flight is ignored.
 * No timers (a --max-seconds wall limit bounds the run; a lost datagram leaves its request
 * incomplete), no allocation after start-up.
 *
 * --socket per-request does what netmond's ntp probe does instead: a fresh connected UDP
 * socket for every request (so a fresh random source port: socket, connect, epoll_ctl,
 * send ... close), to tell the cost of that design from the rest.
 *
 * Usage: ntp_floor [--connect ADDR:PORT] [--count N] [--concurrency K]
 *                  [--socket one|per-request] [--max-seconds S]
 *   ADDR is an IPv4 loopback address (127.0.0.0/8): nothing else is accepted.
 * Prints one line on stdout:
 *   RESULT requests=N ok=N failed=N incomplete=N stray=N bytes=B wall_s=W rps=R cpu_us=C
 *          user_us=U sys_us=S cpu_us_per_req=P offset_avg_us=O delay_avg_us=D
 *          concurrency=K socket=MODE
 * where the CPU figures are this process's (getrusage RUSAGE_SELF) over the requests only.
 * Exit 0 when every request got a valid answer, 1 otherwise, 2 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_CONCURRENCY 1024
#define PACKET_SIZE 48
#define NTP_UNIX_OFFSET 2208988800ULL /* seconds from 1900 to 1970 */

static void usage(FILE *f) {
  fprintf(f,
          "usage: ntp_floor [--connect ADDR:PORT] [--count N] [--concurrency K]\n"
          "                 [--socket one|per-request] [--max-seconds S]\n"
          "  --connect      IPv4 loopback address and port of the NTP server (default "
          "127.0.0.1:123)\n"
          "  --count        requests in total (default 2000)\n"
          "  --concurrency  requests in flight at once, 1..%d (default 1)\n"
          "  --socket       one: one connected socket for every request (default);\n"
          "                 per-request: a fresh connected socket per request, as netmond's\n"
          "                 ntp probe opens\n"
          "  --max-seconds  stop after this wall time whatever happens (default 30)\n",
          MAX_CONCURRENCY);
}

static uint64_t rng_state;
static uint64_t splitmix64(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* CLOCK_REALTIME as an NTP timestamp (32.32 fixed point since 1900). */
static uint64_t ntp_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ((uint64_t)ts.tv_sec + NTP_UNIX_OFFSET) << 32 |
         (uint64_t)(((unsigned __int128)ts.tv_nsec << 32) / 1000000000u);
}

static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

/* NTP timestamp difference a - b in seconds (the two within 68 years of each other). */
static double diff_s(uint64_t a, uint64_t b) { return (double)(int64_t)(a - b) / 4294967296.0; }

/* One request in flight. */
struct slot {
  int fd;         /* per-request: this request's socket; -1 when idle */
  int busy;       /* a request awaits its answer */
  uint64_t nonce; /* its transmit timestamp */
  uint64_t t1;    /* the clock right before the send */
};

static struct sockaddr_in server;
static int per_request, ep = -1, shared_fd = -1;
static struct slot slots[MAX_CONCURRENCY];
static int concurrency, in_flight;
static long long started, ok, failed, stray;
static unsigned long long bytes;
static double offset_sum, delay_sum;
static char first_error[160];

static void fail(const char *what, int err) {
  failed++;
  if (first_error[0] == '\0')
    snprintf(first_error, sizeof first_error, "%s%s%s", what, err ? ": " : "",
             err ? strerror(err) : "");
}

/* Sends slot S's next request. Returns 0, or -1 when it failed at once (counted). */
static int send_request(int s) {
  started++;
  struct slot *sl = &slots[s];
  int fd = shared_fd;
  if (per_request) {
    fd = floor_udp_socket(ep, &server, (uint32_t)s);
    if (fd < 0) {
      fail("socket/connect", errno);
      return -1;
    }
    sl->fd = fd;
  }
  unsigned char q[PACKET_SIZE] = {0x23}; /* LI 0, version 4, mode 3 (client) */
  do sl->nonce = splitmix64();
  while (sl->nonce == 0);
  for (int i = 0; i < 8; i++) q[40 + i] = (unsigned char)(sl->nonce >> (56 - 8 * i));
  sl->t1 = ntp_now();
  ssize_t n = send(fd, q, sizeof q, 0);
  if (n != (ssize_t)sizeof q) {
    fail("send", n < 0 ? errno : 0);
    if (per_request) {
      close(fd);
      sl->fd = -1;
    }
    return -1;
  }
  sl->busy = 1;
  in_flight++;
  return 0;
}

/* Judges one datagram read from slot S's socket (any slot with --socket one). Returns the
 * slot whose request it ended, or -1 when it was stray. */
static int on_answer(int s, const unsigned char *a, size_t n) {
  uint64_t t4 = ntp_now();
  unsigned version = (a[0] >> 3) & 7, mode = a[0] & 7;
  if (n < PACKET_SIZE || version < 1 || version > 4 || mode != 4 || a[1] == 0 ||
      get64(a + 40) == 0) {
    stray++;
    return -1;
  }
  uint64_t origin = get64(a + 24);
  int e = -1;
  if (per_request) {
    if (slots[s].busy && slots[s].nonce == origin) e = s;
  } else {
    for (int i = 0; i < concurrency && e < 0; i++)
      if (slots[i].busy && slots[i].nonce == origin) e = i;
  }
  if (e < 0) {
    stray++;
    return -1;
  }
  slots[e].busy = 0;
  in_flight--;
  uint64_t t1 = slots[e].t1, t2 = get64(a + 32), t3 = get64(a + 40);
  offset_sum += (diff_s(t2, t1) + diff_s(t3, t4)) / 2;
  delay_sum += diff_s(t4, t1) - diff_s(t3, t2);
  ok++;
  return e;
}

int main(int argc, char **argv) {
  const char *socket_text = "one";
  const struct bench_option extra[] = {{"--socket", &socket_text}};
  struct floor_options o;
  parse_floor_options(argc, argv, "127.0.0.1:123", MAX_CONCURRENCY, extra, 1, usage, &o);
  per_request = strcmp(socket_text, "per-request") == 0;
  /* Loopback only: this program sends tens of thousands of requests a second. */
  if ((ntohl(o.server.sin_addr.s_addr) >> 24) != 127 ||
      (!per_request && strcmp(socket_text, "one") != 0)) {
    usage(stderr);
    return 2;
  }
  server = o.server;
  const long long count = o.count;
  concurrency = o.concurrency;
  stop_on_signals();
  if (getrandom(&rng_state, sizeof rng_state, 0) != sizeof rng_state) {
    perror("getrandom");
    return 1;
  }
  for (int s = 0; s < concurrency; s++) slots[s].fd = -1;

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    perror("epoll_create1");
    return 1;
  }
  if (!per_request && (shared_fd = floor_udp_socket(ep, &server, 0)) < 0) {
    perror("socket/connect");
    return 1;
  }

  struct floor_clock clock;
  floor_clock_start(&clock);
  double deadline = clock.t0 + o.max_seconds;
  for (int s = 0; s < concurrency && started < count; s++) send_request(s);
  static unsigned char buf[65536];
  int timed_out = 0, gave_up = 0;
  while (in_flight > 0 && !stop_requested && !gave_up) {
    struct epoll_event got[64];
    int n = floor_wait(ep, got, 64, deadline);
    if (n < 0) {
      timed_out = 1;
      break;
    }
    for (int i = 0; i < n && !gave_up; i++) {
      int s = (int)got[i].data.u32;
      int fd = per_request ? slots[s].fd : shared_fd;
      while (fd >= 0) {
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
        int ended = on_answer(s, buf, (size_t)r);
        if (ended < 0) continue;
        if (per_request) {
          close(fd); /* also leaves the epoll set */
          slots[ended].fd = fd = -1;
        }
        while (started < count && send_request(ended) != 0) {
        }
      }
    }
  }
  floor_clock_stop(&clock);
  for (int s = 0; s < concurrency; s++)
    if (slots[s].fd >= 0) close(slots[s].fd);
  if (shared_fd >= 0) close(shared_fd);
  close(ep);

  printf("RESULT requests=%lld ok=%lld failed=%lld incomplete=%lld stray=%lld bytes=%llu", count,
         ok, failed, count - ok - failed, stray, bytes);
  print_floor_clock(&clock, ok + failed);
  printf(" offset_avg_us=%.1f delay_avg_us=%.1f concurrency=%d socket=%s\n",
         ok > 0 ? offset_sum * 1e6 / (double)ok : 0.0, ok > 0 ? delay_sum * 1e6 / (double)ok : 0.0,
         concurrency, per_request ? "per-request" : "one");
  if (first_error[0] != '\0') fprintf(stderr, "ntp_floor: first failure: %s\n", first_error);
  if (timed_out)
    fprintf(stderr, "ntp_floor: stopped after %.1f s (--max-seconds)\n", clock.t1 - clock.t0);
  return (ok == count) ? 0 : 1;
}
