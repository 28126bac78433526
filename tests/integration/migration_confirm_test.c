/*
 * migration_confirm_test.c — confirmations (docs/PROTOCOL.md §11.12) and
 * GO_AWAY (§5.4) against a REAL bftnet node.
 *
 * r0 is a bftnet node on the public API, on its own loop thread, with
 * membership {r0, r1}. "r1" is a hand-made peer on net_t on this thread's
 * loop (it holds r1's key): it reads r0's labelled stream, credits it the
 * way a stock yamux may (window growth: WINDOW_UPDATE frames beyond what it
 * read), and confirms with Confirm messages only when the test says so. It
 * reads every frame r0 sends it (GO_AWAY included) through its sessions.
 *
 *  1. Window updates alone never free r0's window: after any amount of
 *     credit, growth included, r0 still holds every byte unconfirmed, counts
 *     no violation and bftnet_flush does not complete. A Confirm then frees
 *     exactly what it names; a stale one changes nothing; one naming an old
 *     ID of the stream (after a migration) works; one beyond what r0 sent is
 *     counted (mig_bad_confirm) and aborts that stream only: the peer's own
 *     stream to r0 goes on delivering, in order, and r0 opens a new one.
 *  2. An older peer (it answers na to the confirmation stream): counted once
 *     (mig_legacy_peers) and confirmed from its yamux credit, as before.
 *  3. GO_AWAY code 0 reaches the peer before the connection ends, when r0
 *     stops (bftnet_free) and when r0 closes an emptied duplicate.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "harness.h"
#include "mig_core.h"
#include "net_internal.h"
#include "th_node.h"

#define MSG_PROTO     "/bftnet/msg/1.0.0"
#define INNER_NEG_LEN 39u /* ms("/multistream/1.0.0") ms("/bftnet/msg/1.0.0") */
#define MAXPS         64

/* ----------------------------------------------------------- r0 */

static th_evrec_t EV = TH_EVREC_INIT; /* r0's events */

/* r0's events of type (outbound -1: either) so far; *last: the last one. */
static int ev_count(bftnet_event_type_t type, int outbound, th_ev_t *last) {
  if (last) (void)th_evrec_find(&EV, 0, type, outbound, true, last);
  return th_evrec_count(&EV, 0, type, outbound);
}

static struct {
  bftnet_key_t *key;
  bftnet_t *net;
  char addr[BFTNET_ADDR_MAX];
  uint64_t send_seq;
} R0;

/* ----------------------------------------------------------- the peer */

typedef struct pstream {
  net_stream_t *s;
  net_conn_t *conn;
  bool accepted, ready, fin_in, freed;
  int err;
  bool expect_msg, have_msg;
  mig_msg_t msg;
  bn_buf_t rx;
  uint64_t l_start; /* L offset of the first L byte on it */
  uint64_t l_in;    /* L bytes read on it */
} pstream_t;

static struct {
  th_peer_t h; /* its net_t, key, loop, and first failure */
  net_conn_t *conns[8];
  int nconns, downs;
  int goaways, goaways_before_down;
  uint32_t goaway_code;
  pstream_t ps[MAXPS];
  int nps;
  pstream_t *r0out; /* the carrier of r0's stream the peer reads now */
  int n_r0out;
  int ctl_in; /* confirmation streams r0 opened to us */
  /* r0's logical stream to us, assembled by offset */
  uint64_t l_id;    /* its ID when first labelled */
  bn_buf_t l;       /* its bytes from offset 0 */
  size_t l_pos;     /* parsed up to here */
  uint64_t r0_last; /* the last message received from r0 (any of its streams) */
  bool fresh;       /* a new stream of r0's: its first message may skip ahead */
} P;

#define peer_fail(...) th_peer_fail(&P.h, __VA_ARGS__)

static void assert_peer_ok(void) {
  th_peer_assert_ok(&P.h);
}

/* The L bytes of r0's stream that start at offset `at`: duplicates of what
 * was read are skipped, a gap is a failure; then the messages are checked. */
