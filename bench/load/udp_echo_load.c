/*
 * udp_echo_load: a bounded UDP echo load generator for `make bench`.
 *
 * Sends exactly --count datagrams of --size bytes to ADDR:PORT from --sockets
 * source sockets (distinct source ports, so a per-source rate limit is spread),
 * keeping at most --window datagrams in flight in total, and counts the echoes.
 * Uses epoll + recvmmsg/sendmmsg, non-blocking. Bounded in count and in time:
 * it stops after the last echo, or when --duration seconds have passed, or when
 * nothing has come back for --drain-ms after the last datagram was sent.
 *
 * If nothing comes back for --stall-ms while datagrams are in flight, those are
 * presumed lost and their window slots reused, so loss slows a run down but never
 * wedges it; a late echo still counts (each datagram carries its sequence number
 * and is counted once, so duplicates are reported, not counted).
 *
 * Before the timed run it waits up to --ready-ms for the server to answer a
 * ping (so a driver need not know how the server says it is ready).
 *
 * Output: a human line on stderr and one machine-readable line on stdout:
 *   RESULT sent=N echoed=N lost=N dup=N bad=N elapsed_s=F pps=F timed_out=0|1 load_cpu_s=F
 * pps = echoed / (time of last echo - time of first send).
 * Exit status: 0 when the run completed with at least one echo, 1 when the
 * server never answered, 2 on usage errors.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_SOCKETS 64
#define MAX_BATCH 256
#define MAX_SIZE 1472
#define MIN_SIZE 16            /* magic, socket index, sequence number */
#define MAGIC_RUN 0x4e4d4245u  /* "NMBE" */
#define MAGIC_PING 0x4e4d4250u /* "NMBP" */

struct header {
  uint32_t magic;
  uint32_t socket_index;
  uint64_t seq;
};

struct config {
  struct sockaddr_in target;
  const char *target_text;
  long count;
  int size;
  int window;
  int sockets;
  int batch;
  double duration_s;
  int stall_ms;
  int drain_ms;
  int ready_ms;
};

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: udp_echo_load [options] ADDR:PORT   (ADDR in 127.0.0.0/8)\n"
      "  --count N       datagrams to send (default 200000)\n"
      "  --size BYTES    payload size, %d..%d (default 64)\n"
      "  --window N      datagrams in flight, all sockets together (default 128)\n"
      "  --sockets N     source sockets / ports, 1..%d (default 4)\n"
      "  --batch N       datagrams per sendmmsg/recvmmsg, 1..%d (default 64)\n"
      "  --duration S    hard stop after S seconds (default 10)\n"
      "  --stall-ms MS   presume in-flight datagrams lost after MS without echoes (default 20)\n"
      "  --drain-ms MS   wait for late echoes after the last send (default 100)\n"
      "  --ready-ms MS   wait up to MS for the server to answer a ping first (default 5000)\n",
      MIN_SIZE, MAX_SIZE, MAX_SOCKETS, MAX_BATCH);
}

static int parse_args(int argc, char **argv, struct config *c) {
  c->count = 200000;
  c->size = 64;
  c->window = 128;
  c->sockets = 4;
  c->batch = 64;
  c->duration_s = 10.0;
  c->stall_ms = 20;
  c->drain_ms = 100;
  c->ready_ms = 5000;
  c->target_text = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (a[0] == '-' && a[1] == '-' && v == NULL) {
      return -1;
    } else if (strcmp(a, "--count") == 0) {
      c->count = atol(v), i++;
    } else if (strcmp(a, "--size") == 0) {
      c->size = atoi(v), i++;
    } else if (strcmp(a, "--window") == 0) {
      c->window = atoi(v), i++;
    } else if (strcmp(a, "--sockets") == 0) {
      c->sockets = atoi(v), i++;
    } else if (strcmp(a, "--batch") == 0) {
      c->batch = atoi(v), i++;
    } else if (strcmp(a, "--duration") == 0) {
      c->duration_s = atof(v), i++;
    } else if (strcmp(a, "--stall-ms") == 0) {
      c->stall_ms = atoi(v), i++;
    } else if (strcmp(a, "--drain-ms") == 0) {
      c->drain_ms = atoi(v), i++;
    } else if (strcmp(a, "--ready-ms") == 0) {
      c->ready_ms = atoi(v), i++;
    } else if (a[0] != '-' && c->target_text == NULL) {
      c->target_text = a;
    } else {
      return -1;
    }
  }
  if (c->target_text == NULL) return -1;
  int rc = parse_addr(c->target_text, 1, &c->target);
  /* Loopback only: this program floods its target. */
  if (rc == 0 && (ntohl(c->target.sin_addr.s_addr) >> 24) != 127) rc = -2;
  if (rc == -2) {
    fprintf(stderr, "udp_echo_load: refusing non-loopback target %s\n", c->target_text);
    return -1;
  }
  if (rc != 0 || c->count < 1 || c->count > 100000000L || c->size < MIN_SIZE ||
      c->size > MAX_SIZE || c->window < 1 || c->sockets < 1 || c->sockets > MAX_SOCKETS ||
      c->batch < 1 || c->batch > MAX_BATCH || c->duration_s <= 0 || c->duration_s > 600 ||
      c->stall_ms < 1 || c->drain_ms < 0 || c->ready_ms < 0)
    return -1;
  if (c->window < c->sockets) c->window = c->sockets;
  return 0;
}

