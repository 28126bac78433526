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

static int parse_addr(const char *s, maddr_t *m) {
  char err[128];
  int rc = maddr_parse(s, m, err, sizeof err);
  if (rc < 0) bn_log(BN_LOG_INFO, "multiaddr '%s': %s", s, err);
  return rc;
}

BFTNET_API int bftnet_listen(bftnet_t *b, const char *maddr, char *bound, size_t cap) {
  if (!b || !maddr || (bound && cap == 0)) return BFTNET_EINVAL;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  cmd_t c = {.run = run_listen, .out = bound, .cap = bound ? cap : 0};
  int rc = parse_addr(maddr, &c.addr);
  if (rc < 0) return rc;
  if (c.addr.has_peer && !peerid_equal(&c.addr.peer, net_local_id(b->net)))
    return BFTNET_EPEERMISMATCH;
  return node__cmd_call(b, &c);
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

static int dial_common(bftnet_t *b, const char *maddr, uint32_t timeout_ms, char *peer_out,
                       size_t cap, cmd_fn fn, uint64_t *rtt) {
  if (!b || !maddr || (peer_out && cap == 0)) return BFTNET_EINVAL;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  cmd_t c = {.run = fn, .timeout_ms = timeout_ms};
  int rc = parse_addr(maddr, &c.addr);
  if (rc < 0) return rc;
  rc = node__cmd_call(b, &c);
  if (rc == 0 && peer_out) snprintf(peer_out, cap, "%s", c.peer);
  if (rc == 0 && rtt) *rtt = c.rtt_ns;
  return rc;
}

BFTNET_API int bftnet_dial(bftnet_t *b, const char *maddr, uint32_t timeout_ms, char *peer_out,
                           size_t cap) {
  return dial_common(b, maddr, timeout_ms, peer_out, cap, run_dial_only, NULL);
}

BFTNET_API int bftnet_ping(bftnet_t *b, const char *maddr, uint32_t timeout_ms, uint64_t *rtt_ns,
                           char *peer_out, size_t cap) {
  if (!rtt_ns) return BFTNET_EINVAL;
  return dial_common(b, maddr, timeout_ms, peer_out, cap, run_dial_ping, rtt_ns);
}
