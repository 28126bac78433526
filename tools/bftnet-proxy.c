/*
 * bftnet-proxy — a fault-injecting TCP proxy (tools/lib/fault_proxy.h) as a
 * process, for shell scripts and bftnet-cluster.
 *
 *   bftnet-proxy --listen ADDR:PORT --target ADDR:PORT [--latency-ms N]
 *                [--jitter-ms N] [--slice N] [--seed N] [--queue-max BYTES]
 *                [--max-conns N]
 *
 * ADDR:PORT is 127.0.0.1:9000, [::1]:9000 or /ip4/127.0.0.1/tcp/9000; both
 * must be loopback. Port 0 picks a free port. The first stdout line is the
 * bound address (e.g. 127.0.0.1:41873). It runs until SIGTERM or SIGINT (or
 * the `quit` command) and exits 0; 1 if it cannot start, 2 on usage errors.
 * -h/--help and --version print on stdout and exit 0.
 *
 * Control: one command per line on stdin, one answer line on stdout, which
 * starts with "ok" or "error:".
 *   cut                  reset every current connection ("ok cut=N")
 *   blackhole on|off     stall / resume every connection
 *   refuse on|off        reset new connections on accept
 *   latency MS [JITTER]  delay every chunk (0 = off)
 *   slice N              forward in segments of 1..N bytes (0 = off)
 *   seed N               re-seed the slice/jitter RNG
 *   stats                "ok accepted=.. refused=.. ... queued=.. queued_peak=.."
 *   quit                 close and exit 0
 * Stdin is read only if it is a pipe, socket or terminal; EOF on it does
 * not stop the proxy (only a signal or `quit` does).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "fault_proxy.h"
#include "text.h"

#define LINE_MAX_ 256

typedef struct app {
  uv_loop_t *loop;
  fault_proxy_t *proxy;
  uv_signal_t sigterm, sigint;
  union {
    uv_pipe_t pipe;
    uv_tty_t tty;
    uv_stream_t stream;
  } in;
  bool in_open, stopping;
  char line[LINE_MAX_];
  size_t line_len;
  bool line_overflow;
  char rbuf[1024];
} app_t;

static const char synopsis[] =
    "usage: bftnet-proxy --listen ADDR:PORT --target ADDR:PORT [--latency-ms N]\n"
    "                    [--jitter-ms N] [--slice N] [--seed N] [--queue-max BYTES]\n"
    "                    [--max-conns N]\n";

static void help(void) {
  printf("%s"
         "\n"
         "A fault-injecting TCP proxy, loopback only. ADDR:PORT is 127.0.0.1:9000,\n"
         "[::1]:9000 or /ip4/127.0.0.1/tcp/9000; port 0 picks a free port. The first\n"
         "stdout line is the bound address; it runs until SIGTERM, SIGINT or `quit`.\n"
         "\n"
         "  --listen ADDR:PORT  where to accept\n"
         "  --target ADDR:PORT  where to forward\n"
         "  --latency-ms N      delay every chunk by N ms, at most 600000 (default 0)\n"
         "  --jitter-ms N       latency +/- up to N ms, random, order kept (default 0)\n"
         "  --slice N           forward in segments of 1..N bytes, N <= 65536 (default 0:\n"
         "                      as read)\n"
         "  --seed N            the slice and jitter RNG's seed (default 1)\n"
         "  --queue-max BYTES   bytes queued per direction, 64..67108864; beyond it\n"
         "                      reading pauses (default 262144)\n"
         "  --max-conns N       connections at once; more are reset (default 1024)\n"
         "  -h, --help          print this help and exit\n"
         "  --version           print the version and exit\n"
         "\n"
         "Commands on stdin, one per line, one answer line (\"ok...\" or \"error: ...\"):\n"
         "  cut | blackhole on|off | refuse on|off | latency MS [JITTER] | slice N |\n"
         "  seed N | stats | quit\n"
         "\n"
         "Exit status: 0 stopped, 1 cannot start, 2 bad usage.\n",
         synopsis);
}

static void usage(void) {
  fprintf(stderr, "%s(bftnet-proxy --help for more)\n", synopsis);
  exit(2);
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out) {
  if (!s || !*s || *s == '-' || *s == '+') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v > max) return false;
  *out = v;
  return true;
}

static void on_proxy_closed(fault_proxy_t *proxy, void *arg) {
  app_t *a = arg;
  a->proxy = NULL;
}

static void stop(app_t *a) {
  if (a->stopping) return;
  a->stopping = true;
  if (a->proxy) fault_proxy_close(a->proxy, on_proxy_closed, a);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  if (a->in_open) {
    a->in_open = false;
    uv_close((uv_handle_t *)&a->in.stream, NULL);
  }
}

static void on_signal(uv_signal_t *s, int signum) {
  stop(s->data);
}

static int on_off(const char *arg) {
  if (arg && strcmp(arg, "on") == 0) return 1;
  if (arg && strcmp(arg, "off") == 0) return 0;
  return -1;
}

static void cmd_stats(app_t *a) {
  fault_proxy_stats_t st;
  fault_proxy_stats(a->proxy, &st);
  text_say("ok accepted=%" PRIu64 " refused=%" PRIu64 " over_limit=%" PRIu64
           " connect_failed=%" PRIu64 " cuts=%" PRIu64 " conns_cut=%" PRIu64 " conns_reset=%" PRIu64
           " active=%" PRIu64 " bytes_to_target=%" PRIu64 " bytes_to_client=%" PRIu64
           " writes=%" PRIu64 " queued=%zu queued_peak=%zu"
           " queue_max=%zu blackhole=%d refuse=%d",
           st.accepted, st.refused, st.over_limit, st.connect_failed, st.cuts, st.conns_cut,
           st.conns_reset, st.active, st.bytes_to_target, st.bytes_to_client, st.writes, st.queued,
           st.queued_peak, st.queue_max, fault_proxy_is_blackholed(a->proxy),
           fault_proxy_is_refusing(a->proxy));
}

/* Runs one command line (already NUL-terminated, without its newline). */
static void run_command(app_t *a, char *line) {
  char *save = NULL;
  char *cmd = strtok_r(line, " \t\r", &save);
  char *arg1 = cmd ? strtok_r(NULL, " \t\r", &save) : NULL;
  char *arg2 = arg1 ? strtok_r(NULL, " \t\r", &save) : NULL;
  char *extra = arg2 ? strtok_r(NULL, " \t\r", &save) : NULL;
  uint64_t v1 = 0, v2 = 0;
  int rc;
  if (!cmd) return; /* blank line */
  if (a->stopping || !a->proxy) {
    text_say("error: stopping");
  } else if (strcmp(cmd, "cut") == 0 && !arg1) {
    text_say("ok cut=%d", fault_proxy_cut(a->proxy));
  } else if (strcmp(cmd, "blackhole") == 0 && on_off(arg1) >= 0 && !arg2) {
    fault_proxy_blackhole(a->proxy, on_off(arg1));
    text_say("ok");
  } else if (strcmp(cmd, "refuse") == 0 && on_off(arg1) >= 0 && !arg2) {
    fault_proxy_refuse(a->proxy, on_off(arg1));
    text_say("ok");
  } else if (strcmp(cmd, "latency") == 0 && parse_u64(arg1, UINT32_MAX, &v1) &&
             (!arg2 || parse_u64(arg2, UINT32_MAX, &v2)) && !extra) {
    rc = fault_proxy_latency(a->proxy, (uint32_t)v1, (uint32_t)v2);
    if (rc)
      text_say("error: latency and jitter must be at most %u ms", FAULT_PROXY_LATENCY_MAX);
    else
      text_say("ok");
  } else if (strcmp(cmd, "slice") == 0 && parse_u64(arg1, UINT32_MAX, &v1) && !arg2) {
    rc = fault_proxy_slice(a->proxy, (uint32_t)v1);
    if (rc)
      text_say("error: slice must be at most %u", FAULT_PROXY_SLICE_MAX);
    else
      text_say("ok");
  } else if (strcmp(cmd, "seed") == 0 && parse_u64(arg1, UINT64_MAX, &v1) && !arg2) {
    fault_proxy_seed(a->proxy, v1);
    text_say("ok");
  } else if (strcmp(cmd, "stats") == 0 && !arg1) {
    cmd_stats(a);
  } else if (strcmp(cmd, "quit") == 0 && !arg1) {
    text_say("ok");
    stop(a);
  } else {
    text_say("error: bad command \"%s\" (want cut, blackhole on|off, refuse on|off, "
             "latency MS [JITTER], slice N, seed N, stats, quit)",
             cmd);
  }
}

