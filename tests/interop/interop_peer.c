/*
 * interop_peer — the C side of the js-libp2p interop tests.
 *   interop_peer listen        serve /ipfs/ping/1.0.0 and /bftnet/echo/1.0.0;
 *                              first stdout line: our multiaddr; until SIGTERM
 *   interop_peer dial ADDR     ping x3, echo 1 MiB both ways, propose an
 *                              unknown protocol (expect na), ping again
 * Exit 0 only if every step passed; a JSON summary goes to stdout.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "th_net.h"

static uv_loop_t loop;
static bn_transport_t *transport;
static th_node_t node;

static uv_signal_t sig_term, sig_int;

static void on_signal(uv_signal_t *h, int sig) {
  (void)h;
  (void)sig;
  uv_close((uv_handle_t *)&sig_term, NULL); /* both, or the other keeps the loop alive */
  uv_close((uv_handle_t *)&sig_int, NULL);
  th_node_close(&node);
}

static int do_listen(void) {
  printf("%s\n", node.addr);
  fflush(stdout);
  uv_signal_init(&loop, &sig_term);
  uv_signal_init(&loop, &sig_int);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_run(&loop, UV_RUN_DEFAULT); /* until the signal closes the node */
  return 0;
}

static int ping_once(net_conn_t *c, double *ms) {
  uint64_t rtt = 0;
  int rc = th_ping(&loop, c, &rtt, 20000); /* > the connection ping timeout (15 s) */
  *ms = (double)rtt / 1e6;
  return rc;
}

typedef struct na_wait {
  bool done;
  int err;
} na_wait_t;

static void na_ready(void *ud, net_stream_t *s) {
  (void)s;
  na_wait_t *w = ud;
  w->err = 0; /* accepted: wrong */
  w->done = true;
}
static void na_error(void *ud, net_stream_t *s, int err) {
  (void)s;
  na_wait_t *w = ud;
  w->err = err;
  w->done = true;
}

static int do_dial(const char *addr) {
  int err;
  net_conn_t *c = th_dial(&loop, node.net, addr, &err, 10000);
  if (!c) {
    fprintf(stderr, "interop_peer: dial %s: %s\n", addr, bftnet_strerror(err));
    return 1;
  }
  char peer[BFTNET_PEER_ID_MAX];
  peerid_to_string(net_conn_peer(c), peer, sizeof peer);
  double rtt[4];
  for (int i = 0; i < 3; i++) {
    if ((err = ping_once(c, &rtt[i])) != 0) {
      fprintf(stderr, "interop_peer: ping %d: %s\n", i + 1, bftnet_strerror(err));
      return 1;
    }
  }
  size_t len = 1024 * 1024;
  uint8_t *data = malloc(len);
  bn_random(bn_seam_system(), data, len);
  th_echo_client_t ec;
  if ((err = th_echo_start(c, &ec, data, len)) != 0 || !th_run_until(&loop, &ec.done, 20000) ||
      ec.err || ec.mismatch) {
    fprintf(stderr, "interop_peer: echo failed: err=%s mismatch=%d sent=%zu recvd=%zu\n",
            bftnet_strerror(err ? err : ec.err), ec.mismatch, ec.sent, ec.recvd);
    return 1;
  }
  size_t echoed = ec.recvd;
  free(data);
  na_wait_t nw = {.err = 1};
  net_stream_cbs_t na_cbs = {.on_ready = na_ready, .on_error = na_error};
  net_stream_t *ns;
  if ((err = net_stream_open(c, "/bftnet/does-not-exist/1.0.0", &na_cbs, &nw, &ns)) != 0 ||
      !th_run_until(&loop, &nw.done, 10000) || nw.err != BFTNET_ENA) {
    fprintf(stderr, "interop_peer: unknown protocol was not refused with na (%s)\n",
            bftnet_strerror(err ? err : nw.err));
    return 1;
  }
  if ((err = ping_once(c, &rtt[3])) != 0) {
    fprintf(stderr, "interop_peer: ping after na: %s\n", bftnet_strerror(err));
    return 1;
  }
  printf("{\"ok\":true,\"peer\":\"%s\",\"pings_ms\":[%.3f,%.3f,%.3f],\"echo_bytes\":%zu,"
         "\"na\":true,\"ping_after_na_ms\":%.3f}\n",
         peer, rtt[0], rtt[1], rtt[2], echoed, rtt[3]);
  th_node_close(&node);
  return 0;
}

int main(int argc, char **argv) {
  bool listen = argc == 2 && strcmp(argv[1], "listen") == 0;
  bool dial = argc == 3 && strcmp(argv[1], "dial") == 0;
  if (!listen && !dial) {
    fprintf(stderr, "usage: interop_peer listen | interop_peer dial MULTIADDR\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&loop);
  net_config_t cfg;
  th_net_config(&cfg);
  cfg.ping_interval_ms = 5000;
  cfg.ping_timeout_ms = 15000;
  cfg.handshake_timeout_ms = 10000;
  if (net_transport_uv_new(&loop, bn_seam_system(), &transport) != 0) return 1;
  int rc = th_node_init(&node, transport, &cfg, listen);
  if (rc != 0) {
    fprintf(stderr, "interop_peer: init: %s\n", bftnet_strerror(rc));
    return 1;
  }
  int code = listen ? do_listen() : do_dial(argv[2]);
  if (code != 0) th_node_close(&node);
  uv_run(&loop, UV_RUN_NOWAIT);
  net_transport_uv_free(transport);
  th_loop_finish(&loop);
  th_node_free(&node);
  return code;
}