static void l_put(uint64_t at, const uint8_t *p, size_t n) {
  if (at > P.l.len)
    return peer_fail("gap in r0's stream at %llu (have %zu)", (unsigned long long)at, P.l.len);
  uint64_t dup = P.l.len - at;
  if (dup >= n) return;
  if (bn_buf_append(&P.l, p + dup, n - (size_t)dup) != 0) abort();
  if (P.l_pos < INNER_NEG_LEN) {
    if (P.l.len < INNER_NEG_LEN) return;
    P.l_pos = INNER_NEG_LEN; /* the inner negotiation (§11.2) */
  }
  for (;;) {
    const uint8_t *body;
    size_t blen;
    int rc = lp_next(P.l.data + P.l_pos, P.l.len - P.l_pos, 1u << 20, &body, &blen);
    if (rc == 0) return;
    uint64_t seq = 0;
    for (size_t i = 0; rc > 0 && i < 8 && i < blen; i++)
      seq = seq << 8 | body[i];
    /* In order, none twice; a stream r0 opened after an abort may start
     * later (what the abort lost was counted by r0). */
    bool ok = rc > 0 && th_msg_check(body, blen, seq) &&
              (seq == P.r0_last + 1 || (P.fresh && seq > P.r0_last));
    if (!ok)
      return peer_fail("r0 -> r1: message %llu after %llu (loss, duplicate or reorder)",
                       (unsigned long long)seq, (unsigned long long)P.r0_last);
    P.r0_last = seq;
    P.fresh = false;
    P.l_pos += (size_t)rc;
  }
}

static void ps_write(pstream_t *ps, const uint8_t *p, size_t n) {
  if (!ps->s) return peer_fail("write on a stream that is gone");
  int k = net_stream_write(ps->s, p, n);
  if (k < 0 || (size_t)k != n) peer_fail("short write (%d of %zu)", k, n);
}

static void ps_send_msg(pstream_t *ps, const mig_msg_t *m) {
  bn_buf_t b;
  bn_buf_init(&b);
  if (mig_msg_encode(m, &b) != 0) abort();
  ps_write(ps, b.data, b.len);
  bn_buf_free(&b);
}

static void ps_parse(pstream_t *ps) {
  if (ps->expect_msg && !ps->have_msg) {
    int rc = mig_msg_decode(ps->rx.data, ps->rx.len, &ps->msg);
    if (rc < 0) return peer_fail("undecodable StreamMigration from r0");
    if (rc == 0) return;
    ps->have_msg = true;
    bn_buf_consume(&ps->rx, (size_t)rc);
    if (ps->accepted && ps->msg.type == MIG_MSG_LABEL) {
      /* r0's stream to us: answer the inner negotiation (§11.2). */
      P.r0out = ps;
      P.n_r0out++;
      if (!P.l_id) P.l_id = ps->msg.id;
      bn_buf_reset(&P.l);
      P.l_pos = 0;
      P.fresh = P.n_r0out > 1;
      ps->l_start = 0;
      bn_buf_t b;
      bn_buf_init(&b);
      if (ms_append(&b, MS_PROTO_ID) != 0 || ms_append(&b, MSG_PROTO) != 0) abort();
      ps_write(ps, b.data, b.len);
      bn_buf_free(&b);
    }
  }
  if (ps->expect_msg && !ps->have_msg) return;
  if (ps == P.r0out || (ps->have_msg && ps->msg.type == MIG_MSG_ACK && !ps->msg.deny)) {
    size_t n = bn_buf_unread(&ps->rx);
    l_put(ps->l_start + ps->l_in, bn_buf_head(&ps->rx), n);
    ps->l_in += n;
    bn_buf_consume(&ps->rx, n);
  }
}

static void ps_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  pstream_t *ps = ud;
  if (bn_buf_append(&ps->rx, p, n) != 0) abort();
  net_stream_credit(s, n, true); /* read, credited at once */
  ps_parse(ps);
}

