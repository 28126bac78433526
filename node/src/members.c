/*
 * members.c — the membership-driven part of the facade (seed 003):
 * bftnet_connect diffs the membership; each member gets a Dispatcher (its
 * send ring, a dialer with backoff, one outbound /bftnet/msg/1.0.0 stream)
 * and a Receiver (deframer -> bounded inbound queue that application
 * threads drain round-robin). Authenticated non-members get a bounded
 * TentativeReceiver that a later bftnet_connect promotes.
 *
 * Application threads find members through an immutable snapshot read
 * inside an epoch section (Concurrency Kit ck_epoch); the loop thread
 * publishes a new snapshot on every membership change and frees the old
 * one, and removed members, only after ck_epoch_synchronize.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>

#include "node_internal.h"

/* -------------------------------------------------------------- epochs */

/* Application threads keep one epoch record per node across calls.
 * Taking one from ck_epoch's pool per call (ck_epoch_recycle: a scan and a
 * CAS, then unregister) cost 3 % of a small send. A thread's cache names a
 * node by its serial (never reused), not by its address, so a freed node's
 * entries are simply stale. A thread that exits hands its records back to
 * their pools (a pthread key's destructor) if their node still lives;
 * g_nodes_mu makes that check and the node's free exclusive. */
#define TL_RECS 4
typedef struct tl_rec {
  uint64_t serial;
  ck_epoch_record_t *r;
} tl_rec_t;
typedef struct tl_cache {
  tl_rec_t e[TL_RECS];
  unsigned next; /* the slot replaced next */
} tl_cache_t;

static pthread_mutex_t g_nodes_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_serial;  /* the last serial given */
static uint64_t *g_live;   /* serials of the nodes alive */
static size_t g_nlive, g_caplive;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static _Thread_local tl_cache_t *tl_cache;

static bool node_live_locked(uint64_t serial) {
  for (size_t i = 0; i < g_nlive; i++)
    if (g_live[i] == serial) return true;
  return false;
}

/* Gives a cached record back to its node's pool, if the node lives. */
static void tl_drop_locked(tl_rec_t *t) {
  if (t->serial && node_live_locked(t->serial)) {
    BN_TSAN_RELEASE(t->r);
    ck_epoch_unregister(t->r);
  }
  t->serial = 0;
  t->r = NULL;
}

static void tl_cache_free(void *p) {
  tl_cache_t *c = p;
  pthread_mutex_lock(&g_nodes_mu);
  for (unsigned i = 0; i < TL_RECS; i++) tl_drop_locked(&c->e[i]);
  pthread_mutex_unlock(&g_nodes_mu);
  free(c);
}

static void tl_key_init(void) { (void)pthread_key_create(&g_key, tl_cache_free); }

static int node_serial_add(bftnet_t *b) {
  pthread_once(&g_key_once, tl_key_init);
  pthread_mutex_lock(&g_nodes_mu);
  int rc = 0;
  if (g_nlive == g_caplive) {
    size_t ncap = g_caplive ? 2 * g_caplive : 8;
    uint64_t *nv = realloc(g_live, ncap * sizeof *nv);
    if (nv) {
      g_live = nv;
      g_caplive = ncap;
    } else {
      rc = BFTNET_ENOMEM;
    }
  }
  if (rc == 0) {
    b->serial = ++g_serial;
    g_live[g_nlive++] = b->serial;
  }
  pthread_mutex_unlock(&g_nodes_mu);
  return rc;
}

static void node_serial_remove(bftnet_t *b) {
  pthread_mutex_lock(&g_nodes_mu);
  for (size_t i = 0; i < g_nlive; i++) {
    if (g_live[i] != b->serial) continue;
    g_live[i] = g_live[--g_nlive];
    break;
  }
  pthread_mutex_unlock(&g_nodes_mu);
  b->serial = 0;
}

/* A record from the node's pool, or a new one. */
static ck_epoch_record_t *epoch_take(bftnet_t *b) {
  ck_epoch_record_t *r = ck_epoch_recycle(&b->epoch, NULL);
  if (r) {
    BN_TSAN_ACQUIRE(r); /* handed over by ck's CAS from the last user */
    return r;
  }
  epoch_rec_t *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  do {
    e->next = ck_pr_load_ptr(&b->recs);
  } while (!ck_pr_cas_ptr(&b->recs, e->next, e));
  r = &e->rec;
  ck_epoch_register(&b->epoch, r, NULL);
  return r;
}

