/*
 * bftnet-replica — a load-test replica driven by a membership file.
 *
 *   bftnet-replica --id NODE_ID --key FILE --listen MULTIADDR [--listen ...]
 *                  --members FILE [--rate MSGS_PER_S_PER_PEER] [--size BYTES]
 *                  [--duration SECONDS] [--stats-ms MS] [--report FILE]
 *                  [--drain-ms MS] [--metrics-listen HOST:PORT] [--classes MIX]
 *
 * It sends every other member --rate messages/s (0: as fast as the rings
 * take them) of --size bytes, each carrying a per-destination sequence
 * number and its CLOCK_MONOTONIC send time; it checks what it receives for
 * gaps, duplicates and reorders — per incarnation of the sender, so that a
 * restarted peer numbering from 1 again is a new incarnation, not a fault —
 * and measures latency. It counts bftnet's migration events per peer.
 * stdout carries one JSON object per line ("type": "listen", "membership",
 * "stats", "event"); logs go to stderr. When --duration ends or on
 * SIGTERM/SIGINT it stops sending, drains (bftnet_flush: until the peers
 * confirmed everything, or --drain-ms; see docs/REPORT.md), and writes the
 * report (--report FILE, else a "report" line on stdout). SIGHUP reloads
 * the membership file (bftnet_connect_file).
 *
 * Threads: main (signals via sigtimedwait, stats lines, membership, drain,
 * report), one sender, one receiver, and bftnet's loop thread (the event
 * callback: atomic counters and rare "event" lines). Every signal
 * is blocked in all of them; only main takes them, synchronously.
 *
 * Exit codes: 0 done (whatever the integrity verdict: read the report),
 * 1 runtime error, 2 usage. -h/--help and --version print on stdout and
 * exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replica.h"

/* --------------------------------------------------------------- drain */

/* Everything we handed bftnet is confirmed: bftnet_flush (every member's
 * ring empty, every byte written confirmed read by the member), waiting up
 * to wait_ms. Returns bftnet_flush's code. */
static int sends_flushed(int wait_ms) {
  int rc = bftnet_flush(rp.net, wait_ms);
  return rc == BFTNET_ECLOSED ? 0 : rc;
}

/* ------------------------------------------------------------- control */

typedef enum rp_ev { RP_EV_TIMEOUT, RP_EV_HUP, RP_EV_STOP } rp_ev_t;

/* Main thread: waits for a signal until `until` (CLOCK_MONOTONIC ns). */
static rp_ev_t wait_signal(const sigset_t *set, uint64_t until) {
  uint64_t now = rp_now_ns(), d = until > now ? until - now : 0;
  struct timespec ts = {.tv_sec = (time_t)(d / NS_PER_S), .tv_nsec = (long)(d % NS_PER_S)};
  int sig = sigtimedwait(set, NULL, &ts);
  if (sig == SIGHUP) return RP_EV_HUP;
  if (sig == SIGINT || sig == SIGTERM) return RP_EV_STOP;
  return RP_EV_TIMEOUT; /* EAGAIN or EINTR */
}

static uint64_t tick_after(uint64_t t) {
  if (rp.o.stats_ms == 0) return UINT64_MAX;
  uint64_t next = t + rp.o.stats_ms * NS_PER_MS, now = rp_now_ns();
  return next > now ? next : now + rp.o.stats_ms * NS_PER_MS; /* fell behind: skip */
}

/* Waits until `until` for a signal and handles it, prints a stats line
 * when one is due. Returns true on SIGTERM/SIGINT. */
static bool control_step(const sigset_t *set, uint64_t until, uint64_t *tick) {
  rp_ev_t ev = wait_signal(set, until);
  if (ev == RP_EV_STOP) {
    rp_log("signal: %s", rp.send_end_ns ? "draining cut short" : "stopping");
    return true;
  }
  if (ev == RP_EV_HUP) {
    rp_log("SIGHUP: reloading %s", rp.o.members);
    members_apply();
  }
  if (rp_now_ns() >= *tick) {
    lines_stats();
    *tick = tick_after(*tick);
  }
  return false;
}

static void run_sending(const sigset_t *set, uint64_t *tick) {
  uint64_t end = rp.o.duration_s > 0 ? rp.t0 + (uint64_t)(rp.o.duration_s * 1e9) : UINT64_MAX;
  while (rp_now_ns() < end)
    if (control_step(set, *tick < end ? *tick : end, tick)) return;
}