static void ps_ready(void *ud, net_stream_t *s) {
  (void)s;
  ((pstream_t *)ud)->ready = true;
}
static void ps_fin(void *ud, net_stream_t *s) {
  pstream_t *ps = ud;
  ps->fin_in = true;
  (void)net_stream_close(s);
}
static void ps_error(void *ud, net_stream_t *s, int err) {
  (void)s;
  ((pstream_t *)ud)->err = err;
}
static void ps_free(void *ud, net_stream_t *s) {
  (void)s;
  pstream_t *ps = ud;
  ps->s = NULL;
  ps->freed = true;
}
static const net_stream_cbs_t ps_cbs = {.on_ready = ps_ready,
                                        .on_data = ps_data,
                                        .on_fin = ps_fin,
                                        .on_error = ps_error,
                                        .on_free = ps_free};

static pstream_t *ps_alloc(void) {
  if (P.nps >= MAXPS) abort();
  pstream_t *ps = &P.ps[P.nps++];
  memset(ps, 0, sizeof *ps);
  bn_buf_init(&ps->rx);
  return ps;
}

static int p_on_mig_open(void *ud, net_conn_t *c, net_stream_t *s) {
  (void)ud;
  pstream_t *ps = ps_alloc();
  ps->s = s;
  ps->conn = c;
  ps->accepted = ps->expect_msg = ps->ready = true;
  net_stream_set_cbs(s, &ps_cbs, ps);
  return 0;
}

/* r0's confirmation streams: it confirms nothing here (we write nothing
 * on r0's stream), so only their count is kept. */
static void ctl_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  (void)ud;
  (void)p;
  net_stream_consume(s, n);
}
static const net_stream_cbs_t ctl_cbs = {.on_data = ctl_data};

static int p_on_ctl_open(void *ud, net_conn_t *c, net_stream_t *s) {
  (void)ud;
  (void)c;
  P.ctl_in++;
  net_stream_set_cbs(s, &ctl_cbs, NULL);
  return 0;
}

static void p_goaway(void *ud, uint32_t code) {
  (void)ud;
  P.goaways++;
  P.goaway_code = code;
}

static void p_conn_up(void *ud, net_conn_t *c) {
  (void)ud;
  if (P.nconns < 8) P.conns[P.nconns++] = c;
}

static void p_conn_down(void *ud, net_conn_t *c, bftnet_reason_t reason, int err) {
  (void)ud;
  (void)reason;
  (void)err;
  if (P.goaways > P.downs) P.goaways_before_down++;
  P.downs++;
  for (int i = 0; i < P.nconns; i++)
    if (P.conns[i] == c) P.conns[i] = P.conns[--P.nconns];
}

/* --------------------------------------------------------- the loop */

static bool run_until(bool (*pred)(void *), void *arg, uint64_t timeout_ms) {
  return th_run_ticking(&P.h.loop, pred, arg, timeout_ms);
}

static void pump(uint64_t ms) {
  th_pump(&P.h.loop, ms);
}

/* A WINDOW_UPDATE of delta on ps's yamux stream, written raw: what a stock
 * yamux sends when it grows its receive window (more than it read). */
static void inject_window_update(pstream_t *ps, uint32_t delta) {
  uint8_t h[BN_YAMUX_HEADER] = {0, YAMUX_TYPE_WINDOW, 0, 0};
  bn_store_be32(h + 4, yamux_stream_id(ps->s->ys));
  bn_store_be32(h + 8, delta);
  net__conn_out_secure(ps->conn, h, sizeof h, NULL, 0);
}

/* Our confirmation stream on c, started (ConfirmStart written). */
static pstream_t *ctl_open(net_conn_t *c) {
  pstream_t *k = ps_alloc();
  k->conn = c;
  assert_ok(net_stream_open(c, MIG_CONFIRM_PROTO_ID, &ps_cbs, k, &k->s));
  mig_msg_t m = {.type = MIG_MSG_CONFIRM_START, .has_incarnation = true, .incarnation = P.h.inc};
  ps_send_msg(k, &m);
  return k;
}