static ck_epoch_record_t *epoch_enter(bftnet_t *b, ck_epoch_section_t *sec) {
  tl_cache_t *c = tl_cache;
  ck_epoch_record_t *r = NULL;
  if (c) {
    for (unsigned i = 0; i < TL_RECS && !r; i++)
      if (c->e[i].serial == b->serial) r = c->e[i].r;
  } else if ((c = calloc(1, sizeof *c)) != NULL) {
    if (pthread_setspecific(g_key, c) == 0) {
      tl_cache = c;
    } else {
      free(c);
      c = NULL;
    }
  }
  if (!r) {
    r = epoch_take(b);
    if (!r) return NULL;
    if (c) { /* keep it; the slot's old record goes back to its node */
      tl_rec_t *t = &c->e[c->next++ % TL_RECS];
      if (t->serial) {
        pthread_mutex_lock(&g_nodes_mu);
        tl_drop_locked(t);
        pthread_mutex_unlock(&g_nodes_mu);
      }
      t->serial = b->serial;
      t->r = r;
    }
  }
  ck_epoch_begin(r, sec);
  return r;
}

static void epoch_exit(bftnet_t *b, ck_epoch_record_t *r, ck_epoch_section_t *sec) {
  BN_TSAN_RELEASE(&b->epoch); /* our reads happen before the grace period ends */
  ck_epoch_end(r, sec);
  if (!tl_cache) { /* no cache (out of memory): back to the pool */
    BN_TSAN_RELEASE(r);
    ck_epoch_unregister(r);
  }
}

static msnap_t *snap_load(bftnet_t *b) {
  msnap_t *s = ck_pr_load_ptr(&b->snap);
  BN_TSAN_ACQUIRE(s);
  return s;
}

static int mbr_cmp_key(const void *key, const void *elem) {
  return strcmp(key, (*(mbr_t *const *)elem)->node_id);
}

static mbr_t *snap_find(const msnap_t *s, const char *node_id) {
  if (s->n == 0) return NULL;
  mbr_t **p = bsearch(node_id, s->m, s->n, sizeof *s->m, mbr_cmp_key);
  return p ? *p : NULL;
}

/* Loop thread only (it is the writer, so it reads without a section). */
static mbr_t *find_by_peer(bftnet_t *b, const peerid_t *peer) {
  msnap_t *s = b->snap;
  for (size_t i = 0; i < s->n; i++)
    if (peerid_equal(&s->m[i]->peer, peer)) return s->m[i];
  return NULL;
}

static void mbr_free(mbr_t *m);

/* -------------------------------------------------------------- events */

static void emit_full(bftnet_t *b, const bftnet_event_t *ev) {
  if (b->cfg.on_event) b->cfg.on_event(ev, b->cfg.user);
}

static void emit_member(bftnet_t *b, bftnet_event_type_t type, const mbr_t *m,
                        bftnet_reason_t reason, int err) {
  if (!b->cfg.on_event) return;
  char peer[BFTNET_PEER_ID_MAX] = "";
  peerid_to_string(&m->peer, peer, sizeof peer);
  bftnet_event_t ev = {.type = type, .node_id = m->node_id, .peer_id = peer,
                       .remote_addr = "", .prev_addr = "", .mig_abort = "",
                       .reason = reason, .error = err};
  emit_full(b, &ev);
}

void members_conn_event(bftnet_t *b, net_conn_t *c, bftnet_event_type_t type,
                        bftnet_reason_t reason, int err) {
  mbr_t *m = net_conn_peer(c)->len ? find_by_peer(b, net_conn_peer(c)) : NULL;
  if (type == BFTNET_EV_CONNECTED) {
    ml_node_conn_up(b->ml, c);
    if (m) disp_conn_up(&m->d);
  } else {
    ml_node_conn_down(b->ml, c);
    if (m) disp_conn_down(&m->d);
  }
  if (!b->cfg.on_event) return;
  char peer[BFTNET_PEER_ID_MAX] = "", addr[BFTNET_ADDR_MAX] = "";
  if (net_conn_peer(c)->len) peerid_to_string(net_conn_peer(c), peer, sizeof peer);
  net_conn_remote_addr(c, addr, sizeof addr);
  bftnet_event_t ev = {.type = type, .node_id = m ? m->node_id : "", .peer_id = peer,
                       .remote_addr = addr, .prev_addr = "", .mig_abort = "",
                       .outbound = net_conn_outbound(c), .reason = reason, .error = err};
  emit_full(b, &ev);
}