static void on_stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  app_t *a = h->data;
  *buf = uv_buf_init(a->rbuf, sizeof a->rbuf);
}

static void feed_byte(app_t *a, char c) {
  if (c != '\n') {
    if (a->line_len + 1 < sizeof a->line)
      a->line[a->line_len++] = c;
    else
      a->line_overflow = true;
    return;
  }
  a->line[a->line_len] = '\0';
  if (a->line_overflow)
    text_say("error: line longer than %d bytes", LINE_MAX_ - 1);
  else
    run_command(a, a->line);
  a->line_len = 0;
  a->line_overflow = false;
}

static void on_stdin_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  app_t *a = s->data;
  for (ssize_t i = 0; i < nread && a->in_open; i++)
    feed_byte(a, buf->base[i]);
  if (nread < 0 && a->in_open) { /* EOF or error: stop listening, keep proxying */
    if (a->line_len && !a->line_overflow) feed_byte(a, '\n');
    if (a->in_open) {
      a->in_open = false;
      uv_close((uv_handle_t *)s, NULL);
    }
  }
}

static void open_stdin(app_t *a) {
  int rc = -1;
  switch (uv_guess_handle(0)) {
  case UV_TTY:
    rc = uv_tty_init(a->loop, &a->in.tty, 0, 1);
    break;
  case UV_NAMED_PIPE:
    rc = uv_pipe_init(a->loop, &a->in.pipe, 0);
    if (rc == 0 && (rc = uv_pipe_open(&a->in.pipe, 0)) != 0)
      uv_close((uv_handle_t *)&a->in.pipe, NULL);
    break;
  default: /* a file, /dev/null, closed: no control channel */
    return;
  }
  if (rc != 0) return;
  a->in.stream.data = a;
  a->in_open = true;
  if (uv_read_start(&a->in.stream, on_stdin_alloc, on_stdin_read) != 0) {
    a->in_open = false;
    uv_close((uv_handle_t *)&a->in.stream, NULL);
  }
}

