/*
 * members.c — the membership: bftnet_connect diffs it (on the loop
 * thread); each member gets a Dispatcher (dispatcher/: its send ring, a
 * dialer with backoff, one outbound /bftnet/msg/1.0.0 stream) and a
 * Receiver (receiver/: deframer -> bounded inbound queue that application
 * threads drain round-robin). Authenticated non-members get a bounded
 * TentativeReceiver that a later bftnet_connect promotes. The members are
 * published in the snapshot (snapshot.c), which application threads read.
 *
 * Here too: the callback tables dispatcher/, receiver/ and migration/ call
 * up through, and the loop thread's answer to a wake.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "node_internal.h"

/* Loop thread only (it is the writer, so it reads without a section). */
static mbr_t *find_by_peer(bftnet_t *b, const peerid_t *peer) {
  msnap_t *s = b->snap;
  for (size_t i = 0; i < s->n; i++)
    if (peerid_equal(&s->m[i]->peer, peer)) return s->m[i];
  return NULL;
}

static void mbr_free(mbr_t *m);

/* ------------------------------------------------- from net/, migration/ */

void node__members_conn_event(bftnet_t *b, net_conn_t *c, bftnet_event_type_t type,
                              bftnet_reason_t reason, int err) {
  mbr_t *m = net_conn_peer(c)->len ? find_by_peer(b, net_conn_peer(c)) : NULL;
  if (type == BFTNET_EV_CONNECTED) {
    /* CONNECTED first: what the new connection leads to (a stream
     * resumed or opened: MEMBER_UP) follows it. */
    node__events_conn(b, c, type, m ? m->node_id : "", reason, err);
    mig_node_conn_up(b->ml, c);
    if (m) disp_conn_up(&m->d);
  } else {
    mig_node_conn_down(b->ml, c);
    if (m) disp_conn_down(&m->d);
    node__events_conn(b, c, type, m ? m->node_id : "", reason, err);
  }
}

const char *node__members_peer_name(bftnet_t *b, const peerid_t *peer) {
  mbr_t *m = b->snap ? find_by_peer(b, peer) : NULL;
  return m ? m->node_id : NULL;
}

/* A new incarnation of a member's peer (its old streams were aborted). */
static void mbr_restarted(void *ud, mig_peer_t *p, uint64_t inc) {
  (void)inc;
  bftnet_t *b = ud;
  mbr_t *m = mig_peer_owner(p);
  if (!m || find_by_peer(b, mig_peer_id(p)) != m) return;
  node__events_publish_stats(m);
  node__events_member(b, BFTNET_EV_PEER_RESTARTED, m, 0, BFTNET_REASON_NONE, 0);
}

/* Migration's tick: the members' health is published for other threads. */
static void on_mig_tick(void *ud) {
  node__health_publish(ud);
}

/* The peer opened a stream of one of our classes (labelled or plain; its
 * application protocol is the class): a member's Receiver or a
 * TentativeReceiver. */
static int on_stream(void *ud, mig_peer_t *lp, mig_stream_t *ls) {
  bftnet_t *b = ud;
  int cls = mig_stream_app(ls);
  if (cls < 0 || (unsigned)cls >= b->ncls) return BFTNET_EPROTO;
  mbr_t *m = find_by_peer(b, mig_peer_id(lp));
  if (!m || m->d.stopped) return rx_tent_open(&b->rctx, lp, (unsigned)cls, ls);
  mig_peer_set_owner(lp, m);
  /* an older stream of the class than the Receiver's: refused */
  int rc = rx_set_in(&m->r, (unsigned)cls, ls);
  if (rc < 0) return rc;
  disp_limit_refresh(&m->d); /* its Label said how large a message it takes */
  return 0;
}

/* ---------------------------------------------------------- from receiver/ */

/* cfg.on_message, marked as a callback: blocking calls from inside it fail
 * fast (cmd.c). */
static void on_rx_message(const char *from, const uint8_t *data, size_t len, void *user) {
  bftnet_t *b = user;
  node__cmd_cb_depth++;
  b->cfg.on_message(from, data, len, b->cfg.user);
  node__cmd_cb_depth--;
}