/* Copies the pair's migration statistics where bftnet_peer_stats reads them. */
static void mbr_publish_stats(mbr_t *m) {
  if (!m->d.lp) return;
  const ml_peer_stats_t *st = ml_peer_stats(m->d.lp);
  ck_pr_store_64(&m->pub.migrations, st->migrations);
  ck_pr_store_64(&m->pub.detached, st->detached);
  ck_pr_store_64(&m->pub.resumed, st->resumed);
  ck_pr_store_64(&m->pub.retransmitted, st->retransmitted);
  ck_pr_store_64(&m->pub.detach_ns_last, st->detach_ns_last);
  ck_pr_store_64(&m->pub.detach_ns_max, st->detach_ns_max);
  ck_pr_store_64(&m->pub.restarts, st->restarts);
}

/* A migration event of one of the member's two streams, for the app. */
static void emit_stream(mbr_t *m, ml_stream_t *ls, const ml_event_t *e, bool outbound, uint64_t lost) {
  bftnet_t *b = m->b;
  mbr_publish_stats(m);
  if (!b->cfg.on_event) return;
  static const bftnet_event_type_t map[] = {
      [ML_EV_MIGRATED] = BFTNET_EV_MIGRATED, [ML_EV_DETACHED] = BFTNET_EV_DETACHED,
      [ML_EV_RESUMED] = BFTNET_EV_RESUMED,   [ML_EV_DENIED] = BFTNET_EV_DENIED,
      [ML_EV_ABORTED] = BFTNET_EV_ABORTED,   [ML_EV_CLOSED] = 0, [ML_EV_READ_EOF] = 0};
  if ((size_t)e->type >= BN_ARRAY_LEN(map) || !map[e->type]) return;
  char peer[BFTNET_PEER_ID_MAX] = "", from[BFTNET_ADDR_MAX] = "", to[BFTNET_ADDR_MAX] = "";
  peerid_to_string(&m->peer, peer, sizeof peer);
  if (e->from_addr) snprintf(from, sizeof from, "%s", e->from_addr);
  net_conn_t *tc = e->to ? e->to : ml_stream_conn(ls);
  if (tc) net_conn_remote_addr(tc, to, sizeof to);
  bftnet_event_t ev = {.type = map[e->type], .node_id = m->node_id, .peer_id = peer,
                       .remote_addr = to, .prev_addr = from, .outbound = outbound,
                       .stream_id = e->stream_id, .mig_reason = e->why,
                       .mig_abort = e->reason ? e->reason : "", .lost = lost,
                       .detached_ns = e->detached_ns, .retransmitted = e->retransmitted};
  emit_full(b, &ev);
}

static void mbr_restarted(void *ud, ml_peer_t *p, uint64_t inc) {
  (void)inc;
  bftnet_t *b = ud;
  mbr_t *m = ml_peer_owner(p);
  if (!m || find_by_peer(b, ml_peer_id(p)) != m) return;
  mbr_publish_stats(m);
  emit_member(b, BFTNET_EV_PEER_RESTARTED, m, BFTNET_REASON_NONE, 0);
}

/* ------------------------------------------------ delivery to the app */

/* Messages were queued (once per loop turn): threads blocked in
 * bftnet_recv, or polling its fd, wake up. */
static void rx_on_ready(void *ud) {
  bftnet_t *b = ud;
  uint64_t one = 1;
  (void)!write(b->efd, &one, sizeof one);
}

static void rx_on_stream_event(void *ud, ml_stream_t *ls, const ml_event_t *e) {
  emit_stream(ud, ls, e, false, 0);
}

static const rx_cbs_t rx_cbs = {.on_ready = rx_on_ready, .on_stream_event = rx_on_stream_event};

/* ---------------------------------------------------------- Dispatcher */

static void disp_on_member(void *ud, bftnet_event_type_t type, bftnet_reason_t reason, int err) {
  mbr_t *m = ud;
  emit_member(m->b, type, m, reason, err);
}