static void parse_args(int argc, char **argv, struct sockaddr_storage *listen_addr,
                       struct sockaddr_storage *target, fault_proxy_opts_t *o) {
  static const struct option longopts[] = {{"listen", required_argument, NULL, 'l'},
                                           {"target", required_argument, NULL, 't'},
                                           {"latency-ms", required_argument, NULL, 'L'},
                                           {"jitter-ms", required_argument, NULL, 'J'},
                                           {"slice", required_argument, NULL, 's'},
                                           {"seed", required_argument, NULL, 'S'},
                                           {"queue-max", required_argument, NULL, 'q'},
                                           {"max-conns", required_argument, NULL, 'c'},
                                           {"help", no_argument, NULL, 'h'},
                                           {"version", no_argument, NULL, 'V'},
                                           {NULL, 0, NULL, 0}};
  bool have_l = false, have_t = false;
  int c;
  uint64_t v = 0;
  opterr = 0; /* text_bad_option says it */
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    bool ok = true;
    switch (c) {
    case 'l':
      ok = have_l = fault_proxy_addr_parse(optarg, listen_addr) == 0;
      break;
    case 't':
      ok = have_t = fault_proxy_addr_parse(optarg, target) == 0;
      break;
    case 'L':
      ok = parse_u64(optarg, FAULT_PROXY_LATENCY_MAX, &v);
      o->latency_ms = (uint32_t)v;
      break;
    case 'J':
      ok = parse_u64(optarg, FAULT_PROXY_LATENCY_MAX, &v);
      o->jitter_ms = (uint32_t)v;
      break;
    case 's':
      ok = parse_u64(optarg, FAULT_PROXY_SLICE_MAX, &v);
      o->slice_max = (uint32_t)v;
      break;
    case 'S':
      ok = parse_u64(optarg, UINT64_MAX, &o->seed);
      break;
    case 'q':
      ok = parse_u64(optarg, FAULT_PROXY_QUEUE_MAX, &v) && v >= FAULT_PROXY_QUEUE_MIN;
      o->queue_max = (size_t)v;
      break;
    case 'c':
      ok = parse_u64(optarg, UINT32_MAX, &v) && v > 0;
      o->max_conns = (uint32_t)v;
      break;
    case 'h':
      help();
      exit(0);
    case 'V':
      printf("bftnet-proxy %s\n", BFTNET_TOOLS_VERSION);
      exit(0);
    default:
      text_bad_option("bftnet-proxy", argv, c);
      usage();
    }
    if (!ok) {
      const char *name = "?";
      for (const struct option *lo = longopts; lo->name; lo++)
        if (lo->val == c) name = lo->name;
      fprintf(stderr, "bftnet-proxy: bad value for --%s: %s\n", name, optarg);
      usage();
    }
  }
  if (optind != argc) {
    fprintf(stderr, "bftnet-proxy: unexpected argument '%s'\n", argv[optind]);
    usage();
  }
  if (!have_l || !have_t) {
    fprintf(stderr, "bftnet-proxy: %s is required\n", !have_l ? "--listen" : "--target");
    usage();
  }
}