static void confirm(pstream_t *k, uint64_t id, uint64_t off) {
  mig_msg_t m = {.type = MIG_MSG_CONFIRM, .id = id, .has_read_offset = true, .read_offset = off};
  ps_send_msg(k, &m);
}

/* -------------------------------------------------------- r0's side */

static void r0_send(int n) {
  th_bnode_send(R0.net, "r1", &R0.send_seq, n);
}

static bftnet_peer_stats_t r0_stats(void) {
  return th_bnode_stats(R0.net, "r1");
}

/* r0's unconfirmed bytes once its loop refreshed them (a flush wakes it). */
static uint64_t r0_unconfirmed_settled(uint64_t want) {
  bftnet_peer_stats_t st = r0_stats();
  for (int i = 0; i < 500 && st.unconfirmed != want; i++) {
    pump(2);
    if (bftnet_flush(R0.net, 1) != 0) { /* not yet: the loop below retries */
    }
    st = r0_stats();
  }
  return st.unconfirmed;
}

static bool pred_r0_msgs(void *a) {
  return P.h.failed || P.r0_last >= *(uint64_t *)a;
}

static void expect_peer_gets_all(const char *what) {
  uint64_t want = R0.send_seq - 1;
  if (!run_until(pred_r0_msgs, &want, 5000))
    fail_msg("%s: the peer got up to %llu of r0's %llu messages", what,
             (unsigned long long)P.r0_last, (unsigned long long)want);
  assert_peer_ok();
}

static uint64_t counter(bftnet_counter_id_t id) {
  return bftnet_counter(R0.net, id);
}

/* ------------------------------------------------------- the fixture */

static bool pred_setup(void *a) {
  (void)a;
  return P.h.failed || (P.nconns >= 1 && P.r0out && P.r0out->have_msg && P.l.len >= INNER_NEG_LEN);
}

static void dial_cb(void *ud, net_conn_t *c, int err) {
  (void)c;
  *(int *)ud = err ? err : 1;
}

static bool pred_int(void *a) {
  return *(int *)a != 0;
}

/* r0 and the peer; lead: which of the two leads the pair. speak: the
 * peer handles the confirmation protocol (else it is an older peer and
 * answers na). r0 dials the peer's listener unless peer_dials. */
static void fx_start(th_lead_t lead, bool speak, bool peer_dials) {
  memset(&P, 0, sizeof P);
  memset(&R0, 0, sizeof R0);
  th_evrec_clear(&EV);
  R0.send_seq = 1;
  bn_buf_init(&P.l);
  assert_ok(bftnet_key_generate(&R0.key));
  net_cbs_t cbs = {.on_conn_up = p_conn_up, .on_conn_down = p_conn_down};
  assert_ok(th_peer_start(&P.h, R0.key, lead, &cbs, &P));
  P.h.net->hooks.ymx.on_goaway = p_goaway; /* every frame r0 sends is read here */
  assert_ok(net_handle(P.h.net, MIG_PROTO_ID, p_on_mig_open, &P));
  if (speak) assert_ok(net_handle(P.h.net, MIG_CONFIRM_PROTO_ID, p_on_ctl_open, &P));

  bftnet_config_t cfg;
  th_bnode_config(&cfg, R0.key, &EV);
  assert_ok(th_bnode_start(&R0.net, &cfg, R0.addr, sizeof R0.addr));
  if (peer_dials) { /* r0 knows no address of ours it can dial yet */
    char dead[BFTNET_ADDR_MAX];
    snprintf(dead, sizeof dead, "/ip4/127.0.0.1/tcp/1/p2p/%s", P.h.id);
    th_bnode_connect_pair(R0.net, R0.addr, dead);
    int rc = th_peer_dial(&P.h, R0.addr, 5000);
    if (rc) fail_msg("peer: dial to r0 failed: %s", bftnet_err_name(rc));
  } else {
    th_bnode_connect_pair(R0.net, R0.addr, P.h.addr);
  }
  if (!run_until(pred_setup, NULL, 8000)) fail_msg("setup: no labelled stream from r0");
  assert_peer_ok();
}