static void disp_on_stream_event(void *ud, ml_stream_t *ls, const ml_event_t *e, uint64_t lost) {
  emit_stream(ud, ls, e, true, lost);
}

static void disp_on_reclaimable(void *ud) { mbr_free(ud); }

static const disp_cbs_t disp_cbs = {.on_member = disp_on_member,
                                    .on_stream_event = disp_on_stream_event,
                                    .on_reclaimable = disp_on_reclaimable};

/* The peer opened a /bftnet/msg/1.0.0 stream (labelled or plain): a
 * member's Receiver or a TentativeReceiver. */
static int on_stream(void *ud, ml_peer_t *lp, ml_stream_t *ls) {
  bftnet_t *b = ud;
  mbr_t *m = find_by_peer(b, ml_peer_id(lp));
  if (!m || m->d.stopped) return rx_tent_open(&b->rctx, lp, ls);
  ml_peer_set_owner(lp, m);
  rx_set_in(&m->r, ls);
  return 0;
}

/* ------------------------------------------------------------- members */

static mbr_t *mbr_new(bftnet_t *b, const mb_member_t *info, uint64_t ver) {
  mbr_t *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->b = b;
  snprintf(m->node_id, sizeof m->node_id, "%s", info->node_id);
  m->peer = info->peer;
  if (rx_init(&m->r, &b->rctx, m, m->node_id) != 0) goto err_free;
  /* Last: it takes the pair's migration state, which nothing may give back. */
  if (disp_init(&m->d, &b->dctx, m, m->node_id, &info->peer, info->addrs, info->naddrs, ver) != 0)
    goto err_rx;
  return m;
err_rx:
  rx_destroy(&m->r);
err_free:
  free(m);
  return NULL;
}

/* Loop thread: stop everything the member does (Mir's CloseOldConnections). */
static void mbr_remove(mbr_t *m) {
  bftnet_t *b = m->b;
  rx_stop(&m->r);
  disp_stop(&m->d); /* releases the pair's state: both streams reset, no events */
  /* A copy: closing may complete m's dial, and callbacks must not see m
   * half torn down through this pointer. */
  peerid_t peer = m->peer;
  net_close_peer(b->net, &peer, BFTNET_REASON_LOCAL_CLOSE);
}

static void mbr_destroy(mbr_t *m) {
  disp_destroy(&m->d);
  rx_destroy(&m->r);
  free(m);
}

/* After the epoch grace period: no application thread can see m. */
static void mbr_free(mbr_t *m) {
  if (disp_reclaim(&m->d)) mbr_destroy(m); /* else its dial's end frees it */
}

static int mbr_ptr_cmp(const void *a, const void *b) {
  return strcmp((*(mbr_t *const *)a)->node_id, (*(mbr_t *const *)b)->node_id);
}

/* Publishes a snapshot of `live` (n members) and waits out the readers of
 * the previous one. */
static int snap_publish(bftnet_t *b, mbr_t **live, size_t n, const char *self_id) {
  msnap_t *s = calloc(1, sizeof *s);
  if (!s) return BFTNET_ENOMEM;
  s->m = n ? malloc(n * sizeof *s->m) : NULL;
  s->d = n ? malloc(n * sizeof *s->d) : NULL;
  if (n && (!s->m || !s->d)) {
    free(s->m);
    free(s->d);
    free(s);
    return BFTNET_ENOMEM;
  }
  if (n) memcpy(s->m, live, n * sizeof *live);
  s->n = n;
  if (n) qsort(s->m, n, sizeof *s->m, mbr_ptr_cmp);
  for (size_t i = 0; i < n; i++) s->d[i] = &s->m[i]->d;
  snprintf(s->self_id, sizeof s->self_id, "%s", self_id);
  s->ver = ++b->snap_ver; /* run_connect gave members new in it this version */
  msnap_t *old = b->snap;
  BN_TSAN_RELEASE(s);
  ck_pr_fence_store();
  ck_pr_store_ptr(&b->snap, s);
  ck_epoch_synchronize(&b->loop_rec);
  BN_TSAN_ACQUIRE(&b->epoch); /* every reader of old has left its section */
  if (old) {
    free(old->m);
    free(old->d);
    free(old);
  }
  return 0;
}