/* cfg.on_message_ex, marked as a callback the same way. */
static void on_rx_message_ex(const bftnet_msg_t *msg, void *user) {
  bftnet_t *b = user;
  node__cmd_cb_depth++;
  b->cfg.on_message_ex(msg, b->cfg.user);
  node__cmd_cb_depth--;
}

/* Messages were queued (once per loop turn): threads blocked in
 * bftnet_recv, or polling its fd, wake up; so do threads that wait for some
 * classes only, on those classes' fds. The queues were pushed before this
 * fence and a waiter counts itself before it looks at them: either it sees
 * the messages or this sees it waiting. */
static void on_rx_ready(void *ud, uint32_t classes) {
  bftnet_t *b = ud;
  uint64_t one = 1;
  ck_pr_fence_memory();
  if (ck_pr_load_int(&b->efd_waiters) || ck_pr_load_int(&b->efd_exported))
    (void)!write(b->efd, &one, sizeof one);
  if (!ck_pr_load_int(&b->cls_waiters)) return;
  for (unsigned c = 0; c < b->ncls; c++)
    if ((classes & (1u << c)) && b->cls_efd[c] >= 0) (void)!write(b->cls_efd[c], &one, sizeof one);
}

static void on_rx_stream_event(void *ud, mig_stream_t *ls, const mig_event_t *e) {
  node__events_stream(ud, ls, e, false, 0);
}

static const rx_cbs_t rx_cbs = {.on_ready = on_rx_ready, .on_stream_event = on_rx_stream_event};

/* -------------------------------------------------------- from dispatcher/ */

static void on_disp_member(void *ud, unsigned cls, bftnet_event_type_t type, bftnet_reason_t reason,
                           int err) {
  mbr_t *m = ud;
  node__events_member(m->b, type, m, cls, reason, err);
}

static void on_disp_stream_event(void *ud, unsigned cls, mig_stream_t *ls, const mig_event_t *e,
                                 uint64_t lost) {
  (void)cls; /* the stream's application protocol says it too */
  node__events_stream(ud, ls, e, true, lost);
}

static void on_disp_reclaimable(void *ud) {
  mbr_free(ud);
}

static void on_disp_dial_failed(void *ud, int err, const maddr_t *addr, const peerid_t *actual,
                                uint32_t failures) {
  mbr_t *m = ud;
  node__events_dial(m->b, m, err, addr, actual, failures);
}

static const disp_cbs_t disp_cbs = {.on_member = on_disp_member,
                                    .on_stream_event = on_disp_stream_event,
                                    .on_reclaimable = on_disp_reclaimable,
                                    .on_dial_failed = on_disp_dial_failed};

/* ------------------------------------------------------------- members */

