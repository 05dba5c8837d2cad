/*
 * icmp_floor: the kernel floor for an ICMP echo probe.
 *
 * The least a ping check can do for one run: send one echo request, receive its reply,
 * check it. One non-blocking raw ICMP socket (AF_INET, SOCK_RAW, IPPROTO_ICMP: a ping
 * socket is refused where net.ipv4.ping_group_range is "1 0", Debian's default),
 * registered once on an epoll set, with ICMP_FILTER passing echo replies only and a
 * classic BPF filter passing only those carrying this program's identifier (a raw socket
 * sees every ICMP message of the host: without them it would also read its own requests,
 * which loopback delivers to it, and everybody else's replies). Up to --concurrency
 * requests in flight on it, told apart by their sequence numbers. For each request: a
 * --size byte payload starting with an 8-byte random cookie, a fresh sequence number
 * (skipping those still in flight), the checksum, one sendto() to --host, the send time
 * (CLOCK_MONOTONIC, vDSO); on readiness, recv() until EAGAIN, and for each datagram check
 * the IP header's protocol, echo reply type (an echo request, type 8, is skipped), the
 * identifier, a sequence number in flight and the cookie; a reply ends its request (its
 * RTT is taken from the clock, for the RESULT line), and the next request goes out, until
 * --count requests have ended. No timers (a --max-seconds wall limit bounds the run; a
 * lost datagram leaves its request incomplete), no allocation after start-up.
 *
 * --socket per-request does what netmond's icmp probe does instead: a fresh raw socket
 * for every request (socket, both filters with an identifier of the request's slot,
 * epoll_ctl, sendto ... close), to tell the cost of that design from the rest. Every raw
 * ICMP socket open at the time gets a copy of every echo reply (and runs its BPF filter
 * on it), so with K requests in flight each reply is cloned K times.
 *
 * Usage: icmp_floor [--host ADDR] [--count N] [--concurrency K] [--size BYTES]
 *                   [--socket one|per-request] [--max-seconds S]
 *   ADDR is an IPv4 loopback address (127.0.0.0/8): nothing else is accepted.
 * Prints one line on stdout:
 *   RESULT requests=N ok=N failed=N incomplete=N stray=N bytes=B wall_s=W rps=R cpu_us=C
 *          user_us=U sys_us=S cpu_us_per_req=P rtt_avg_us=A concurrency=K socket=MODE
 * where the CPU figures are this process's (getrusage RUSAGE_SELF) over the requests only.
 * Needs CAP_NET_RAW. Exit 0 when every request got its reply, 1 otherwise, 2 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/icmp.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_CONCURRENCY 1024
#define MAX_PAYLOAD 1024
#define HEADER_SIZE 8 /* type, code, checksum, identifier, sequence */
#define COOKIE_SIZE 8
#define TYPE_ECHO_REPLY 0
#define TYPE_ECHO_REQUEST 8

static void usage(FILE *f) {
  fprintf(f,
          "usage: icmp_floor [--host ADDR] [--count N] [--concurrency K] [--size BYTES]\n"
          "                  [--socket one|per-request] [--max-seconds S]\n"
          "  --host         IPv4 loopback address to ping (default 127.0.0.1)\n"
          "  --count        echo requests in total (default 2000)\n"
          "  --concurrency  requests in flight at once, 1..%d (default 1)\n"
          "  --size         payload bytes, %d..%d (default 56, as ping's)\n"
          "  --socket       one: one raw socket for every request (default); per-request:\n"
          "                 a fresh raw socket per request, as netmond's icmp probe opens\n"
          "  --max-seconds  stop after this wall time whatever happens (default 30)\n",
          MAX_CONCURRENCY, COOKIE_SIZE, MAX_PAYLOAD);
}