void run_connect(bftnet_t *b, cmd_t *c) {
  mb_change_t *ch;
  size_t nch;
  int rc = mb_diff(&b->table, &c->table, &ch, &nch);
  if (rc < 0) {
    mb_table_free(&c->table);
    return cmd_complete(b, c, rc);
  }
  const peerid_t *me = net_local_id(b->net);
  msnap_t *cur = b->snap;
  size_t cap = cur->n + c->table.n;
  mbr_t **live = malloc((cap ? cap : 1) * sizeof *live);
  mbr_t **gone = malloc((cap ? cap : 1) * sizeof *gone);
  mbr_t **fresh = malloc((cap ? cap : 1) * sizeof *fresh);
  if (!live || !gone || !fresh) {
    free(live);
    free(gone);
    free(fresh);
    free(ch);
    mb_table_free(&c->table);
    return cmd_complete(b, c, BFTNET_ENOMEM);
  }
  size_t nlive = 0, ngone = 0, nfresh = 0;
  for (size_t i = 0; i < cur->n; i++) live[nlive++] = cur->m[i];
  const char *self_id = "";
  for (size_t i = 0; i < nch; i++) {
    const mb_change_t *x = &ch[i];
    const mb_member_t *info = x->new_m ? x->new_m : x->old_m;
    if (peerid_equal(&info->peer, me)) {
      if (x->kind != MB_REMOVED) self_id = x->new_m->node_id;
      continue; /* ourselves: no Dispatcher, no Receiver */
    }
    mbr_t *m = NULL;
    for (size_t k = 0; k < nlive; k++)
      if (strcmp(live[k]->node_id, info->node_id) == 0) m = live[k];
    if (x->kind == MB_REMOVED && m) {
      mbr_remove(m);
      emit_member(b, BFTNET_EV_MEMBER_REMOVED, m, BFTNET_REASON_NONE, 0);
      for (size_t k = 0; k < nlive; k++)
        if (live[k] == m) live[k] = live[--nlive];
      gone[ngone++] = m;
    } else if (x->kind == MB_ADDED) {
      /* Broadcasts from here on that were addressed to the snapshot about
       * to be published (the next version) or a later one are its. */
      m = mbr_new(b, x->new_m, b->snap_ver + 1);
      if (!m) {
        rc = BFTNET_ENOMEM;
        continue;
      }
      live[nlive++] = m;
      fresh[nfresh++] = m;
    } else if (x->kind == MB_ADDRS_CHANGED && m) {
      disp_set_addrs(&m->d, x->new_m->addrs, x->new_m->naddrs);
    }
  }
  int prc = snap_publish(b, live, nlive, self_id);
  if (prc < 0) rc = prc;
  /* Added members: promoted after publishing, so that find_by_peer sees them. */
  for (size_t i = 0; i < nfresh; i++) {
    mbr_t *m = fresh[i];
    emit_member(b, BFTNET_EV_MEMBER_ADDED, m, BFTNET_REASON_NONE, 0);
    rx_tent_promote(&b->rctx, &m->peer, &m->r);
  }
  for (size_t i = 0; i < ngone; i++) {
    disp_account_removed(&gone[i]->d);
    mbr_free(gone[i]);
  }
  /* Connect the new members (after publishing, so sends are already queued). */
  for (size_t i = 0; i < nlive; i++) disp_connect(&live[i]->d);
  mb_table_free(&b->table);
  b->table = c->table;
  c->table = (mb_table_t){0};
  free(live);
  free(gone);
  free(fresh);
  free(ch);
  cmd_complete(b, c, rc);
}

/* Sends queued messages, pops freed queue room (the loop thread's answer
 * to a wake or a kick). */
static void members_wake(bftnet_t *b) {
  b->activity++;
  msnap_t *s = b->snap;
  for (size_t i = 0; i < s->n; i++) {
    mbr_t *m = s->m[i];
    disp_wake(&m->d);
    rx_wake(&m->r);
  }
  disp_blog_advance(&b->dctx, s->d, s->n);
}

static void members_kick(void *ud) { members_wake(ud); }

/* uv_async: an application thread queued something or freed queue room. */
void members_on_wake(uv_async_t *h) { members_wake(h->data); }

