/*
 * bench_util.h: what the C programs of `make bench` (floor/, load/) share. Header only,
 * plain C11: static inline functions, so a program that does not use one gets no warning.
 */
#ifndef NETMOND_BENCH_UTIL_H
#define NETMOND_BENCH_UTIL_H

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
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Set by SIGTERM and SIGINT once stop_on_signals() ran. */
static volatile sig_atomic_t stop_requested __attribute__((unused));

static inline void on_stop_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* SIGTERM and SIGINT set stop_requested. No SA_RESTART: a blocking epoll_wait returns
 * EINTR, so the main loop sees the flag at once. */
static inline void stop_on_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

/* Parses "A.B.C.D:PORT" into *out, PORT in min_port..65535. IPv4 only: the benchmarks
 * run on 127.0.0.1. Returns 0, or -1 when TEXT is not such an address. */
static inline int parse_addr(const char *text, long min_port, struct sockaddr_in *out) {
  char host[64];
  const char *colon = strrchr(text, ':');
  if (colon == NULL || (size_t)(colon - text) >= sizeof host) return -1;
  memcpy(host, text, (size_t)(colon - text));
  host[colon - text] = '\0';
  char *end = NULL;
  long port = strtol(colon + 1, &end, 10);
  if (*end != '\0' || port < min_port || port > 65535) return -1;
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, host, &out->sin_addr) != 1) return -1;
  return 0;
}

/* The monotonic clock, in seconds. */
static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline long long tv_us(struct timeval tv) {
  return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* One "--NAME VALUE" option: where its VALUE goes (the caller converts it). */
struct bench_option {
  const char *name;
  const char **value;
};

/* Parses argv against the N options. Returns 0; 1 for -h or --help; -1 for anything
 * else (an unknown option, a missing value). */
static inline int parse_options(int argc, char **argv, const struct bench_option *options,
                                size_t n) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    size_t k = 0;
    while (k < n && strcmp(argv[i], options[k].name) != 0) k++;
    if (k == n || i + 1 >= argc) return -1;
    *options[k].value = argv[++i];
  }
  return 0;
}

/* The options of a request/response floor (http_floor, dns_floor). */
struct floor_options {
  const char *connect_text; /* --connect ADDR:PORT, the server */
  struct sockaddr_in server;
  long long count;    /* --count: requests in total (default 2000) */
  int concurrency;    /* --concurrency: in flight at once, 1..max (default 1) */
  double max_seconds; /* --max-seconds: wall limit (default 30) */
};

/* Parses argv into *o (--connect defaults to CONNECT) and the program's own options, EXTRA
 * (N_EXTRA of them; their values are left to the caller). -h or --help prints USAGE to
 * stdout and exits 0; an unknown option, a missing or invalid value prints it to stderr
 * and exits 2. */
static inline void parse_floor_options(int argc, char **argv, const char *connect,
                                       int max_concurrency, const struct bench_option *extra,
                                       size_t n_extra, void (*usage)(FILE *),
                                       struct floor_options *o) {
  const char *count = "2000", *concurrency = "1", *max_seconds = "30";
  struct bench_option options[16] = {{"--connect", &connect},
                                     {"--count", &count},
                                     {"--concurrency", &concurrency},
                                     {"--max-seconds", &max_seconds}};
  size_t n = 4;
  for (size_t i = 0; i < n_extra && n < sizeof options / sizeof options[0]; i++)
    options[n++] = extra[i];
  int parsed = parse_options(argc, argv, options, n);
  if (parsed > 0) {
    usage(stdout);
    exit(0);
  }
  o->connect_text = connect;
  o->count = atoll(count);
  o->concurrency = atoi(concurrency);
  o->max_seconds = atof(max_seconds);
  if (parsed < 0 || parse_addr(connect, 1, &o->server) != 0 || o->count < 1 || o->concurrency < 1 ||
      o->concurrency > max_concurrency || o->max_seconds <= 0) {
    usage(stderr);
    exit(2);
  }
  if (o->concurrency > o->count) o->concurrency = (int)o->count;
}

/* Milliseconds for epoll_wait until DEADLINE (now_s() time), at most 1000; -1 when it has
 * passed. */
static inline int ms_until(double deadline) {
  double left = deadline - now_s();
  if (left <= 0) return -1;
  return left > 1 ? 1000 : (int)(left * 1000) + 1;
}

/* Waits on the epoll set EP for up to MAX events until DEADLINE (now_s() time): the number
 * ready (0 when a signal came first), or -1 once DEADLINE has passed. Exits 1 when
 * epoll_wait fails. */
static inline int floor_wait(int ep, struct epoll_event *got, int max, double deadline) {
  int ms = ms_until(deadline);
  if (ms < 0) return -1;
  int n = epoll_wait(ep, got, max, ms);
  if (n >= 0) return n;
  if (errno == EINTR) return 0;
  perror("epoll_wait");
  exit(1);
}

/* A non-blocking UDP socket connected to SERVER, on the epoll set EP for EPOLLIN with DATA.
 * Returns the descriptor, or -1 (errno set). */
static inline int floor_udp_socket(int ep, const struct sockaddr_in *server, uint32_t data) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = data};
  if (connect(fd, (const struct sockaddr *)server, sizeof *server) != 0 ||
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

/* The wall clock and this process's CPU time over a floor's requests. */
struct floor_clock {
  struct rusage ru0, ru1;
  double t0, t1;
};

static inline void floor_clock_start(struct floor_clock *c) {
  getrusage(RUSAGE_SELF, &c->ru0);
  c->t0 = now_s();
}

static inline void floor_clock_stop(struct floor_clock *c) {
  c->t1 = now_s();
  getrusage(RUSAGE_SELF, &c->ru1);
}

/* Prints " wall_s=W rps=R cpu_us=C user_us=U sys_us=S cpu_us_per_req=P" for ENDED requests
 * (the middle of a floor's RESULT line). */
static inline void print_floor_clock(const struct floor_clock *c, long long ended) {
  long long user = tv_us(c->ru1.ru_utime) - tv_us(c->ru0.ru_utime);
  long long sys = tv_us(c->ru1.ru_stime) - tv_us(c->ru0.ru_stime);
  double wall = c->t1 - c->t0;
  printf(" wall_s=%.6f rps=%.1f cpu_us=%lld user_us=%lld sys_us=%lld cpu_us_per_req=%.3f", wall,
         wall > 0 ? (double)ended / wall : 0.0, user + sys, user, sys,
         ended > 0 ? (double)(user + sys) / (double)ended : 0.0);
}

#endif