/* After sending stopped: until bftnet_flush says our peers confirmed
 * everything we sent and nothing arrived for RP_QUIET_NS (our peers have
 * stopped too), or --drain-ms, or another SIGTERM/SIGINT. */
static const char *run_drain(const sigset_t *set, uint64_t *tick, rp_drain_t *d) {
  uint64_t start = rp_now_ns(), deadline = start + rp.o.drain_ms * NS_PER_MS;
  d->complete = d->flushed = false;
  d->flush_rc = BFTNET_ETIMEDOUT;
  for (;;) {
    uint64_t now = rp_now_ns();
    uint64_t left_ms = deadline > now ? (deadline - now) / NS_PER_MS : 0;
    d->flush_rc = sends_flushed(left_ms < 5 ? (int)left_ms : 5);
    d->flushed = d->flush_rc == 0;
    uint64_t last = atomic_load(&rp.last_rx_ns);
    if (last < start) last = start;
    if (d->flushed && rp_now_ns() - last >= RP_QUIET_NS) {
      d->complete = true;
      return "confirmed";
    }
    now = rp_now_ns();
    if (now >= deadline) return "timeout";
    uint64_t until = now + 5 * NS_PER_MS;
    if (until > deadline) until = deadline;
    if (until > *tick) until = *tick;
    if (control_step(set, until, tick)) return "signal";
  }
}

/* --------------------------------------------------------------- options */

static const char synopsis[] =
    "usage: bftnet-replica --id NODE_ID --key FILE --listen MULTIADDR [--listen ...]\n"
    "                      --members FILE [--rate MSGS_PER_S_PER_PEER] [--size BYTES]\n"
    "                      [--duration SECONDS] [--stats-ms MS] [--report FILE]\n"
    "                      [--drain-ms MS] [--metrics-listen HOST:PORT] [--classes MIX]\n";

static void help(void) {
  printf("%s"
         "\n"
         "A load-test replica: sends every other member of the membership file\n"
         "numbered messages, checks what it receives (gaps, duplicates, reorders,\n"
         "latency), prints JSON lines on stdout, drains and reports at the end.\n"
         "\n"
         "  --id NODE_ID      its node ID in the membership file (required)\n"
         "  --key FILE        its identity key, from bftnet-keygen (required)\n"
         "  --listen MADDR    where to listen, up to %d times (required)\n"
         "  --members FILE    the membership file, {\"members\":[{\"id\":...,\"addrs\":[...]}]}\n"
         "                    (required; SIGHUP reloads it)\n"
         "  --rate R          messages/s to each other member (default 1000; 0 = as fast\n"
         "                    as the send rings take them)\n"
         "  --size BYTES      bytes per message, >= 16 (default 64)\n"
         "  --duration S      seconds of sending (default: until SIGTERM/SIGINT)\n"
         "  --stats-ms MS     a JSON stats line on stdout this often (default 1000;\n"
         "                    0 = none)\n"
         "  --report FILE     the final report (JSON; default: a \"report\" line on stdout)\n"
         "  --drain-ms MS     after sending, longest wait for the peers to confirm\n"
         "                    everything we sent (bftnet_flush) and to stop sending\n"
         "                    (default 5000)\n"
         "  --metrics-listen HOST:PORT\n"
         "                    serve GET /metrics (Prometheus text format) there\n"
         "                    ([V6]:PORT; port 0 = any, said in a \"metrics\" line);\n"
         "                    see docs/OPERATING.md\n"
         "  --classes MIX     traffic classes and the load of each (instead of --rate and\n"
         "                    --size): NAME[:KEY=VALUE[;...]][,NAME...], the first class\n"
         "                    is class 0; keys: prio=P (0 most urgent, default 0),\n"
         "                    size=BYTES (default 64), rate=R|max (msgs/s per peer,\n"
         "                    default 100; max: flat out, the ring full and its drop\n"
         "                    policy dropping), policy=drop-oldest|keep-latest,\n"
         "                    keys=N (keep-latest: keys 1..N in turn), ring=N (send\n"
         "                    ring, a power of 2; default 4096, at most 16 MiB);\n"
         "                    e.g. 'vote:prio=0;size=64;rate=100,\n"
         "                    block:prio=1;size=1048576;rate=max'. Integrity and\n"
         "                    latency are then checked and reported per class too\n"
         "  -h, --help        print this help and exit\n"
         "  --version         print the version and exit\n"
         "\n"
         "See docs/REPORT.md.\n"
         "Exit status: 0 done (whatever the report says), 1 runtime error, 2 bad usage.\n",
         synopsis, RP_MAX_LISTEN);
}