/* The node's own loop thread (set by loop_thread; NULL elsewhere, and on
 * an application's loop, cfg.loop). */
_Thread_local bftnet_t *bn_tl_loop_node;

/* After queueing: wakes the loop thread. Called on the loop thread itself
 * (an on_message callback that replies), it defers the drain to the end of
 * this loop turn instead: no eventfd write and read, no extra wake-up
 * (about 2 us of a 64 B round trip's 66 us per hop). */
static void kick_loop(bftnet_t *b) {
  if (bn_tl_loop_node == b)
    b->t->ops->defer(b->t, members_kick, b);
  else
    uv_async_send(&b->wake);
}

int members_init(bftnet_t *b) {
  ck_epoch_init(&b->epoch);
  ck_epoch_register(&b->epoch, &b->loop_rec, NULL);
  b->snap = calloc(1, sizeof *b->snap);
  if (!b->snap) return BFTNET_ENOMEM;
  b->pool = bn_pool_new(BFTNET_POOL_CACHE);
  if (!b->pool) return BFTNET_ENOMEM;
  int src = node_serial_add(b);
  if (src) return src;
  b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (b->efd < 0) return -errno;
  int rc = uv_async_init(b->loop, &b->wake, members_on_wake);
  if (rc) return rc;
  b->wake.data = b;
  rx_config_t rc_cfg = {.max_message_size = b->cfg.max_message_size,
                        .inbound_max_msgs = b->cfg.inbound_max_msgs,
                        .inbound_max_bytes = b->cfg.inbound_max_bytes,
                        .tentative_max = b->cfg.tentative_max,
                        .tentative_max_msgs = b->cfg.tentative_max_msgs,
                        .tentative_max_bytes = b->cfg.tentative_max_bytes,
                        .tentative_rate = b->cfg.tentative_rate,
                        .on_message = b->cfg.on_message,
                        .user = b->cfg.user};
  rc = rx_ctx_init(&b->rctx, &rc_cfg, b->t, &b->counters, b->pool, &rx_cbs, b);
  if (rc) return rc;
  ml_config_t mc = {.detach_timeout_ns = (uint64_t)b->cfg.detach_timeout_ms * 1000000ull,
                    .failback_ns = (uint64_t)b->cfg.failback_ms * 1000000ull,
                    .window_max = b->cfg.yamux_window,
                    .plain = b->cfg.disable_migration != 0};
  ml_node_cbs_t cbs = {.on_stream = on_stream, .on_peer_restarted = mbr_restarted};
  rc = ml_node_new(&b->ml, b->net, &mc, &cbs, b, &b->counters);
  if (rc) return rc;
  disp_config_t dc = {.ring_capacity = b->cfg.ring_capacity,
                      .backoff_min_ms = b->cfg.dial_backoff_min_ms,
                      .backoff_max_ms = b->cfg.dial_backoff_max_ms};
  return disp_ctx_init(&b->dctx, &dc, b->t, b->net, b->ml, &b->counters, b->pool, &disp_cbs);
}

void members_stop(bftnet_t *b) {
  msnap_t *s = b->snap;
  for (size_t i = 0; i < s->n; i++) mbr_remove(s->m[i]);
  rx_ctx_stop(&b->rctx);
  ml_node_stop(b->ml);
}

void members_destroy(bftnet_t *b) {
  msnap_t *s = b->snap;
  if (s) {
    for (size_t i = 0; i < s->n; i++) mbr_destroy(s->m[i]); /* no dial ends now */
    free(s->m);
    free(s->d);
    free(s);
    b->snap = NULL;
  }
  ml_node_free(b->ml);
  b->ml = NULL;
  mb_table_free(&b->table);
  /* No application thread may be inside a bftnet call now (bftnet_free),
   * and none may give a record back once the serial is gone. */
  if (b->serial) node_serial_remove(b);
  for (epoch_rec_t *e = b->recs, *next; e; e = next) {
    next = e->next;
    free(e);
  }
  b->recs = NULL;
  if (b->efd >= 0) close(b->efd);
  b->efd = -1;
  disp_ctx_destroy(&b->dctx); /* after every framer let go of the log's entries */
  bn_pool_close(b->pool); /* lives on while the application holds messages */
  b->pool = NULL;
}

/* ------------------------------------------------------- public: connect */

