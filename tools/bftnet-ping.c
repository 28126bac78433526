/*
 * bftnet-ping — libp2p ping over bftnet's secure links.
 *   bftnet-ping [--key FILE] [--count N] [--timeout MS] MULTIADDR
 *   bftnet-ping --listen MULTIADDR [--key FILE]
 * Dial mode prints the authenticated peer ID, the handshake time and N
 * round trips; exits 0 on success, else non-zero with the reason:
 *   2 usage, 3 unreachable, 4 peer ID mismatch, 5 handshake failure,
 *   6 timeout, 1 anything else.
 * Listen mode prints its full multiaddr (ending in /p2p/<id>) as its first
 * stdout line and answers pings until SIGINT or SIGTERM.
 * -h/--help and --version print on stdout and exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bftnet.h"
#include "text.h"

static const char synopsis[] =
    "usage: bftnet-ping [--key FILE] [--count N] [--timeout MS] MULTIADDR\n"
    "       bftnet-ping --listen MULTIADDR [--key FILE]\n";

static void help(void) {
  printf("%s"
         "\n"
         "Dials MULTIADDR (/ip4|ip6/ADDR/tcp/PORT[/p2p/ID]) over TCP, Noise and yamux,\n"
         "prints the authenticated peer ID, the handshake time and N /ipfs/ping/1.0.0\n"
         "round trips. With --listen it prints its own full multiaddr (ending in\n"
         "/p2p/ID) as its first line and answers pings until SIGINT or SIGTERM.\n"
         "\n"
         "  -k, --key FILE      identity key (bftnet-keygen FILE); default: a new one\n"
         "  -c, --count N       round trips, 1..1000000 (default 1)\n"
         "  -t, --timeout MS    per dial and per ping, 1..3600000 ms (default 10000)\n"
         "  -l, --listen MADDR  listen instead of dialing\n"
         "  -h, --help          print this help and exit\n"
         "  --version           print the version and exit\n"
         "\n"
         "Exit status: 0 done, 1 other error, 2 bad usage (a bad MULTIADDR too),\n"
         "3 unreachable, 4 peer ID mismatch, 5 handshake failure, 6 timeout.\n",
         synopsis);
}

static void usage(void) {
  fprintf(stderr, "%s(bftnet-ping --help for more)\n", synopsis);
  exit(2);
}

static void bad_value(const char *flag, const char *v) {
  fprintf(stderr, "bftnet-ping: bad value for %s: '%s'\n", flag, v);
  usage();
}

static int exit_code(int rc) {
  switch (rc) {
  case -ECONNREFUSED: case -EHOSTUNREACH: case -ENETUNREACH: case BFTNET_EUNREACHABLE:
    return 3;
  case BFTNET_EPEERMISMATCH:
    return 4;
  case BFTNET_EAUTH: case BFTNET_EPROTO: case BFTNET_ENA: case BFTNET_EDECRYPT: case BFTNET_EEOF:
  case BFTNET_ECLOSED: case -ECONNRESET:
    return 5;
  case BFTNET_ETIMEDOUT: case -ETIMEDOUT:
    return 6;
  default:
    return 1;
  }
}

static const char *what(int rc) {
  switch (exit_code(rc)) {
  case 3: return "unreachable";
  case 4: return "peer ID mismatch";
  case 5: return "handshake failure";
  case 6: return "timeout";
  default: return "error";
  }
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int run_listen(bftnet_t *net, const char *addr) {
  char bound[BFTNET_ADDR_MAX], err[256];
  int rc = bftnet_listen_ex(net, addr, bound, sizeof bound, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "bftnet-ping: %s\n", err);
    return rc == BFTNET_EBADADDR ? 2 : 1;
  }
  printf("%s\n", bound);
  fflush(stdout);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig;
  sigwait(&set, &sig);
  return 0;
}

static int run_dial(bftnet_t *net, const char *addr, int count, uint32_t timeout_ms) {
  char peer[BFTNET_PEER_ID_MAX], err[256];
  double t0 = now_ms();
  int rc = bftnet_dial_ex(net, addr, timeout_ms, peer, sizeof peer, err, sizeof err);
  if (rc == BFTNET_EBADADDR) {
    fprintf(stderr, "bftnet-ping: %s\n", err);
    return 2;
  }
  if (rc != 0) {
    fprintf(stderr, "bftnet-ping: %s: %s (%s)\n", what(rc), err, bftnet_strerror(rc));
    return exit_code(rc);
  }
  printf("peer %s authenticated, handshake %.3f ms\n", peer, now_ms() - t0);
  for (int i = 1; i <= count; i++) {
    uint64_t rtt;
    rc = bftnet_ping(net, addr, timeout_ms, &rtt, NULL, 0);
    if (rc != 0) {
      fprintf(stderr, "bftnet-ping: ping %d: %s (%s)\n", i, what(rc), bftnet_strerror(rc));
      return exit_code(rc);
    }
    printf("ping %d: rtt %.3f ms\n", i, (double)rtt / 1e6);
  }
  return 0;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"key", required_argument, 0, 'k'},
                                       {"count", required_argument, 0, 'c'},
                                       {"listen", required_argument, 0, 'l'},
                                       {"timeout", required_argument, 0, 't'},
                                       {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, 'V'},
                                       {0, 0, 0, 0}};
  const char *key_file = NULL, *listen = NULL;
  long count = 1, timeout = 10000;
  int o;
  opterr = 0; /* text_bad_option says it */
  while ((o = getopt_long(argc, argv, ":k:c:l:t:h", opts, NULL)) != -1) {
    char *end;
    switch (o) {
    case 'k': key_file = optarg; break;
    case 'l': listen = optarg; break;
    case 'c':
      count = strtol(optarg, &end, 10);
      if (*end || count < 1 || count > 1000000) bad_value("--count", optarg);
      break;
    case 't':
      timeout = strtol(optarg, &end, 10);
      if (*end || timeout < 1 || timeout > 3600000) bad_value("--timeout", optarg);
      break;
    case 'h':
      help();
      return 0;
    case 'V':
      printf("bftnet-ping %s\n", BFTNET_TOOLS_VERSION);
      return 0;
    default:
      text_bad_option("bftnet-ping", argv, o);
      usage();
    }
  }
  if (listen && optind != argc) {
    fprintf(stderr, "bftnet-ping: --listen takes no MULTIADDR to dial ('%s')\n", argv[optind]);
    usage();
  }
  if (!listen && optind != argc - 1) {
    fprintf(stderr, "bftnet-ping: %s\n", optind == argc ? "a MULTIADDR to dial is required"
                                                         : "one MULTIADDR only");
    usage();
  }

  /* Signals go to sigwait, not to the loop thread. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  bftnet_key_t *key = NULL;
  int rc = key_file ? bftnet_key_load(key_file, &key) : bftnet_key_generate(&key);
  if (rc != 0) {
    fprintf(stderr, "bftnet-ping: key %s: %s\n", key_file ? key_file : "(new)", bftnet_strerror(rc));
    return 1;
  }
  bftnet_config_t cfg;
  bftnet_config_init(&cfg);
  cfg.key = key;
  bftnet_t *net;
  rc = bftnet_new(&net, &cfg);
  if (rc != 0) {
    fprintf(stderr, "bftnet-ping: %s\n", bftnet_strerror(rc));
    bftnet_key_free(key);
    return 1;
  }
  int code = listen ? run_listen(net, listen) : run_dial(net, argv[optind], (int)count, (uint32_t)timeout);
  bftnet_free(net);
  bftnet_key_free(key);
  return code;
}