static void usage(void) {
  fprintf(stderr, "%s(bftnet-replica --help for more)\n", synopsis);
  exit(2);
}

static double parse_num(const char *flag, const char *s, double lo, double hi) {
  double v;
  if (!text_parse_num(s, lo, hi, &v)) {
    fprintf(stderr, "bftnet-replica: %s: bad number '%s' (want %.15g..%.15g)\n", flag, s, lo, hi);
    usage();
  }
  return v;
}

/* The options every run needs; names the first one missing. */
static void require_opts(const rp_opts_t *o) {
  const char *missing = !o->id        ? "--id"
                        : !o->key     ? "--key"
                        : !o->nlisten ? "--listen"
                        : !o->members ? "--members"
                                      : NULL;
  if (missing) {
    fprintf(stderr, "bftnet-replica: %s is required\n", missing);
    usage();
  }
  if (strlen(o->id) >= BFTNET_NODE_ID_MAX) {
    fprintf(stderr, "bftnet-replica: --id: at most %d bytes\n", BFTNET_NODE_ID_MAX - 1);
    usage();
  }
}

static void parse_opts(int argc, char **argv, rp_opts_t *o) {
  static const struct option lo[] = {{"id", required_argument, 0, 'i'},
                                     {"key", required_argument, 0, 'k'},
                                     {"listen", required_argument, 0, 'l'},
                                     {"members", required_argument, 0, 'm'},
                                     {"rate", required_argument, 0, 'r'},
                                     {"size", required_argument, 0, 's'},
                                     {"duration", required_argument, 0, 'd'},
                                     {"stats-ms", required_argument, 0, 'S'},
                                     {"report", required_argument, 0, 'R'},
                                     {"drain-ms", required_argument, 0, 'D'},
                                     {"metrics-listen", required_argument, 0, 'M'},
                                     {"classes", required_argument, 0, 'C'},
                                     {"help", no_argument, 0, 'h'},
                                     {"version", no_argument, 0, 'V'},
                                     {0, 0, 0, 0}};
  *o = (rp_opts_t){.rate = 1000, .size = 64, .stats_ms = 1000, .drain_ms = 5000};
  int c;
  opterr = 0; /* text_bad_option says it */
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    switch (c) {
    case 'i':
      o->id = optarg;
      break;
    case 'k':
      o->key = optarg;
      break;
    case 'm':
      o->members = optarg;
      break;
    case 'R':
      o->report = optarg;
      break;
    case 'M':
      o->metrics_listen = optarg;
      break;
    case 'C': {
      char err[160];
      if (classmix_parse(optarg, &o->mix, err, sizeof err) != 0) {
        fprintf(stderr, "bftnet-replica: --classes: %s\n", err);
        usage();
      }
      break;
    }
    case 'l':
      if (o->nlisten == RP_MAX_LISTEN) {
        fprintf(stderr, "bftnet-replica: --listen: at most %d\n", RP_MAX_LISTEN);
        usage();
      }
      o->listen[o->nlisten++] = optarg;
      break;
    case 'r':
      o->rate = parse_num("--rate", optarg, 0, 1e9);
      break;
    case 's':
      o->size = (size_t)parse_num("--size", optarg, STATS_PAYLOAD_HDR, 1u << 30);
      break;
    case 'd':
      o->duration_s = parse_num("--duration", optarg, 0.001, 1e9);
      break;
    case 'S':
      o->stats_ms = (uint32_t)parse_num("--stats-ms", optarg, 0, 86400000);
      break;
    case 'D':
      o->drain_ms = (uint32_t)parse_num("--drain-ms", optarg, 0, 86400000);
      break;
    case 'h':
      help();
      exit(0);
    case 'V':
      printf("bftnet-replica %s\n", BFTNET_TOOLS_VERSION);
      exit(0);
    default:
      text_bad_option("bftnet-replica", argv, c);
      usage();
    }
  }
  if (optind != argc) {
    fprintf(stderr, "bftnet-replica: unexpected argument '%s'\n", argv[optind]);
    usage();
  }
  require_opts(o);
}

/* ------------------------------------------------------------------ main */