BFTNET_API int bftnet_connect(bftnet_t *b, const bftnet_member_t *members, size_t n, char *errbuf,
                              size_t errcap) {
  if (!b || (!members && n)) return BFTNET_EINVAL;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  cmd_t c = {.run = run_connect};
  int rc = mb_table_build(&c.table, members, n, errbuf, errcap); /* validate off the loop */
  if (rc < 0) return rc;
  return call(b, &c);
}

BFTNET_API int bftnet_connect_file(bftnet_t *b, const char *path, char *errbuf, size_t errcap) {
  if (!b || !path) return BFTNET_EINVAL;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  cmd_t c = {.run = run_connect};
  int rc = mb_table_load_file(&c.table, path, errbuf, errcap);
  if (rc < 0) return rc;
  return call(b, &c);
}

/* --------------------------------------------------- public: messaging */

BFTNET_API int bftnet_send(bftnet_t *b, const char *node_id, const void *data, size_t len) {
  if (!b || !node_id || (!data && len)) return BFTNET_EINVAL;
  if (len > b->cfg.max_message_size) return BFTNET_ETOOBIG;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = epoch_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  int rc = 0;
  msnap_t *s = snap_load(b);
  mbr_t *m = snap_find(s, node_id);
  if (!m) {
    rc = strcmp(node_id, s->self_id) == 0 ? BFTNET_EINVAL : BFTNET_ENOTFOUND;
  } else {
    rc = disp_send(&b->dctx, &m->d, data, len);
  }
  epoch_exit(b, r, &sec);
  if (rc == 0) kick_loop(b);
  return rc;
}

BFTNET_API int bftnet_broadcast(bftnet_t *b, const void *data, size_t len) {
  if (!b || (!data && len)) return BFTNET_EINVAL;
  if (len > b->cfg.max_message_size) return BFTNET_ETOOBIG;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = epoch_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  msnap_t *s = snap_load(b);
  int rc = disp_broadcast(&b->dctx, s->d, s->n, s->ver, data, len);
  epoch_exit(b, r, &sec);
  if (rc > 0) kick_loop(b);
  return rc;
}

/* Round-robin passes over the members, starting one further each call:
 * in a pass each member gives at most an equal share of what is still
 * wanted (at least one), so a chatty member cannot starve the others, and a
 * share is taken as one batch (the queue's counters move once). */
#define RECV_SCAN_CHUNK 64
static int recv_scan(bftnet_t *b, bftnet_msg_t *out, int max, bool *wake_loop) {
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = epoch_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  msnap_t *s = snap_load(b);
  int got = 0;
  if (s->n) {
    uint32_t start = ck_pr_faa_32(&b->rr, 1);
    bool progress = true;
    rx_msg_t *batch[RECV_SCAN_CHUNK];
    while (got < max && progress) {
      progress = false;
      size_t share = (size_t)(max - got) / s->n;
      if (share < 1) share = 1;
      if (share > RECV_SCAN_CHUNK) share = RECV_SCAN_CHUNK;
      for (size_t i = 0; i < s->n && got < max; i++) {
        mbr_t *m = s->m[(start + i) % s->n];
        size_t want = (size_t)(max - got) < share ? (size_t)(max - got) : share;
        unsigned k = rx_pop_batch(&m->r, batch, (unsigned)want, wake_loop);
        if (!k) continue;
        progress = true;
        for (unsigned j = 0; j < k; j++)
          out[got++] = (bftnet_msg_t){
              .from = batch[j]->from, .data = batch[j]->data, .len = batch[j]->len, .priv = batch[j]};
      }
    }
  }
  epoch_exit(b, r, &sec);
  return got;
}

