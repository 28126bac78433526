#include <stdarg.h>

#include "harness.h"
#include "mig_core.h"
#include "th_node.h"

/* ------------------------------------------------------ the node's events */

void th_evrec_clear(th_evrec_t *r) {
  pthread_mutex_lock(&r->mu);
  r->n = 0;
  pthread_mutex_unlock(&r->mu);
}

void th_evrec_on_event(const bftnet_event_t *ev, void *user) {
  th_evrec_t *r = user;
  pthread_mutex_lock(&r->mu);
  if (r->n < TH_EVREC_MAX) {
    th_ev_t *e = &r->ev[r->n++];
    memset(e, 0, sizeof *e);
    e->type = ev->type;
    e->stream_id = ev->stream_id;
    e->lost = ev->lost;
    e->outbound = ev->outbound;
    e->why = ev->mig_reason;
    snprintf(e->abort, sizeof e->abort, "%s", ev->mig_abort ? ev->mig_abort : "");
    e->t_ns = th_mono_ns();
  }
  pthread_mutex_unlock(&r->mu);
}

int th_evrec_mark(th_evrec_t *r) {
  pthread_mutex_lock(&r->mu);
  int n = r->n;
  pthread_mutex_unlock(&r->mu);
  return n;
}

static bool ev_match(const th_ev_t *e, bftnet_event_type_t type, int outbound) {
  return e->type == type && (outbound < 0 || e->outbound == outbound);
}

int th_evrec_count(th_evrec_t *r, int from, bftnet_event_type_t type, int outbound) {
  int k = 0;
  pthread_mutex_lock(&r->mu);
  for (int i = from; i < r->n; i++)
    if (ev_match(&r->ev[i], type, outbound)) k++;
  pthread_mutex_unlock(&r->mu);
  return k;
}

bool th_evrec_find(th_evrec_t *r, int from, bftnet_event_type_t type, int outbound, bool last,
                   th_ev_t *out) {
  bool found = false;
  pthread_mutex_lock(&r->mu);
  for (int i = from; i < r->n && (last || !found); i++)
    if (ev_match(&r->ev[i], type, outbound)) {
      *out = r->ev[i];
      found = true;
    }
  pthread_mutex_unlock(&r->mu);
  return found;
}

/* --------------------------------------------------------------- the loop */

static void noop_timer(uv_timer_t *t) {
  (void)t;
}

bool th_run_ticking(uv_loop_t *loop, bool (*pred)(void *), void *arg, uint64_t timeout_ms) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, noop_timer, 1, 1);
  uint64_t deadline = th_mono_ns() + timeout_ms * 1000000ull;
  bool ok;
  while (!(ok = pred ? pred(arg) : false) && th_mono_ns() < deadline)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

void th_pump(uv_loop_t *loop, uint64_t ms) {
  (void)th_run_ticking(loop, NULL, NULL, ms);
}

/* --------------------------------------------------------------- the node */

void th_bnode_config(bftnet_config_t *cfg, bftnet_key_t *key, th_evrec_t *rec) {
  bftnet_config_init(cfg);
  cfg->key = key;
  cfg->dial_backoff_min_ms = 20;
  cfg->dial_backoff_max_ms = 200;
  cfg->on_event = th_evrec_on_event;
  cfg->user = rec;
}

int th_bnode_start(bftnet_t **out, const bftnet_config_t *cfg, char *addr, size_t cap) {
  int rc = bftnet_new(out, cfg);
  if (rc) return rc;
  rc = bftnet_listen(*out, "/ip4/127.0.0.1/tcp/0", addr, cap);
  if (rc) {
    bftnet_free(*out);
    *out = NULL;
  }
  return rc;
}

void th_bnode_connect_pair(bftnet_t *node, const char *self_addr, const char *peer_addr) {
  const char *a0[] = {self_addr}, *a1[] = {peer_addr};
  bftnet_member_t mem[] = {{"r0", a0, 1}, {"r1", a1, 1}};
  char err[256] = "";
  int rc = bftnet_connect(node, mem, 2, err, sizeof err);
  if (rc) fail_msg("bftnet_connect: %s: %s", bftnet_err_name(rc), err);
}