static int fx_teardown(void **state) {
  (void)state;
  if (!P.h.started) return 0;
  int rc = th_node_peer_finish(&R0.net, &R0.key, &P.h);
  for (int i = 0; i < P.nps; i++)
    bn_buf_free(&P.ps[i].rx);
  bn_buf_free(&P.l);
  assert_int_equal(rc, 0);
  return 0;
}

static bool pred_ctl(void *a) {
  (void)a;
  return P.ctl_in >= 1;
}

/* ============================== 1: window updates never confirm; Confirms do */

static void test_window_updates_alone_never_free_the_window(void **state) {
  (void)state;
  fx_start(TH_LEAD_ANY, true, false);
  if (!run_until(pred_ctl, NULL, 3000)) fail_msg("r0 opened no confirmation stream");
  net_conn_t *c = P.conns[0];
  pstream_t *out = P.r0out;
  r0_send(50);
  expect_peer_gets_all("50 messages");
  /* Everything read was credited; now grow the window like a stock yamux:
   * far more credit than r0 ever sent on that stream. */
  for (int i = 0; i < 4; i++)
    inject_window_update(out, 1u << 20);
  pump(50);
  /* r0 counts its application bytes: L's less the inner negotiation. */
  uint64_t written = P.l.len - INNER_NEG_LEN;
  assert_int_equal(r0_unconfirmed_settled(written), written);
  assert_int_equal(counter(BFTNET_COUNTER_MIG_BAD_CREDIT), 0);
  assert_int_equal(counter(BFTNET_COUNTER_MIG_ABORTED), 0);
  assert_err(bftnet_flush(R0.net, 300), BFTNET_ETIMEDOUT); /* nothing confirmed */

  /* A Confirm frees exactly what it names. */
  pstream_t *k = ctl_open(c);
  confirm(k, out->msg.id, INNER_NEG_LEN + 100); /* L offsets */
  pump(20);
  assert_int_equal(r0_unconfirmed_settled(written - 100), written - 100);
  confirm(k, out->msg.id, INNER_NEG_LEN + 60); /* stale: nothing */
  pump(20);
  assert_int_equal(r0_unconfirmed_settled(written - 100), written - 100);
  confirm(k, out->msg.id, P.l.len); /* everything */
  pump(20);
  assert_int_equal(r0_unconfirmed_settled(0), 0);
  assert_ok(bftnet_flush(R0.net, 2000));
  assert_int_equal(counter(BFTNET_COUNTER_MIG_BAD_CONFIRM), 0);
  assert_int_equal(counter(BFTNET_COUNTER_MIG_LEGACY_PEERS), 0);
  assert_peer_ok();
}

/* ============================== 1b: a Confirm beyond what was sent */

static bool pred_n_r0out(void *a) {
  return P.h.failed || P.n_r0out >= *(int *)a;
}
static bool pred_err(void *a) {
  return ((pstream_t *)a)->err != 0;
}