int main(int argc, char **argv) {
  struct sockaddr_storage listen_addr, target;
  fault_proxy_opts_t opts = {0};
  parse_args(argc, argv, &listen_addr, &target, &opts);

  static app_t app;
  app_t *a = &app;
  a->loop = uv_default_loop();
  int rc = fault_proxy_create(a->loop, (struct sockaddr *)&listen_addr, (struct sockaddr *)&target,
                              &opts, &a->proxy);
  if (rc != 0) {
    fprintf(stderr, "bftnet-proxy: %s\n",
            rc == -EPERM ? "listen and target addresses must be loopback (127.0.0.0/8, ::1)"
                         : uv_strerror(rc));
    uv_run(a->loop, UV_RUN_DEFAULT);
    uv_loop_close(a->loop);
    return 1;
  }
  struct sockaddr_storage bound;
  char text[FAULT_PROXY_ADDRSTRLEN];
  fault_proxy_bound_addr(a->proxy, &bound);
  fault_proxy_addr_format((struct sockaddr *)&bound, text, sizeof text);
  printf("%s\n", text);
  fflush(stdout);

  uv_signal_init(a->loop, &a->sigterm);
  uv_signal_init(a->loop, &a->sigint);
  a->sigterm.data = a->sigint.data = a;
  uv_signal_start(&a->sigterm, on_signal, SIGTERM);
  uv_signal_start(&a->sigint, on_signal, SIGINT);
  open_stdin(a);

  uv_run(a->loop, UV_RUN_DEFAULT);
  if (uv_guess_handle(0) == UV_TTY) uv_tty_reset_mode();
  rc = uv_loop_close(a->loop);
  return rc == 0 ? 0 : 1;
}
