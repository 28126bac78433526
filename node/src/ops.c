/*
 * ops.c — bftnet_listen, bftnet_dial and bftnet_ping: commands run on the
 * loop thread (cmd.c) over net/. A dial or ping outlives a caller that gave
 * up (its timeout): the operation is the loop's, the caller only waits.
 */
#include <stdio.h>
#include <stdlib.h>

#include "node_internal.h"

/* A dial or ping in flight, owned by the loop: it outlives a caller that
 * gave up (timeout) and is freed when the operation completes. */
typedef struct op {
  bftnet_t *b;
  cmd_t *cmd; /* NULL once the caller was answered */
  bn_ttimer_t *timer;
  bool ping; /* after the dial, ping */
} op_t;

/* ------------------------------------------------------------ listening */

static void run_listen(bftnet_t *b, cmd_t *c) {
  node__cmd_complete(b, c, net_listen(b->net, &c->addr, c->out, c->cap));
}

/* How much of a caller's multiaddr an error text quotes. */
#define OPS_QUOTE "%.100s"

static int parse_addr(bftnet_t *b, const char *s, maddr_t *m, char *errbuf, size_t errcap) {
  char err[128];
  int rc = maddr_parse(s, m, err, sizeof err);
  if (rc < 0) {
    bn_log(&b->log, BN_LOG_INFO, "multiaddr '" OPS_QUOTE "': %s", s, err);
    node_errf(errbuf, errcap, "multiaddr '" OPS_QUOTE "': %s", s, err);
  }
  return rc;
}

/* The checks every blocking call starts with; fills errbuf on failure. */
static int ops_begin(bftnet_t *b, const char *maddr, char *errbuf, size_t errcap) {
  if (errbuf && errcap) errbuf[0] = '\0';
  if (!b || !maddr) {
    node_errf(errbuf, errcap, "%s: NULL", !b ? "net" : "maddr");
    return BFTNET_EINVAL;
  }
  if (ck_pr_load_int(&b->stopped)) {
    node_errf(errbuf, errcap, "the node was stopped");
    return BFTNET_ECLOSED;
  }
  if (node__cmd_in_callback(b)) {
    node_errf(errbuf, errcap, "a blocking call inside a loop callback of the same node");
    return BFTNET_EINCALLBACK;
  }
  return 0;
}

BFTNET_API int bftnet_listen(bftnet_t *b, const char *maddr, char *bound, size_t cap) {
  return bftnet_listen_ex(b, maddr, bound, cap, NULL, 0);
}

BFTNET_API int bftnet_listen_ex(bftnet_t *b, const char *maddr, char *bound, size_t cap,
                                char *errbuf, size_t errcap) {
  int rc = ops_begin(b, maddr, errbuf, errcap);
  if (rc < 0) return rc;
  if (bound && cap == 0) {
    node_errf(errbuf, errcap, "bound: cap=0 (BFTNET_ADDR_MAX bytes always fit)");
    return BFTNET_EBUFSIZE;
  }
  cmd_t c = {.run = run_listen, .out = bound, .cap = bound ? cap : 0};
  if ((rc = parse_addr(b, maddr, &c.addr, errbuf, errcap)) < 0) return rc;
  if (c.addr.has_peer && !peerid_equal(&c.addr.peer, net_local_id(b->net))) {
    node_errf(errbuf, errcap, "multiaddr '" OPS_QUOTE "': its /p2p is not this node's peer ID",
              maddr);
    return BFTNET_EPEERMISMATCH;
  }
  rc = node__cmd_call(b, &c);
  if (rc == BFTNET_EBUFSIZE) /* net closed the listener again: nothing stays bound */
    node_errf(errbuf, errcap,
              "bound: cap=%zu too small for the bound address (BFTNET_ADDR_MAX bytes always fit)",
              cap);
  else if (rc < 0)
    node_errf(errbuf, errcap, "listen on '" OPS_QUOTE "': %s", maddr, bftnet_strerror(rc));
  return rc;
}

/* --------------------------------------------------------- dial / ping */

static void op_finish(op_t *op, int rc) {
  if (op->cmd) {
    cmd_t *c = op->cmd;
    op->cmd = NULL;
    node__cmd_complete(op->b, c, rc);
  }
}

static void op_free(op_t *op) {
  bftnet_t *b = op->b;
  if (op->timer) b->t->ops->timer_free(op->timer);
  free(op);
}

static void op_timeout(void *ud) {
  op_t *op = ud;
  op_finish(op, BFTNET_ETIMEDOUT); /* the operation itself ends later; op lives till then */
}