static uint16_t checksum(const unsigned char *p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)p[i] << 8 | p[i + 1];
  if (n & 1) sum += (uint32_t)p[n - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* One request slot. With --socket one every slot uses the shared socket and identifier. */
struct slot {
  int fd;      /* per-request: this request's socket, -1 when idle */
  uint16_t id; /* the identifier its requests carry */
};

static struct sockaddr_in target;
static int per_request, ep = -1, shared_fd = -1;
static struct slot slots[MAX_CONCURRENCY];
static unsigned char request[HEADER_SIZE + MAX_PAYLOAD];
static size_t request_len;
static unsigned char in_flight_seq[65536]; /* 1 while the request with that seq awaits */
static int slot_of_seq[65536];
static double sent_at[65536];
static int in_flight;
static uint16_t next_seq;
static long long started, ok, failed, stray;
static unsigned long long bytes;
static double rtt_sum;
static char first_error[160];

static void fail(const char *what, int err) {
  failed++;
  if (first_error[0] == '\0')
    snprintf(first_error, sizeof first_error, "%s%s%s", what, err ? ": " : "",
             err ? strerror(err) : "");
}

/* A raw ICMP socket that reads echo replies carrying ID only, on the epoll set with DATA.
 * Returns the descriptor, or -1 (errno set). */
static int open_socket(uint16_t id, uint32_t data) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) return -1;
  /* ICMP_FILTER: a set bit drops that type, before the datagram is cloned for the socket. */
  struct icmp_filter types = {.data = ~(1u << TYPE_ECHO_REPLY)};
  /* X = the IP header's length; accept when the ICMP identifier (at X + 4) is ours. */
  struct sock_filter code[] = {
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, id, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffff),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = data};
  if (setsockopt(fd, SOL_RAW, ICMP_FILTER, &types, sizeof types) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0 ||
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

/* Sends the next request from slot S. Returns 0, or -1 when it failed at once (counted). */
static int send_request(int s) {
  started++;
  while (in_flight_seq[next_seq]) next_seq++;
  uint16_t seq = next_seq++, id = slots[s].id;
  int fd = shared_fd;
  if (per_request) {
    fd = open_socket(id, (uint32_t)s);
    if (fd < 0) {
      fail("socket", errno);
      return -1;
    }
    slots[s].fd = fd;
  }
  request[2] = request[3] = 0;
  request[4] = (unsigned char)(id >> 8);
  request[5] = (unsigned char)id;
  request[6] = (unsigned char)(seq >> 8);
  request[7] = (unsigned char)seq;
  uint16_t sum = checksum(request, request_len);
  request[2] = (unsigned char)(sum >> 8);
  request[3] = (unsigned char)sum;
  sent_at[seq] = now_s();
  ssize_t n = sendto(fd, request, request_len, 0, (struct sockaddr *)&target, sizeof target);
  if (n != (ssize_t)request_len) {
    fail("sendto", n < 0 ? errno : 0);
    if (per_request) {
      close(fd);
      slots[s].fd = -1;
    }
    return -1;
  }
  in_flight_seq[seq] = 1;
  slot_of_seq[seq] = s;
  in_flight++;
  return 0;
}

/* Judges one datagram read from slot S's socket (any slot with --socket one). Returns the
 * slot whose request it ended, or -1 when it was stray. */
static int on_datagram(int s, const unsigned char *d, size_t n) {
  size_t ihl = n > 0 ? (size_t)(d[0] & 0x0f) * 4 : 0;
  if (n < 20 || ihl < 20 || n < ihl + HEADER_SIZE + COOKIE_SIZE || d[9] != IPPROTO_ICMP) {
    stray++;
    return -1;
  }
  const unsigned char *icmp = d + ihl;
  /* Loopback hands a raw socket its own requests (type 8) too; the filters keep them out, and
   * anything but an echo reply is skipped here as well. */
  if (icmp[0] != TYPE_ECHO_REPLY) {
    stray++;
    return -1;
  }
  uint16_t id = (uint16_t)(icmp[4] << 8 | icmp[5]), seq = (uint16_t)(icmp[6] << 8 | icmp[7]);
  if (!in_flight_seq[seq] || id != slots[slot_of_seq[seq]].id ||
      (per_request && slot_of_seq[seq] != s) ||
      memcmp(icmp + HEADER_SIZE, request + HEADER_SIZE, COOKIE_SIZE) != 0) {
    stray++;
    return -1;
  }
  in_flight_seq[seq] = 0;
  in_flight--;
  rtt_sum += now_s() - sent_at[seq];
  ok++;
  return slot_of_seq[seq];
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *count_text = "2000", *concurrency_text = "1", *size_text = "56",
             *socket_text = "one", *max_seconds_text = "30";
  const struct bench_option options[] = {
      {"--host", &host},      {"--count", &count_text},   {"--concurrency", &concurrency_text},
      {"--size", &size_text}, {"--socket", &socket_text}, {"--max-seconds", &max_seconds_text},
  };
  int parsed = parse_options(argc, argv, options, sizeof options / sizeof options[0]);
  if (parsed > 0) {
    usage(stdout);
    return 0;
  }
  const long long count = atoll(count_text);
  int concurrency = atoi(concurrency_text);
  const long size = atol(size_text);
  const double max_seconds = atof(max_seconds_text);
  per_request = strcmp(socket_text, "per-request") == 0;
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  /* Loopback only: this program sends tens of thousands of requests a second. */
  if (parsed < 0 || inet_pton(AF_INET, host, &target.sin_addr) != 1 ||
      (ntohl(target.sin_addr.s_addr) >> 24) != 127 || count < 1 || concurrency < 1 ||
      concurrency > MAX_CONCURRENCY || size < COOKIE_SIZE || size > MAX_PAYLOAD ||
      max_seconds <= 0 || (!per_request && strcmp(socket_text, "one") != 0)) {
    usage(stderr);
    return 2;
  }
  if (concurrency > count) concurrency = (int)count;
  stop_on_signals();

  /* The request: type 8, code 0, the cookie and iputils' filler; id, seq, sum per request. */
  uint16_t base_id;
  unsigned char cookie[COOKIE_SIZE];
  if (getrandom(&base_id, sizeof base_id, 0) != sizeof base_id ||
      getrandom(cookie, sizeof cookie, 0) != sizeof cookie) {
    perror("getrandom");
    return 1;
  }
  request[0] = TYPE_ECHO_REQUEST;
  memcpy(request + HEADER_SIZE, cookie, COOKIE_SIZE);
  for (long i = COOKIE_SIZE; i < size; i++) request[HEADER_SIZE + i] = (unsigned char)i;
  request_len = HEADER_SIZE + (size_t)size;
  for (int s = 0; s < concurrency; s++) {
    slots[s].fd = -1;
    slots[s].id = per_request ? (uint16_t)(base_id + s) : base_id;
  }

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    perror("epoll_create1");
    return 1;
  }
  if (!per_request && (shared_fd = open_socket(base_id, 0)) < 0) {
    perror("raw ICMP socket (needs CAP_NET_RAW)");
    return 1;
  }

  struct floor_clock clock;
  floor_clock_start(&clock);
  double deadline = clock.t0 + max_seconds;
  for (int s = 0; s < concurrency && started < count; s++) send_request(s);
  static unsigned char buf[65536];
  int timed_out = 0;
  while (in_flight > 0 && !stop_requested) {
    struct epoll_event got[64];
    int n = floor_wait(ep, got, 64, deadline);
    if (n < 0) {
      timed_out = 1;
      break;
    }
    for (int e = 0; e < n; e++) {
      int s = (int)got[e].data.u32;
      int fd = per_request ? slots[s].fd : shared_fd;
      while (fd >= 0) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0) {
          if (errno == EAGAIN) break;
          if (errno == EINTR) continue;
          perror("recv");
          return 1;
        }
        bytes += (unsigned long long)r;
        int ended = on_datagram(s, buf, (size_t)r);
        if (ended < 0) continue;
        if (per_request) {
          close(fd); /* also leaves the epoll set */
          slots[ended].fd = fd = -1;
        }
        /* With --socket one, refill every idle slot: the one ended is free now. */
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
  printf(" rtt_avg_us=%.1f concurrency=%d socket=%s\n", ok > 0 ? rtt_sum * 1e6 / (double)ok : 0.0,
         concurrency, per_request ? "per-request" : "one");
  if (first_error[0] != '\0') fprintf(stderr, "icmp_floor: first failure: %s\n", first_error);
  if (timed_out)
    fprintf(stderr, "icmp_floor: stopped after %.1f s (--max-seconds)\n", clock.t1 - clock.t0);
  return (ok == count) ? 0 : 1;
}