/* Per-socket state. Every socket is connect()ed to the target, so the kernel
 * drops datagrams from anyone else and we can use send/recv without addresses. */
struct sock {
  int fd;
  long sent;     /* datagrams sent from this socket */
  long echoed;   /* distinct echoes received on it */
  long forgiven; /* in-flight datagrams presumed lost after a stall */
  int window;    /* this socket's share of the total window */
};

static int in_flight(const struct sock *s) { return (int)(s->sent - s->echoed - s->forgiven); }

static int open_sockets(const struct config *c, struct sock *socks, int ep) {
  for (int i = 0; i < c->sockets; i++) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (const struct sockaddr *)&c->target, sizeof c->target) != 0) return -1;
    socks[i].fd = fd;
    socks[i].sent = socks[i].echoed = socks[i].forgiven = 0;
    socks[i].window = c->window / c->sockets + (i < c->window % c->sockets ? 1 : 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) return -1;
  }
  return 0;
}

/* Pings from socket 0 until one comes back or ready_ms passes. */
static int wait_ready(const struct config *c, struct sock *socks, int ep) {
  double deadline = now_s() + c->ready_ms / 1000.0;
  struct header h = {.magic = MAGIC_PING, .socket_index = 0, .seq = 0};
  char buf[MAX_SIZE];
  do {
    (void)send(socks[0].fd, &h, sizeof h, 0); /* ECONNREFUSED etc.: retry */
    struct epoll_event ev;
    if (epoll_wait(ep, &ev, 1, 10) == 1) {
      ssize_t n = recv(socks[ev.data.u32].fd, buf, sizeof buf, 0);
      if (n >= (ssize_t)sizeof h && memcmp(buf, &h, sizeof h) == 0) return 0;
    }
  } while (now_s() < deadline);
  return -1;
}