void th_bnode_send(bftnet_t *node, const char *to, uint64_t *next_seq, int n) {
  uint8_t buf[TH_MSG_MAX];
  for (int i = 0; i < n; i++) {
    uint64_t seq = (*next_seq)++;
    th_msg_fill(buf, seq);
    assert_ok(bftnet_send(node, to, buf, th_msg_len(seq)));
  }
}

bftnet_peer_stats_t th_bnode_stats(bftnet_t *node, const char *to) {
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(node, to, &st));
  return st;
}

/* --------------------------------------------------------------- the peer */

/* A key for the peer such that the pair with node_key is led as lead says
 * (the leader rule: mig_self_is_leader). */
static int peer_key(th_peer_t *p, const bftnet_key_t *node_key, th_lead_t lead) {
  for (int i = 0; i < 128; i++) {
    int rc = bftnet_key_generate(&p->key);
    if (rc) return rc;
    bool peer_leads = mig_self_is_leader(&p->key->id, &node_key->id);
    if (lead == TH_LEAD_ANY || (lead == TH_LEAD_PEER) == peer_leads) return 0;
    bftnet_key_free(p->key);
    p->key = NULL;
  }
  return BFTNET_EINVAL; /* 128 draws the wrong way: the rule is broken */
}

int th_peer_start(th_peer_t *p, const bftnet_key_t *node_key, th_lead_t lead, const net_cbs_t *cbs,
                  void *ud) {
  memset(p, 0, sizeof *p);
  int rc = uv_loop_init(&p->loop);
  if (rc) return rc;
  rc = net_transport_uv_new(&p->loop, bn_seam_system(), &p->t);
  if (rc) return rc;
  p->started = true;
  rc = peer_key(p, node_key, lead);
  if (rc) return rc;
  p->leads = mig_self_is_leader(&p->key->id, &node_key->id);
  p->lower = mig_self_is_lower(&p->key->id, &node_key->id);
  bftnet_key_peer_id(p->key, p->id, sizeof p->id);
  bn_random(bn_seam_system(), &p->inc, sizeof p->inc);
  p->next_k = 500; /* far from the node's IDs, which it counts from 0 */
  net_config_t nc;
  th_net_config(&nc);
  rc = net_new(&p->net, p->t, p->key, &nc, cbs, ud, &p->ctr);
  if (rc) return rc;
  maddr_t m;
  char e[128];
  rc = maddr_parse("/ip4/127.0.0.1/tcp/0", &m, e, sizeof e);
  if (rc == 0) rc = net_listen(p->net, &m, p->addr, sizeof p->addr);
  return rc;
}

int th_peer_dial(th_peer_t *p, const char *addr, uint64_t timeout_ms) {
  int err = 0;
  (void)th_dial(&p->loop, p->net, addr, &err, timeout_ms);
  return err;
}

uint64_t th_peer_next_id(th_peer_t *p) {
  return 2 * p->next_k++ + (p->lower ? 0u : 1u);
}

void th_peer_fail(th_peer_t *p, const char *fmt, ...) {
  if (p->failed) return;
  p->failed = true;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err, sizeof p->err, fmt, ap);
  va_end(ap);
}

void th_peer_assert_ok(const th_peer_t *p) {
  if (p->failed) fail_msg("peer: %s", p->err);
}

static void peer_closed(void *ud) {
  (void)ud;
}

int th_peer_finish(th_peer_t *p) {
  if (!p->started) return 0;
  if (!p->closed && p->net) net_close(p->net, peer_closed, NULL);
  for (int i = 0; i < 50; i++)
    uv_run(&p->loop, UV_RUN_NOWAIT);
  net_transport_uv_free(p->t);
  int rc = th_loop_finish(&p->loop);
  if (p->net) net_free(p->net);
  bftnet_key_free(p->key);
  p->net = NULL;
  p->key = NULL;
  p->started = false;
  return rc;
}

/* ------------------------------------------------------------ both ends */

int th_node_peer_finish(bftnet_t **node, bftnet_key_t **node_key, th_peer_t *p) {
  bftnet_free(*node);
  *node = NULL;
  int rc = th_peer_finish(p);
  bftnet_key_free(*node_key);
  *node_key = NULL;
  return rc;
}