static void test_confirm_beyond_written_aborts_that_stream_only(void **state) {
  (void)state;
  fx_start(TH_LEAD_ANY, true, false);
  net_conn_t *c = P.conns[0];
  pstream_t *out = P.r0out;
  uint64_t out_id = out->msg.id;
  /* The peer's own labelled stream to r0, which must live on. */
  pstream_t *mine = ps_alloc();
  mine->conn = c;
  assert_ok(net_stream_open(c, MIG_PROTO_ID, &ps_cbs, mine, &mine->s));
  mig_msg_t lab = {.type = MIG_MSG_LABEL,
                   .id = th_peer_next_id(&P.h),
                   .has_incarnation = true,
                   .incarnation = P.h.inc};
  ps_send_msg(mine, &lab);
  bn_buf_t b;
  bn_buf_init(&b);
  assert_ok(ms_append(&b, MS_PROTO_ID));
  assert_ok(ms_append(&b, MSG_PROTO));
  uint64_t seq = 1;
  uint8_t buf[64];
  for (; seq <= 20; seq++) {
    th_msg_fill(buf, seq);
    assert_ok(lp_append(&b, buf, th_msg_len(seq)));
  }
  ps_write(mine, b.data, b.len);
  bn_buf_reset(&b);
  r0_send(30);
  expect_peer_gets_all("30 messages");
  pstream_t *k = ctl_open(c);
  confirm(k, out_id, P.l.len + 1000); /* beyond anything r0 sent */
  if (!run_until(pred_err, out, 3000)) fail_msg("r0 did not reset the stream");
  assert_int_equal(out->err, BFTNET_ERESET);
  int two = 2;
  if (!run_until(pred_n_r0out, &two, 3000)) fail_msg("r0 opened no new stream");
  th_ev_t ev;
  for (int i = 0; i < 200 && ev_count(BFTNET_EV_ABORTED, 1, &ev) == 0; i++)
    pump(5);
  assert_int_equal(ev_count(BFTNET_EV_ABORTED, 1, &ev), 1);
  assert_string_equal(ev.abort, "bad_confirm");
  assert_true(ev.stream_id == out_id);
  assert_int_equal(counter(BFTNET_COUNTER_MIG_BAD_CONFIRM), 1);
  assert_int_equal(counter(BFTNET_COUNTER_MIG_ABORTED), 1);
  assert_int_equal(ev_count(BFTNET_EV_ABORTED, 0, NULL), 0); /* the peer's stream lives */
  /* The peer's stream keeps delivering, in order, on the same connection. */
  for (; seq <= 40; seq++) {
    th_msg_fill(buf, seq);
    assert_ok(lp_append(&b, buf, th_msg_len(seq)));
  }
  ps_write(mine, b.data, b.len);
  bn_buf_free(&b);
  uint64_t got = 0, deadline = th_mono_ns() + 5000000000ull;
  while (got < 40 && th_mono_ns() < deadline) {
    pump(2);
    bftnet_msg_t msg;
    while (bftnet_recv(R0.net, &msg, 0) == 0) {
      if (!th_msg_check(msg.data, msg.len, got + 1))
        fail_msg("r0 delivered a wrong message %llu", (unsigned long long)got + 1);
      got++;
      bftnet_msg_release(&msg);
    }
  }
  assert_int_equal(got, 40);
  assert_int_equal(mine->err, 0);
  assert_int_equal(P.downs, 0);
  /* And r0's new stream works. */
  r0_send(10);
  expect_peer_gets_all("r0's new stream");
  assert_peer_ok();
}

/* ============================== 1c: a Confirm naming an old ID of L */

static void test_confirm_by_alias_after_migration(void **state) {
  (void)state;
  fx_start(TH_LEAD_PEER, true, false); /* the peer leads: it migrates r0's stream */
  net_conn_t *c = P.conns[0];
  pstream_t *old = P.r0out;
  uint64_t old_id = old->msg.id;
  r0_send(20);
  expect_peer_gets_all("before the migration");
  /* Migrate r0's stream to a new carrier on the same connection. */
  pstream_t *nw = ps_alloc();
  nw->conn = c;
  nw->expect_msg = true;
  assert_ok(net_stream_open(c, MIG_PROTO_ID, &ps_cbs, nw, &nw->s));
  uint64_t new_id = th_peer_next_id(&P.h);
  mig_msg_t mg = {.type = MIG_MSG_MIGRATE,
                  .id = new_id,
                  .from = old_id,
                  .has_incarnation = true,
                  .incarnation = P.h.inc,
                  .has_read_offset = true,
                  .read_offset = P.l.len};
  nw->l_start = P.l.len;
  ps_send_msg(nw, &mg);
  for (int i = 0; i < 2000 && !nw->have_msg && !P.h.failed; i++)
    pump(1);
  assert_true(nw->have_msg);
  assert_int_equal(nw->msg.type, MIG_MSG_ACK);
  assert_false(nw->msg.deny);
  assert_int_equal(nw->msg.read_offset, INNER_NEG_LEN); /* r0 read our inner echo */
  (void)net_stream_close(old->s);                       /* the handover: FIN on the old carrier */
  P.r0out = nw;
  r0_send(20);
  expect_peer_gets_all("after the migration");
  /* r0 confirmed nothing beyond the Migrate's offset; a Confirm naming the
   * stream by its first ID (an alias now) frees the rest. */
  pstream_t *k = ctl_open(c);
  confirm(k, old_id, P.l.len);
  pump(20);
  assert_int_equal(r0_unconfirmed_settled(0), 0);
  assert_ok(bftnet_flush(R0.net, 2000));
  th_ev_t ev;
  assert_int_equal(ev_count(BFTNET_EV_MIGRATED, 1, &ev), 1);
  assert_true(ev.stream_id == new_id);
  assert_int_equal(counter(BFTNET_COUNTER_MIG_ABORTED), 0);
  assert_peer_ok();
}