BFTNET_API int bftnet_recv_batch(bftnet_t *b, bftnet_msg_t *msgs, int max, int timeout_ms) {
  if (!b || !msgs || max <= 0) return BFTNET_EINVAL;
  uint64_t deadline = timeout_ms > 0 ? bn_now_ns(bn_seam_system()) + (uint64_t)timeout_ms * 1000000ull : 0;
  for (;;) {
    bool wake = false;
    int got = recv_scan(b, msgs, max, &wake);
    if (got == 0) {
      /* Empty: clear the fd, then look once more, so that the fd is
       * readable exactly when a message may be waiting (a push after this
       * scan sets it again). */
      uint64_t v;
      (void)!read(b->efd, &v, sizeof v);
      got = recv_scan(b, msgs, max, &wake);
    }
    if (wake) uv_async_send(&b->wake); /* room freed: the loop credits the stream again */
    if (got != 0) return got;
    if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
    if (timeout_ms == 0) return BFTNET_EAGAIN;
    if (b->cfg.busy_poll_us) { /* poll the queues before sleeping */
      const bn_seam_t *seam = bn_seam_system();
      uint64_t until = bn_now_ns(seam) + (uint64_t)b->cfg.busy_poll_us * 1000u;
      if (timeout_ms > 0 && deadline < until) until = deadline;
      while (got == 0 && bn_now_ns(seam) < until && !ck_pr_load_int(&b->stopped)) {
        sched_yield();
        got = recv_scan(b, msgs, max, &wake);
      }
      if (wake) uv_async_send(&b->wake);
      if (got != 0) return got;
    }
    int wait_ms = -1;
    if (timeout_ms > 0) {
      uint64_t now = bn_now_ns(bn_seam_system());
      if (now >= deadline) return BFTNET_ETIMEDOUT;
      wait_ms = (int)((deadline - now + 999999) / 1000000);
    }
    struct pollfd p = {.fd = b->efd, .events = POLLIN};
    int pr = poll(&p, 1, wait_ms);
    if (pr < 0 && errno != EINTR) return -errno;
  }
}

BFTNET_API int bftnet_recv(bftnet_t *b, bftnet_msg_t *msg, int timeout_ms) {
  int rc = bftnet_recv_batch(b, msg, 1, timeout_ms);
  return rc == 1 ? 0 : rc;
}

BFTNET_API void bftnet_msg_release(bftnet_msg_t *msg) {
  if (!msg || !msg->priv) return;
  rx_msg_free(msg->priv);
  msg->priv = NULL;
  msg->data = NULL;
}

BFTNET_API int bftnet_recv_fd(bftnet_t *b) { return b ? b->efd : BFTNET_EINVAL; }

BFTNET_API int bftnet_peer_stats(bftnet_t *b, const char *node_id, bftnet_peer_stats_t *out) {
  if (!b || !node_id || !out) return BFTNET_EINVAL;
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = epoch_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  mbr_t *m = snap_find(snap_load(b), node_id);
  if (m) {
    *out = (bftnet_peer_stats_t){
        .migrations = ck_pr_load_64(&m->pub.migrations),
        .detached = ck_pr_load_64(&m->pub.detached),
        .resumed = ck_pr_load_64(&m->pub.resumed),
        .retransmitted = ck_pr_load_64(&m->pub.retransmitted),
        .detach_ns_last = ck_pr_load_64(&m->pub.detach_ns_last),
        .detach_ns_max = ck_pr_load_64(&m->pub.detach_ns_max),
        .peer_restarts = ck_pr_load_64(&m->pub.restarts),
    };
    disp_stats(&m->d, out);
    rx_stats(&m->r, out);
  }
  epoch_exit(b, r, &sec);
  return m ? 0 : BFTNET_ENOTFOUND;
}

/* ------------------------------------------------------- public: flush */

/* Loop-free check from the caller's thread: every ring empty, nothing held
 * by a framer and every byte written confirmed read (unconfirmed == 0). */
static bool flush_done(bftnet_t *b) {
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = epoch_enter(b, &sec);
  if (!r) return false;
  msnap_t *s = snap_load(b);
  bool done = true;
  for (size_t i = 0; i < s->n && done; i++) done = disp_idle(s->d[i]);
  epoch_exit(b, r, &sec);
  return done;
}

BFTNET_API int bftnet_flush(bftnet_t *b, int timeout_ms) {
  if (!b || timeout_ms < 0) return BFTNET_EINVAL;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  uint64_t deadline = bn_now_ns(bn_seam_system()) + (uint64_t)timeout_ms * 1000000ull;
  for (unsigned i = 0;; i++) {
    if (flush_done(b)) return 0;
    if (bn_now_ns(bn_seam_system()) >= deadline) return BFTNET_ETIMEDOUT;
    uv_async_send(&b->wake);
    struct timespec ts = {0, (i < 20 ? 1 : 10) * 1000000L};
    nanosleep(&ts, NULL);
  }
}