static mbr_t *mbr_new(bftnet_t *b, const mb_member_t *info, uint64_t ver) {
  mbr_t *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->b = b;
  snprintf(m->node_id, sizeof m->node_id, "%s", info->node_id);
  m->peer = info->peer;
  node__health_init(&m->health);
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

/* What one bftnet_connect does to the members. */
typedef struct changes {
  mbr_t **live, **gone, **fresh; /* kept or added; removed; added */
  size_t nlive, ngone, nfresh;
  const char *self_id;
} changes_t;

/* Applies one entry of the membership diff. 0 or BFTNET_ENOMEM. */
static int apply_change(bftnet_t *b, const mb_change_t *x, changes_t *l) {
  const mb_member_t *info = x->new_m ? x->new_m : x->old_m;
  if (peerid_equal(&info->peer, net_local_id(b->net))) {
    if (x->kind != MB_REMOVED) l->self_id = x->new_m->node_id;
    return 0; /* ourselves: no Dispatcher, no Receiver */
  }
  mbr_t *m = NULL;
  for (size_t k = 0; k < l->nlive; k++)
    if (strcmp(l->live[k]->node_id, info->node_id) == 0) m = l->live[k];
  if (x->kind == MB_REMOVED && m) {
    mbr_remove(m);
    node__events_member(b, BFTNET_EV_MEMBER_REMOVED, m, 0, BFTNET_REASON_NONE, 0);
    for (size_t k = 0; k < l->nlive; k++)
      if (l->live[k] == m) l->live[k] = l->live[--l->nlive];
    l->gone[l->ngone++] = m;
  } else if (x->kind == MB_ADDED) {
    /* Broadcasts from here on that were addressed to the snapshot about
     * to be published (the next version) or a later one are its. */
    m = mbr_new(b, x->new_m, b->snap_ver + 1);
    if (!m) return BFTNET_ENOMEM;
    l->live[l->nlive++] = m;
    l->fresh[l->nfresh++] = m;
  } else if (x->kind == MB_ADDRS_CHANGED && m) {
    disp_set_addrs(&m->d, x->new_m->addrs, x->new_m->naddrs);
  }
  return 0;
}

/* The command of bftnet_connect: applies the membership diff, publishes
 * the new snapshot, then promotes, frees and dials. */
static void run_connect(bftnet_t *b, cmd_t *c) {
  mb_change_t *ch;
  size_t nch;
  int rc = mb_diff(&b->table, &c->table, &ch, &nch);
  if (rc < 0) {
    mb_table_free(&c->table);
    return node__cmd_complete(b, c, rc);
  }
  msnap_t *cur = b->snap;
  size_t cap = cur->n + c->table.n;
  changes_t l = {.live = malloc((cap ? cap : 1) * sizeof *l.live),
                 .gone = malloc((cap ? cap : 1) * sizeof *l.gone),
                 .fresh = malloc((cap ? cap : 1) * sizeof *l.fresh),
                 .self_id = ""};
  if (!l.live || !l.gone || !l.fresh) {
    rc = BFTNET_ENOMEM;
    mb_table_free(&c->table);
    goto out;
  }
  for (size_t i = 0; i < cur->n; i++)
    l.live[l.nlive++] = cur->m[i];
  for (size_t i = 0; i < nch; i++)
    if (apply_change(b, &ch[i], &l) < 0) rc = BFTNET_ENOMEM;
  int prc = node__snapshot_publish(b, l.live, l.nlive, l.self_id);
  if (prc < 0) rc = prc;
  /* Added members: promoted after publishing, so that find_by_peer sees them. */
  for (size_t i = 0; i < l.nfresh; i++) {
    mbr_t *m = l.fresh[i];
    node__events_member(b, BFTNET_EV_MEMBER_ADDED, m, 0, BFTNET_REASON_NONE, 0);
    rx_tent_promote(&b->rctx, &m->peer, &m->r);
  }
  for (size_t i = 0; i < l.ngone; i++) {
    disp_account_removed(&l.gone[i]->d);
    mbr_free(l.gone[i]);
  }
  /* Connect the new members (after publishing, so sends are already queued). */
  for (size_t i = 0; i < l.nlive; i++)
    disp_connect(&l.live[i]->d);
  mb_table_free(&b->table);
  b->table = c->table;
  c->table = (mb_table_t){0};
out:
  free(l.live);
  free(l.gone);
  free(l.fresh);
  free(ch);
  node__cmd_complete(b, c, rc);
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

void node__members_kick(void *ud) {
  members_wake(ud);
}

int node__members_init(bftnet_t *b) {
  b->efd = -1;
  for (unsigned c = 0; c < BFTNET_MAX_CLASSES; c++)
    b->cls_efd[c] = -1;
  int rc = node__snapshot_init(b);
  if (rc) return rc;
  b->pool = bn_pool_new(NODE_POOL_CACHE);
  if (!b->pool) return BFTNET_ENOMEM;
  b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (b->efd < 0) return -errno;
  /* With one class bftnet_recv_classes is bftnet_recv: no class fds. */
  for (unsigned c = 0; c < (b->ncls > 1 ? b->ncls : 0); c++) {
    b->cls_efd[c] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->cls_efd[c] < 0) return -errno;
  }
  for (unsigned i = 0; i < b->ncls; i++)
    b->classes[i] = b->cls[i].c;
  rx_config_t rc_cfg = {.max_message_size = b->cfg.max_message_size,
                        .classes = b->classes,
                        .ncls = b->ncls,
                        .tentative_max = b->cfg.tentative_max,
                        .tentative_max_msgs = b->cfg.tentative_max_msgs,
                        .tentative_max_bytes = b->cfg.tentative_max_bytes,
                        .tentative_rate = b->cfg.tentative_rate,
                        .on_message = b->cfg.on_message ? on_rx_message : NULL,
                        .on_message_ex = b->cfg.on_message_ex ? on_rx_message_ex : NULL,
                        .user = b,
                        .log = &b->log};
  rc = rx_ctx_init(&b->rctx, &rc_cfg, b->t, &b->counters, b->pool, &rx_cbs, b);
  if (rc) return rc;
  mig_config_t mc = {.detach_timeout_ns = (uint64_t)b->cfg.detach_timeout_ms * 1000000ull,
                     .failback_ns = (uint64_t)b->cfg.failback_ms * 1000000ull,
                     .window_max = node__classes_window(b),
                     .plain = b->cfg.disable_migration != 0,
                     .max_message_size = b->cfg.max_message_size,
                     .log = &b->log,
                     .apps = b->protos,
                     .napps = b->ncls};
  mig_node_cbs_t cbs = {
      .on_stream = on_stream, .on_peer_restarted = mbr_restarted, .on_tick = on_mig_tick};
  rc = mig_node_new(&b->ml, b->net, &mc, &cbs, b, &b->counters);
  if (rc) return rc;
  disp_config_t dc = {.classes = b->classes,
                      .ncls = b->ncls,
                      .min_share = b->cfg.class_min_share,
                      .paced = b->ncls > 1,
                      .backoff_min_ms = b->cfg.dial_backoff_min_ms,
                      .backoff_max_ms = b->cfg.dial_backoff_max_ms,
                      .log = &b->log};
  return disp_ctx_init(&b->dctx, &dc, b->t, b->net, b->ml, &b->counters, b->pool, &disp_cbs);
}

void node__members_stop(bftnet_t *b) {
  msnap_t *s = b->snap;
  for (size_t i = 0; s && i < s->n; i++)
    mbr_remove(s->m[i]);
  rx_ctx_stop(&b->rctx);
  mig_node_stop(b->ml);
}

void node__members_destroy(bftnet_t *b) {
  msnap_t *s = b->snap;
  for (size_t i = 0; s && i < s->n; i++)
    mbr_destroy(s->m[i]); /* no dial ends now */
  node__snapshot_destroy(b);
  mig_node_free(b->ml);
  b->ml = NULL;
  mb_table_free(&b->table);
  if (b->efd >= 0) close(b->efd);
  b->efd = -1;
  for (unsigned c = 0; c < BFTNET_MAX_CLASSES; c++) {
    if (b->cls_efd[c] >= 0) close(b->cls_efd[c]);
    b->cls_efd[c] = -1;
  }
  disp_ctx_destroy(&b->dctx); /* after every framer let go of the log's entries */
  bn_pool_close(b->pool);     /* lives on while the application holds messages */
  b->pool = NULL;
}

/* ------------------------------------------------------- public: connect */

/* The checks both forms start with. */
static int connect_begin(bftnet_t *b, char *errbuf, size_t errcap) {
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  if (node__cmd_in_callback(b)) {
    node_errf(errbuf, errcap, "a blocking call inside a loop callback of the same node");
    return BFTNET_EINCALLBACK;
  }
  return 0;
}

/* Runs a validated membership; a command that never ran (the loop ended)
 * leaves its table to free here. */
static int connect_run(bftnet_t *b, cmd_t *c) {
  int rc = node__cmd_call(b, c);
  if (!c->done) mb_table_free(&c->table);
  return rc;
}

BFTNET_API int bftnet_connect(bftnet_t *b, const bftnet_member_t *members, size_t n, char *errbuf,
                              size_t errcap) {
  if (!b || (!members && n)) return BFTNET_EINVAL;
  int rc = connect_begin(b, errbuf, errcap);
  if (rc < 0) return rc;
  cmd_t c = {.run = run_connect};
  rc = mb_table_build(&c.table, members, n, errbuf, errcap); /* validate off the loop */
  if (rc < 0) return rc;
  return connect_run(b, &c);
}

BFTNET_API int bftnet_connect_file(bftnet_t *b, const char *path, char *errbuf, size_t errcap) {
  if (!b || !path) return BFTNET_EINVAL;
  int rc = connect_begin(b, errbuf, errcap);
  if (rc < 0) return rc;
  cmd_t c = {.run = run_connect};
  rc = mb_table_load_file(&c.table, path, errbuf, errcap);
  if (rc < 0) return rc;
  return connect_run(b, &c);
}
