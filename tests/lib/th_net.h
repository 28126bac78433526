/*
 * th_net.h — helpers for tests that drive net/ directly on a libuv loop:
 * a node wrapper, a bounded loop runner, and the /bftnet/echo/1.0.0
 * protocol (echo everything until the peer's FIN, then FIN) with a client
 * that sends a buffer and checks the echo.
 */
#ifndef BFTNET_TH_NET_H
#define BFTNET_TH_NET_H

#include <uv.h>

#include "identity.h"
#include "net.h"

#define TH_ECHO_PROTO "/bftnet/echo/1.0.0"

typedef struct th_node {
  bftnet_key_t *key;
  bn_counters_t ctr;
  net_t *net;
  char addr[BFTNET_ADDR_MAX];
  char id[BFTNET_PEER_ID_MAX];
  int ups, downs;
  bftnet_reason_t last_reason;
} th_node_t;

/* Defaults suited to tests (short timeouts). */
void th_net_config(net_config_t *cfg);
/* Creates a node on t listening on 127.0.0.1:0 (or not, if listen is false)
 * with the echo protocol registered. Returns 0 or an error. */
int th_node_init(th_node_t *node, bn_transport_t *t, const net_config_t *cfg, bool listen);
void th_node_close(th_node_t *node);
/* After the loop finished closing: frees the net and the key. */
void th_node_free(th_node_t *node);

/* Two nodes, a and b, on one loop and one transport, both listening on
 * 127.0.0.1: the fixture of the tests that drive net/ directly. */
typedef struct th_pair {
  uv_loop_t loop;
  bn_transport_t *t;
  th_node_t a, b;
} th_pair_t;

/* Starts p's loop, its transport and both nodes, a with cfg_a and b with
 * cfg_b (NULL: th_net_config's defaults). Returns 0 or an error. */
int th_pair_init(th_pair_t *p, const net_config_t *cfg_a, const net_config_t *cfg_b);
/* Closes both nodes, the transport and the loop, and frees the nodes;
 * returns th_loop_finish's result (0 = every handle closed cleanly). */
int th_pair_finish(th_pair_t *p);
/* cmocka fixtures: a fresh th_pair_t with the default config in *state;
 * the teardown asserts that it closed cleanly and frees it. */
int th_pair_setup(void **state);
int th_pair_teardown(void **state);

/* Runs loop until *flag becomes true or timeout_ms passes; returns *flag. */
bool th_run_until(uv_loop_t *loop, volatile bool *flag, uint64_t timeout_ms);
/* Same with a predicate. */
bool th_run_until_fn(uv_loop_t *loop, bool (*pred)(void *), void *arg, uint64_t timeout_ms);
/* Closes every handle still open and runs the loop dry; returns
 * uv_loop_close()'s result (0 = clean). */
int th_loop_finish(uv_loop_t *loop);

/* Dials addr, runs the loop until done; returns the conn or NULL (*err). */
net_conn_t *th_dial(uv_loop_t *loop, net_t *n, const char *addr, int *err, uint64_t timeout_ms);

/* One ping round trip on c, running the loop until it completes or
 * timeout_ms passes (BFTNET_ETIMEDOUT). Writes the round trip in ns. */
int th_ping(uv_loop_t *loop, net_conn_t *c, uint64_t *rtt_ns, uint64_t timeout_ms);

/* An echo client: writes len bytes (respecting flow control), FINs, reads
 * the echo until the peer's FIN and compares. */
typedef struct th_echo_client {
  const uint8_t *data;
  size_t len, sent, recvd;
  uint8_t *got;
  bool ready, done, fin_sent, mismatch;
  int err;
  net_stream_t *s;
} th_echo_client_t;

int th_echo_start(net_conn_t *c, th_echo_client_t *ec, const uint8_t *data, size_t len);

#endif