/* ============================== 2: an older peer */

static void test_older_peer_confirms_with_window_updates(void **state) {
  (void)state;
  fx_start(TH_LEAD_ANY, false, false); /* answers na to the confirmation stream */
  r0_send(40);
  expect_peer_gets_all("40 messages");
  /* Its credit (it credits what it read) confirms, as before. */
  assert_int_equal(r0_unconfirmed_settled(0), 0);
  assert_ok(bftnet_flush(R0.net, 2000));
  assert_int_equal(counter(BFTNET_COUNTER_MIG_LEGACY_PEERS), 1);
  assert_int_equal(counter(BFTNET_COUNTER_MIG_ABORTED), 0);
  assert_peer_ok();
}

/* ============================== 3: GO_AWAY */

static bool pred_down(void *a) {
  return P.downs >= *(int *)a;
}

static void test_stop_sends_goaway(void **state) {
  (void)state;
  fx_start(TH_LEAD_ANY, true, false);
  assert_int_equal(P.goaways, 0);
  bftnet_free(R0.net);
  R0.net = NULL;
  int one = 1;
  if (!run_until(pred_down, &one, 3000)) fail_msg("the connection did not end");
  assert_int_equal(P.goaways, 1);
  assert_int_equal(P.goaway_code, YAMUX_GOAWAY_NORMAL);
  assert_int_equal(P.goaways_before_down, 1); /* read before the connection ended */
}

static void test_duplicate_close_sends_goaway(void **state) {
  (void)state;
  /* r0 leads and dials; the peer dials too: r0 keeps its own outbound
   * connection and closes the peer's once it carried nothing for a while. */
  fx_start(TH_LEAD_NODE, true, false);
  maddr_t m;
  char e[128];
  assert_ok(maddr_parse(R0.addr, &m, e, sizeof e));
  int done = 0;
  assert_ok(net_dial_fresh(P.h.net, &m, dial_cb, &done));
  if (!run_until(pred_int, &done, 5000) || done != 1) fail_msg("peer: second dial failed");
  int one = 1;
  if (!run_until(pred_down, &one, 3000)) fail_msg("r0 did not close the duplicate");
  assert_int_equal(P.goaways, 1);
  assert_int_equal(P.goaway_code, YAMUX_GOAWAY_NORMAL);
  assert_int_equal(P.goaways_before_down, 1);
  assert_int_equal(P.nconns, 1); /* the kept one lives */
  assert_int_equal(counter(BFTNET_COUNTER_MIG_CONN_CLOSED_EMPTY), 1);
  r0_send(10);
  expect_peer_gets_all("after the duplicate closed");
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* the peer's net runs on this thread */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_window_updates_alone_never_free_the_window, fx_teardown),
      cmocka_unit_test_teardown(test_confirm_beyond_written_aborts_that_stream_only, fx_teardown),
      cmocka_unit_test_teardown(test_confirm_by_alias_after_migration, fx_teardown),
      cmocka_unit_test_teardown(test_older_peer_confirms_with_window_updates, fx_teardown),
      cmocka_unit_test_teardown(test_stop_sends_goaway, fx_teardown),
      cmocka_unit_test_teardown(test_duplicate_close_sends_goaway, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
