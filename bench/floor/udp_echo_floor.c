/*
 * udp_echo_floor: the kernel floor for UDP echo.
 *
 * A minimal single-threaded UDP echo server doing exactly the kernel work an
 * echo server has to do and nothing else: one non-blocking socket, epoll, then
 * recvmmsg a batch of up to BATCH datagrams and sendmmsg each one back to its
 * sender. No parsing, no policy, no logging, no allocation after start-up.
 * `make bench` compares netmond-echo's datagrams/s against this program's.
 *
 * Usage: udp_echo_floor [--listen ADDR:PORT] [--batch N] [--send-each]
 *   ADDR is an IPv4 address (the benchmark runs on 127.0.0.1 only).
 *   --send-each answers with one sendmsg per datagram instead of one sendmmsg per
 *   batch (what a server built on uv_udp_try_send does): a diagnostic, to show what
 *   batching the replies is worth; the benchmark's floor does not use it.
 * Prints "listening ADDR:PORT" on stdout once bound; exits 0 on SIGTERM/SIGINT
 * and prints its counters on stderr.
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
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_BATCH 256
#define BUF_SIZE 2048

static void usage(FILE *f) {
  fprintf(f,
          "usage: udp_echo_floor [--listen ADDR:PORT] [--batch N] [--send-each]\n"
          "  --listen     IPv4 address and port to bind (default 127.0.0.1:10199)\n"
          "  --batch      datagrams per recvmmsg/sendmmsg call, 1..%d (default 64)\n"
          "  --send-each  reply with one sendmsg per datagram (diagnostic)\n",
          MAX_BATCH);
}

int main(int argc, char **argv) {
  const char *listen_text = "127.0.0.1:10199";
  int batch = 64;
  int send_each = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      listen_text = argv[++i];
    } else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
      batch = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--send-each") == 0) {
      send_each = 1;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  struct sockaddr_in addr;
  if (parse_addr(listen_text, 0, &addr) != 0 || batch < 1 || batch > MAX_BATCH) {
    usage(stderr);
    return 2;
  }

  stop_on_signals();

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("socket");
    return 1;
  }
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    fprintf(stderr, "bind %s: %s\n", listen_text, strerror(errno));
    return 1;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    perror("epoll");
    return 1;
  }

  static char bufs[MAX_BATCH][BUF_SIZE];
  static struct sockaddr_in peers[MAX_BATCH];
  static struct iovec iovs[MAX_BATCH];
  static struct mmsghdr msgs[MAX_BATCH];

  printf("listening %s\n", listen_text);
  fflush(stdout);

  unsigned long long received = 0, echoed = 0, send_dropped = 0;
  while (!stop_requested) {
    struct epoll_event out;
    int n = epoll_wait(ep, &out, 1, 1000);
    if (n < 0 && errno != EINTR) {
      perror("epoll_wait");
      return 1;
    }
    if (n <= 0) continue;
    /* Drain the socket: batches until it would block. */
    for (;;) {
      for (int i = 0; i < batch; i++) {
        iovs[i].iov_base = bufs[i];
        iovs[i].iov_len = BUF_SIZE;
        memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
        msgs[i].msg_hdr.msg_name = &peers[i];
        msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int got = recvmmsg(fd, msgs, (unsigned)batch, MSG_DONTWAIT, NULL);
      if (got <= 0) break; /* EAGAIN (or EINTR): back to epoll */
      received += (unsigned)got;
      for (int i = 0; i < got; i++) iovs[i].iov_len = msgs[i].msg_len;
      if (send_each) {
        for (int i = 0; i < got; i++) {
          if (sendmsg(fd, &msgs[i].msg_hdr, MSG_DONTWAIT) >= 0)
            echoed++;
          else
            send_dropped++;
        }
        if (got < batch) break;
        continue;
      }
      int off = 0;
      while (off < got) {
        int sent = sendmmsg(fd, msgs + off, (unsigned)(got - off), MSG_DONTWAIT);
        if (sent <= 0) {
          /* Socket full or a per-datagram error: drop that one, as an echo
           * server that never queues must. */
          send_dropped++;
          off++;
          continue;
        }
        echoed += (unsigned)sent;
        off += sent;
      }
      if (got < batch) break;
    }
  }
  fprintf(stderr, "udp_echo_floor: received=%llu echoed=%llu send_dropped=%llu\n", received, echoed,
          send_dropped);
  close(ep);
  close(fd);
  return 0;
}