static void op_ping_done(void *ud, uint64_t rtt_ns, int err) {
  op_t *op = ud;
  if (op->cmd && err == 0) op->cmd->rtt_ns = rtt_ns;
  op_finish(op, err);
  op_free(op);
}

static void op_dial_done(void *ud, net_conn_t *conn, int err) {
  op_t *op = ud;
  if (err == 0 && op->cmd) {
    peerid_to_string(net_conn_peer(conn), op->cmd->peer, sizeof op->cmd->peer);
    if (op->ping) {
      err = net_conn_ping(conn, op_ping_done, op);
      if (err == 0) return;
    }
  }
  op_finish(op, err);
  op_free(op);
}

static void run_dial(bftnet_t *b, cmd_t *c, bool ping) {
  op_t *op = calloc(1, sizeof *op);
  if (!op) return node__cmd_complete(b, c, BFTNET_ENOMEM);
  op->b = b;
  op->cmd = c;
  op->ping = ping;
  if (c->timeout_ms && b->t->ops->timer_new(b->t, op_timeout, op, &op->timer) == 0)
    b->t->ops->timer_start(op->timer, c->timeout_ms, 0);
  int rc = net_dial(b->net, &c->addr, op_dial_done, op);
  if (rc < 0) {
    op_finish(op, rc);
    op_free(op);
  }
}

static void run_dial_only(bftnet_t *b, cmd_t *c) {
  run_dial(b, c, false);
}
static void run_dial_ping(bftnet_t *b, cmd_t *c) {
  run_dial(b, c, true);
}

/* Why a dial that got as far as the network failed, for errbuf. */
static void dial_errf(char *errbuf, size_t errcap, const char *maddr, uint32_t timeout_ms,
                      int rc) {
  if (rc == BFTNET_ETIMEDOUT)
    node_errf(errbuf, errcap, "dial '" OPS_QUOTE "': not up within timeout_ms=%u", maddr,
              timeout_ms);
  else if (rc == BFTNET_EPEERMISMATCH)
    node_errf(errbuf, errcap, "dial '" OPS_QUOTE "': the peer there has another peer ID", maddr);
  else if (rc == BFTNET_EINVAL)
    node_errf(errbuf, errcap, "dial '" OPS_QUOTE "': that is this node's own peer ID", maddr);
  else
    node_errf(errbuf, errcap, "dial '" OPS_QUOTE "': %s", maddr, bftnet_strerror(rc));
}

static int dial_common(bftnet_t *b, const char *maddr, uint32_t timeout_ms, char *peer_out,
                       size_t cap, cmd_fn fn, uint64_t *rtt, char *errbuf, size_t errcap) {
  int rc = ops_begin(b, maddr, errbuf, errcap);
  if (rc < 0) return rc;
  /* Checked first: a dial that succeeded must not fail afterwards for want
   * of room (its connection would stay behind a failed call). */
  if (peer_out && cap < BFTNET_PEER_ID_MAX) {
    node_errf(errbuf, errcap, "peer_out: cap=%zu, needs BFTNET_PEER_ID_MAX (%d) bytes", cap,
              BFTNET_PEER_ID_MAX);
    return BFTNET_EBUFSIZE;
  }
  cmd_t c = {.run = fn, .timeout_ms = timeout_ms};
  if ((rc = parse_addr(b, maddr, &c.addr, errbuf, errcap)) < 0) return rc;
  rc = node__cmd_call(b, &c);
  if (rc < 0) dial_errf(errbuf, errcap, maddr, timeout_ms, rc);
  if (rc == 0 && peer_out) snprintf(peer_out, cap, "%s", c.peer);
  if (rc == 0 && rtt) *rtt = c.rtt_ns;
  return rc;
}

BFTNET_API int bftnet_dial(bftnet_t *b, const char *maddr, uint32_t timeout_ms, char *peer_out,
                           size_t cap) {
  return dial_common(b, maddr, timeout_ms, peer_out, cap, run_dial_only, NULL, NULL, 0);
}

BFTNET_API int bftnet_dial_ex(bftnet_t *b, const char *maddr, uint32_t timeout_ms, char *peer_out,
                              size_t cap, char *errbuf, size_t errcap) {
  return dial_common(b, maddr, timeout_ms, peer_out, cap, run_dial_only, NULL, errbuf, errcap);
}

BFTNET_API int bftnet_ping(bftnet_t *b, const char *maddr, uint32_t timeout_ms, uint64_t *rtt_ns,
                           char *peer_out, size_t cap) {
  if (!rtt_ns) return BFTNET_EINVAL;
  return dial_common(b, maddr, timeout_ms, peer_out, cap, run_dial_ping, rtt_ns, NULL, 0);
}