/* Key and node (not listening yet). Returns 0 or logs and returns an error. */
static int node_start(bftnet_key_t **key) {
  int rc = bftnet_key_load(rp.o.key, key);
  if (rc != 0) return rp_log("key %s: %s", rp.o.key, bftnet_strerror(rc)), rc;
  bftnet_config_t cfg;
  bftnet_config_init(&cfg);
  cfg.key = *key;
  cfg.on_event = events_on_event;
  if (rp.o.size > cfg.max_message_size)
    return rp_log("--size %zu above the message limit %u", rp.o.size, cfg.max_message_size), -1;
  rp.ring_cap = cfg.ring_capacity;
  bftnet_class_t classes[BFTNET_MAX_CLASSES];
  if (rp.o.mix.n && classes_config(&cfg, classes) != 0) return -1;
  char err[256];
  rc = bftnet_new_ex(&rp.net, &cfg, err, sizeof err);
  if (rc != 0) return rp_log("start: %s (%s)", err, bftnet_strerror(rc)), rc;
  bftnet_peer_id(rp.net, rp.self_peer, sizeof rp.self_peer);
  return 0;
}

/* Listens on every --listen address; prints the "listen" line. After the
 * membership is applied: a member that dials us early is then a member at
 * once, never a TentativeReceiver (those are bounded: tentative_max). */
static int node_listen(void) {
  int rc;
  char err[256];
  json_t *addrs = json_array();
  for (int i = 0; i < rp.o.nlisten; i++) {
    rc = bftnet_listen_ex(rp.net, rp.o.listen[i], rp.bound[i], sizeof rp.bound[i], err, sizeof err);
    if (rc != 0) {
      json_decref(addrs);
      return rp_log("--listen: %s", err), rc;
    }
    json_array_append_new(addrs, json_string(rp.bound[i]));
  }
  rp_log("peer ID %s, listening on %s%s", rp.self_peer, rp.bound[0],
         rp.o.nlisten > 1 ? ", ..." : "");
  lines_emit(json_pack("{s:s, s:s, s:s, s:o}", "type", "listen", "id", rp.o.id, "peer_id",
                       rp.self_peer, "addrs", addrs));
  return 0;
}

/* Stops sending (joins the sender), drains, tells the receiver to stop. */
static rp_drain_t finish(const sigset_t *set, uint64_t *tick, pthread_t tx) {
  rp.send_end_ns = rp_now_ns();
  atomic_store(&rp.stop_sending, true);
  pthread_join(tx, NULL);
  rp.phase = "draining";
  rp_drain_t d;
  d.reason = run_drain(set, tick, &d);
  d.ns = rp_now_ns() - rp.send_end_ns;
  rp_log("drain: %s after %" PRIu64 " ms (bftnet_flush: %s)", d.reason, d.ns / NS_PER_MS,
         d.flush_rc == 0 ? "everything confirmed" : bftnet_err_name(d.flush_rc));
  rp.phase = "done";
  atomic_store(&rp.stop_recv, true);
  return d;
}

int main(int argc, char **argv) {
  parse_opts(argc, argv, &rp.o);
  /* Before any thread exists: every thread inherits the mask, and only the
   * main thread takes these signals, with sigtimedwait. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  bftnet_key_t *key = NULL;
  int code = 1;
  pthread_t tx, rx;
  bool rx_started = false, tx_started = false;
  if (node_start(&key) != 0) goto out;
  if (rp.o.metrics_listen && metrics_http_start(rp.o.metrics_listen) != 0) goto out;
  rp.t0 = rp.last_tick_ns = rp_now_ns();
  atomic_store(&rp.t0_pub, rp.t0);
  if (pthread_create(&rx, NULL, check_main, NULL) != 0) goto out;
  rx_started = true;
  if (members_apply() != 0 || node_listen() != 0) goto out_threads;
  if (pthread_create(&tx, NULL, load_main, NULL) != 0) goto out_threads;
  tx_started = true;
  uint64_t tick = tick_after(rp.t0);
  run_sending(&set, &tick);
  tx_started = false;
  rp_drain_t d = finish(&set, &tick, tx);
  pthread_join(rx, NULL);
  rx_started = false;
  peers_refresh_all();
  if (rp.o.stats_ms) lines_stats();
  code = report_write(report_build(&d)) == 0 ? 0 : 1;
out_threads:
  atomic_store(&rp.stop_sending, true);
  atomic_store(&rp.stop_recv, true);
  if (tx_started) pthread_join(tx, NULL);
  if (rx_started) pthread_join(rx, NULL);
out:
  metrics_http_stop();
  bftnet_free(rp.net);
  if (key) bftnet_key_free(key);
  for (size_t i = 0; i < atomic_load(&rp.npeers); i++) {
    free(rp.peers[i]->cls);
    free(rp.peers[i]);
  }
  return code;
}