int main(int argc, char **argv) {
  struct config c;
  if (parse_args(argc, argv, &c) != 0) {
    usage(stderr);
    return 2;
  }

  int ep = epoll_create1(EPOLL_CLOEXEC);
  static struct sock socks[MAX_SOCKETS];
  if (ep < 0 || open_sockets(&c, socks, ep) != 0) {
    perror("udp_echo_load: socket setup");
    return 1;
  }
  if (wait_ready(&c, socks, ep) != 0) {
    fprintf(stderr, "udp_echo_load: no echo from %s within %d ms\n", c.target_text, c.ready_ms);
    printf(
        "RESULT sent=0 echoed=0 lost=0 dup=0 bad=0 elapsed_s=0 pps=0 timed_out=1 load_cpu_s=0\n");
    return 1;
  }

  /* One bit per datagram: counts each echo once and spots duplicates. */
  unsigned char *seen = calloc((size_t)c.count / 8 + 1, 1);
  static char send_bufs[MAX_BATCH][MAX_SIZE];
  static char recv_bufs[MAX_BATCH][MAX_SIZE];
  static struct iovec send_iov[MAX_BATCH], recv_iov[MAX_BATCH];
  static struct mmsghdr send_msgs[MAX_BATCH], recv_msgs[MAX_BATCH];
  if (seen == NULL) return 1;
  for (int i = 0; i < c.batch; i++) {
    memset(send_bufs[i], 0xa5, (size_t)c.size);
    send_iov[i].iov_base = send_bufs[i];
    send_iov[i].iov_len = (size_t)c.size;
    send_msgs[i].msg_hdr.msg_iov = &send_iov[i];
    send_msgs[i].msg_hdr.msg_iovlen = 1;
    recv_iov[i].iov_base = recv_bufs[i];
    recv_iov[i].iov_len = MAX_SIZE;
    recv_msgs[i].msg_hdr.msg_iov = &recv_iov[i];
    recv_msgs[i].msg_hdr.msg_iovlen = 1;
  }

  long next_seq = 0, echoed = 0, dup = 0, bad = 0, send_errors = 0;
  double start = now_s();
  double deadline = start + c.duration_s;
  double last_echo = start, last_progress = start, all_sent_at = 0;
  int timed_out = 0;

  for (;;) {
    double t = now_s();
    if (t >= deadline) {
      timed_out = echoed < c.count;
      break;
    }
    if (echoed >= c.count) break;
    if (next_seq >= c.count) {
      if (all_sent_at == 0) all_sent_at = t;
      if (t - (last_echo > all_sent_at ? last_echo : all_sent_at) >= c.drain_ms / 1000.0)
        break; /* everything sent, and the stragglers are not coming */
    }

    /* Stall: nothing back for stall_ms while datagrams are in flight. */
    if (t - last_progress >= c.stall_ms / 1000.0) {
      for (int s = 0; s < c.sockets; s++) socks[s].forgiven += in_flight(&socks[s]);
      last_progress = t;
    }

    /* Fill every socket's window share. */
    for (int s = 0; s < c.sockets && next_seq < c.count; s++) {
      int room = socks[s].window - in_flight(&socks[s]);
      while (room > 0 && next_seq < c.count) {
        int n = room < c.batch ? room : c.batch;
        if (n > c.count - next_seq) n = (int)(c.count - next_seq);
        for (int i = 0; i < n; i++) {
          struct header h = {
              .magic = MAGIC_RUN, .socket_index = (uint32_t)s, .seq = (uint64_t)(next_seq + i)};
          memcpy(send_bufs[i], &h, sizeof h);
        }
        int sent = sendmmsg(socks[s].fd, send_msgs, (unsigned)n, MSG_DONTWAIT);
        if (sent <= 0) {
          /* Own send buffer full, or ECONNREFUSED from an earlier ICMP error:
           * try again on the next pass. */
          send_errors++;
          break;
        }
        next_seq += sent;
        socks[s].sent += sent;
        room -= sent;
      }
    }

    /* Wait for echoes, then drain every readable socket. */
    struct epoll_event evs[MAX_SOCKETS];
    int nev = epoll_wait(ep, evs, c.sockets, 5);
    for (int e = 0; e < nev; e++) {
      struct sock *s = &socks[evs[e].data.u32];
      for (;;) {
        for (int i = 0; i < c.batch; i++) recv_iov[i].iov_len = MAX_SIZE;
        int got = recvmmsg(s->fd, recv_msgs, (unsigned)c.batch, MSG_DONTWAIT, NULL);
        if (got <= 0) break;
        for (int i = 0; i < got; i++) {
          struct header h;
          if (recv_msgs[i].msg_len != (unsigned)c.size) {
            bad++;
            continue;
          }
          memcpy(&h, recv_bufs[i], sizeof h);
          if (h.magic == MAGIC_PING) continue; /* a late readiness ping */
          if (h.magic != MAGIC_RUN || h.seq >= (uint64_t)c.count ||
              h.socket_index != evs[e].data.u32) {
            bad++;
            continue;
          }
          unsigned char bit = (unsigned char)(1u << (h.seq & 7));
          if (seen[h.seq >> 3] & bit) {
            dup++;
            continue;
          }
          seen[h.seq >> 3] |= bit;
          echoed++;
          s->echoed++;
          /* An echo of a datagram already presumed lost gives its slot back twice;
           * take the extra one back so the window stays honest. */
          if (s->forgiven > 0 && in_flight(s) < 0) s->forgiven--;
        }
        last_echo = last_progress = now_s();
        if (got < c.batch) break;
      }
    }
  }

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  double elapsed = last_echo - start;
  double pps = elapsed > 0 ? (double)echoed / elapsed : 0.0;
  long lost = next_seq - echoed;
  fprintf(stderr,
          "udp_echo_load: %s: sent %ld, echoed %ld, lost %ld (%.3f%%), dup %ld, bad %ld, "
          "send retries %ld, %.3f s, %.0f echoed/s%s\n",
          c.target_text, next_seq, echoed, lost, next_seq ? 100.0 * lost / next_seq : 0.0, dup, bad,
          send_errors, elapsed, pps, timed_out ? " (hard stop: --duration reached)" : "");
  printf(
      "RESULT sent=%ld echoed=%ld lost=%ld dup=%ld bad=%ld elapsed_s=%.6f pps=%.0f "
      "timed_out=%d load_cpu_s=%.6f\n",
      next_seq, echoed, lost, dup, bad, elapsed, pps, timed_out, cpu_s);
  free(seen);
  for (int s = 0; s < c.sockets; s++) close(socks[s].fd);
  close(ep);
  return echoed > 0 ? 0 : 1;
}
