/*
 * Two (or three) real nodes on 127.0.0.1, one libuv loop: the secure-link
 * invariants of docs/ARCHITECTURE.md — authenticated peers, intact ordered bytes on
 * many yamux streams, flow control that bounds memory, FIN/RST semantics,
 * and bad input that closes only its own connection with a counted reason;
 * and a paced connection (traffic classes): pieces, the slack, parked
 * streams going on by priority.
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness.h"
#include "net_internal.h"
#include "th_net.h"

typedef th_pair_t fx_t;

/* Node a paces its connections (traffic classes: NET_PACE_PIECE, parked
 * streams by priority); b is as usual. */
static int setup_paced(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  net_config_t paced;
  th_net_config(&paced);
  paced.paced = true;
  paced.notsent_lowat = 16 * 1024;
  assert_ok(th_pair_init(f, &paced, NULL));
  *state = f;
  return 0;
}

static net_conn_t *connect_ab(fx_t *f) {
  int err;
  net_conn_t *c = th_dial(&f->loop, f->a.net, f->b.addr, &err, 10000);
  if (!c) fail_msg("dial: %s", bftnet_strerror(err));
  return c;
}

/* ------------------------------------------------------------ handshake */

static bool both_up(void *arg) {
  fx_t *f = arg;
  return f->a.ups >= 2 && f->b.ups >= 2;
}

static void test_handshake_both_ways(void **state) {
  fx_t *f = *state;
  net_conn_t *ab = connect_ab(f);
  int err;
  /* Without /p2p the dial can't know whom it reaches: a second connection. */
  char bare[BFTNET_ADDR_MAX];
  snprintf(bare, sizeof bare, "%.*s", (int)(strstr(f->a.addr, "/p2p/") - f->a.addr), f->a.addr);
  net_conn_t *ba = th_dial(&f->loop, f->b.net, bare, &err, 10000);
  assert_non_null(ba);
  assert_true(th_run_until_fn(&f->loop, both_up, f, 5000));
  char id[BFTNET_PEER_ID_MAX];
  peerid_to_string(net_conn_peer(ab), id, sizeof id);
  assert_string_equal(id, f->b.id); /* authenticated identity, not the address */
  peerid_to_string(net_conn_peer(ba), id, sizeof id);
  assert_string_equal(id, f->a.id);
  assert_true(net_conn_outbound(ab));
  /* One that names the peer reuses a connection that is up. */
  net_conn_t *again = th_dial(&f->loop, f->a.net, f->b.addr, &err, 5000);
  assert_non_null(again);
  assert_int_equal(bn_counter_get(&f->a.ctr, BFTNET_COUNTER_CONN_ESTABLISHED), 2);
}

/* ------------------------------------------------------------- streams */

#ifndef NSTREAMS
#define NSTREAMS 128
#endif

typedef struct many {
  th_echo_client_t ec[2 * NSTREAMS];
  uint8_t *data[2 * NSTREAMS];
} many_t;

static bool all_done(void *arg) {
  many_t *m = arg;
  for (int i = 0; i < 2 * NSTREAMS; i++)
    if (!m->ec[i].done) return false;
  return true;
}

static void test_many_streams_both_ways(void **state) {
  fx_t *f = *state;
  net_conn_t *ab = connect_ab(f);
  net_conn_t *ba = net_find_conn(f->b.net, net_local_id(f->a.net));
  assert_non_null(ba); /* the same connection, seen from B */
  bn_seam_sim_t sim;
  bn_seam_sim_init(&sim, th_seed());
  many_t *m = calloc(1, sizeof *m);
  size_t total = 0;
  for (int i = 0; i < 2 * NSTREAMS; i++) {
    size_t len = 1 + bn_random_uniform(&sim.seam, 96 * 1024);
    m->data[i] = malloc(len);
    bn_random(&sim.seam, m->data[i], len);
    total += len;
    assert_ok(th_echo_start(i < NSTREAMS ? ab : ba, &m->ec[i], m->data[i], len));
  }
  assert_true(th_run_until_fn(&f->loop, all_done, m, 60000));
  for (int i = 0; i < 2 * NSTREAMS; i++) {
    if (m->ec[i].err || m->ec[i].mismatch)
      fail_msg("stream %d: err %s mismatch %d (%zu/%zu)", i, bftnet_err_name(m->ec[i].err),
               m->ec[i].mismatch, m->ec[i].recvd, m->ec[i].len);
    free(m->data[i]);
  }
  print_message("echoed %zu bytes on %d streams\n", total, 2 * NSTREAMS);
  assert_true(bn_counter_get(&f->a.ctr, BFTNET_COUNTER_STREAMS_OPENED) >= NSTREAMS);
  assert_int_equal(bn_counter_get(&f->a.ctr, BFTNET_COUNTER_BAD_YAMUX), 0);
  free(m);
}

/* --------------------------------------------------------- backpressure */

typedef struct sink {
  net_stream_t *s;
  size_t received;
  bool consume;
  bool fin;
} sink_t;

static sink_t g_sink;

static void sink_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  (void)p;
  sink_t *k = ud;
  k->s = s;
  k->received += n;
  if (k->consume) net_stream_consume(s, n);
}
static void sink_fin(void *ud, net_stream_t *s) {
  ((sink_t *)ud)->fin = true;
  net_stream_close(s);
}
static const net_stream_cbs_t sink_cbs = {.on_data = sink_data, .on_fin = sink_fin};
static int sink_open(void *ud, net_conn_t *c, net_stream_t *s) {
  (void)c;
  net_stream_set_cbs(s, &sink_cbs, ud);
  ((sink_t *)ud)->s = s;
  return 0;
}

typedef struct writer {
  net_stream_t *s;
  size_t written, target;
  int writable_events;
  bool ready;
} writer_t;

static void writer_pump(writer_t *w) {
  static uint8_t chunk[32 * 1024];
  while (w->written < w->target) {
    int n = net_stream_write(w->s, chunk, BN_MIN(sizeof chunk, w->target - w->written));
    if (n <= 0) return;
    w->written += (size_t)n;
  }
}
static void writer_writable(void *ud, net_stream_t *s) {
  (void)s;
  writer_t *w = ud;
  w->writable_events++;
  writer_pump(w);
}
static void writer_ready(void *ud, net_stream_t *s) {
  (void)s;
  ((writer_t *)ud)->ready = true;
}
static const net_stream_cbs_t writer_cbs = {.on_ready = writer_ready,
                                            .on_writable = writer_writable};

static bool sink_has(void *arg) {
  return g_sink.received >= *(size_t *)arg;
}

static void test_reader_that_never_reads(void **state) {
  fx_t *f = *state;
  memset(&g_sink, 0, sizeof g_sink);
  assert_ok(net_handle(f->b.net, "/test/sink", sink_open, &g_sink));
  net_conn_t *ab = connect_ab(f);
  writer_t w = {.target = 8u * 1024 * 1024};
  assert_ok(net_stream_open(ab, "/test/sink", &writer_cbs, &w, &w.s));
  writer_pump(&w);
  /* The window B grants is 256 KiB: A can never get more than that out,
   * however long it tries, and nothing piles up on A's side. */
  size_t window = 256 * 1024;
  size_t proposal = 32; /* multistream bytes ride the same window */
  uv_run(&f->loop, UV_RUN_NOWAIT);
  for (int i = 0; i < 200; i++)
    uv_run(&f->loop, UV_RUN_NOWAIT);
  size_t want = window - proposal;
  assert_true(th_run_until_fn(&f->loop, sink_has, &want, 5000));
  for (int i = 0; i < 200; i++)
    uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_true(w.written <= window);
  assert_true(g_sink.received <= window);
  assert_int_equal(net_stream_write(w.s, (const uint8_t *)"x", 1), 0); /* held, not queued */
  assert_true(bn_buf_unread(&ab->out) == 0);
  assert_true(f->t->ops->write_queued(ab->sock) == 0);
  /* Once B reads, the rest flows: window updates wake the writer. */
  g_sink.consume = true;
  net_stream_consume(g_sink.s, g_sink.received);
  size_t all = w.target;
  assert_true(th_run_until_fn(&f->loop, sink_has, &all, 20000));
  assert_true(w.writable_events > 0);
  assert_int_equal(g_sink.received, w.target);
}

/* ------------------------------------------------------------- FIN/RST */

typedef struct half {
  bool fin, err_seen, freed;
  int err;
  size_t got;
} half_t;

static void half_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  (void)p;
  ((half_t *)ud)->got += n;
  net_stream_consume(s, n);
}
static void half_fin(void *ud, net_stream_t *s) {
  (void)s;
  ((half_t *)ud)->fin = true;
}
static void half_error(void *ud, net_stream_t *s, int err) {
  (void)s;
  half_t *h = ud;
  h->err_seen = true;
  h->err = err;
}
static void half_free(void *ud, net_stream_t *s) {
  (void)s;
  ((half_t *)ud)->freed = true;
}
static const net_stream_cbs_t half_cbs = {
    .on_data = half_data, .on_fin = half_fin, .on_error = half_error, .on_free = half_free};

static half_t g_srv;
static net_stream_t *g_srv_stream;
static int half_open(void *ud, net_conn_t *c, net_stream_t *s) {
  (void)c;
  net_stream_set_cbs(s, &half_cbs, ud);
  g_srv_stream = s;
  return 0;
}

static void test_fin_is_half_close(void **state) {
  fx_t *f = *state;
  memset(&g_srv, 0, sizeof g_srv);
  assert_ok(net_handle(f->b.net, "/test/half", half_open, &g_srv));
  net_conn_t *ab = connect_ab(f);
  half_t cli = {0};
  net_stream_t *s;
  assert_ok(net_stream_open(ab, "/test/half", &half_cbs, &cli, &s));
  assert_int_equal(net_stream_write(s, (const uint8_t *)"hello", 5), 5);
  assert_ok(net_stream_close(s));
  assert_true(th_run_until(&f->loop, &g_srv.fin, 5000));
  assert_int_equal(g_srv.got, 5);
  /* Writing after our FIN is refused locally... */
  assert_true(net_stream_write(s, (const uint8_t *)"x", 1) < 0);
  /* ...while the other direction still works after it. */
  assert_int_equal(net_stream_write(g_srv_stream, (const uint8_t *)"world!", 6), 6);
  assert_ok(net_stream_close(g_srv_stream));
  assert_true(th_run_until(&f->loop, &cli.freed, 5000));
  assert_int_equal(cli.got, 6);
  assert_true(cli.fin);
  assert_false(cli.err_seen); /* a clean close both ways is not an error */
  assert_true(th_run_until(&f->loop, &g_srv.freed, 5000));
  assert_false(g_srv.err_seen);
}

static bool srv_got3(void *arg) {
  (void)arg;
  return g_srv.got >= 3;
}

static void test_rst_aborts_both_sides(void **state) {
  fx_t *f = *state;
  memset(&g_srv, 0, sizeof g_srv);
  assert_ok(net_handle(f->b.net, "/test/half", half_open, &g_srv));
  net_conn_t *ab = connect_ab(f);
  half_t cli = {0};
  net_stream_t *s;
  assert_ok(net_stream_open(ab, "/test/half", &half_cbs, &cli, &s));
  assert_int_equal(net_stream_write(s, (const uint8_t *)"abc", 3), 3);
  assert_true(th_run_until_fn(&f->loop, srv_got3, NULL, 5000));
  net_stream_reset(s);
  assert_true(th_run_until(&f->loop, &g_srv.err_seen, 5000));
  assert_int_equal(g_srv.err, BFTNET_ERESET);
  assert_true(th_run_until(&f->loop, &g_srv.freed, 5000));
  assert_true(cli.freed);
  /* The connection itself is unaffected. */
  assert_ptr_equal(net_find_conn(f->a.net, net_local_id(f->b.net)), ab);
}

/* ---------------------------------------------------- protocols and IDs */

static void ping_ok(fx_t *f, net_conn_t *c) {
  assert_ok(th_ping(&f->loop, c, NULL, 5000));
}

static void test_unknown_protocol_gets_na(void **state) {
  fx_t *f = *state;
  net_conn_t *ab = connect_ab(f);
  half_t cli = {0};
  net_stream_t *s;
  uint64_t na0 = bn_counter_get(&f->b.ctr, BFTNET_COUNTER_PROTO_NA);
  assert_ok(net_stream_open(ab, "/no/such/protocol", &half_cbs, &cli, &s));
  assert_true(th_run_until(&f->loop, &cli.err_seen, 5000));
  assert_int_equal(cli.err, BFTNET_ENA);
  assert_int_equal(bn_counter_get(&f->b.ctr, BFTNET_COUNTER_PROTO_NA), na0 + 1);
  ping_ok(f, ab); /* the connection survives */
}

static void test_peer_id_mismatch(void **state) {
  fx_t *f = *state;
  /* B's address with A's... no: with a third identity's peer ID. */
  bftnet_key_t *k;
  assert_ok(bftnet_key_generate(&k));
  char other[BFTNET_PEER_ID_MAX], addr[BFTNET_ADDR_MAX];
  bftnet_key_peer_id(k, other, sizeof other);
  bftnet_key_free(k);
  snprintf(addr, sizeof addr, "%.*s%s", (int)(strstr(f->b.addr, "/p2p/") - f->b.addr + 5),
           f->b.addr, other);
  int err = 0;
  assert_null(th_dial(&f->loop, f->a.net, addr, &err, 5000));
  assert_int_equal(err, BFTNET_EPEERMISMATCH);
  assert_int_equal(bn_counter_get(&f->a.ctr, BFTNET_COUNTER_PEER_ID_MISMATCH), 1);
  assert_int_equal(f->a.ups, 0); /* never reported as connected */
}

/* ----------------------------------------------------------- bad input */

typedef struct raw {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  const uint8_t *bytes;
  size_t len;
  bool connected, closed_by_peer, closed;
} raw_t;

static void raw_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h;
  static char buf[65536];
  (void)s;
  *b = uv_buf_init(buf, sizeof buf);
}
static void raw_closed(uv_handle_t *h) {
  ((raw_t *)h->data)->closed = true;
}
static void raw_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  (void)b;
  raw_t *r = st->data;
  if (n < 0) {
    r->closed_by_peer = true;
    uv_close((uv_handle_t *)st, raw_closed);
  }
}
static void raw_written(uv_write_t *w, int status) {
  (void)w;
  (void)status;
}
static void raw_connected(uv_connect_t *req, int status) {
  raw_t *r = req->data;
  assert_int_equal(status, 0);
  r->connected = true;
  uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
  if (r->len) {
    uv_buf_t b = uv_buf_init((char *)r->bytes, (unsigned)r->len);
    uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &b, 1, raw_written);
  }
}

static void raw_start(fx_t *f, raw_t *r, const char *addr, const uint8_t *bytes, size_t len) {
  maddr_t m;
  char e[64];
  assert_ok(maddr_parse(addr, &m, e, sizeof e));
  memset(r, 0, sizeof *r);
  r->bytes = bytes;
  r->len = len;
  uv_tcp_init(&f->loop, &r->tcp);
  r->tcp.data = r;
  r->creq.data = r;
  assert_int_equal(uv_tcp_connect(&r->creq, &r->tcp, (struct sockaddr *)&m.sa, raw_connected), 0);
}

static void raw_cleanup(fx_t *f, raw_t *r) {
  if (!uv_is_closing((uv_handle_t *)&r->tcp)) uv_close((uv_handle_t *)&r->tcp, raw_closed);
  th_run_until(&f->loop, &r->closed, 2000);
}

/* Each hostile byte string closes its own connection with the named
 * counter, while an established connection goes on. */
static void test_garbage_closes_only_that_connection(void **state) {
  fx_t *f = *state;
  net_conn_t *ab = connect_ab(f);
  /* 'G' reads as a 71-byte message: the codec waits for all of it, then
   * finds no newline (and CR/LF inside). */
  static const uint8_t not_multistream[] = "GET / HTTP/1.1\r\nHost: example\r\nUser-Agent: curl\r\n"
                                           "Accept: */*\r\nConnection: close\r\n\r\n\r\n";
  static const uint8_t oversized_ms[] = {0xff, 0xff, 0x03, '/'};
  static const uint8_t overlong_varint[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                            0x80, 0x80, 0x80, 0x80, 0x01};
  /* A correct security negotiation, then a Noise message 1 that is too short. */
  static const uint8_t bad_noise[] = {19,  '/', 'm', 'u', 'l', 't',  'i', 's', 't',  'r', 'e',
                                      'a', 'm', '/', '1', '.', '0',  '.', '0', '\n', 7,   '/',
                                      'n', 'o', 'i', 's', 'e', '\n', 0,   3,   1,    2,   3};
  struct {
    const uint8_t *b;
    size_t n;
    bftnet_counter_id_t ctr;
  } cases[] = {
      {not_multistream, sizeof not_multistream - 1, BFTNET_COUNTER_BAD_MULTISTREAM},
      {oversized_ms, sizeof oversized_ms, BFTNET_COUNTER_BAD_MULTISTREAM},
      {overlong_varint, sizeof overlong_varint, BFTNET_COUNTER_BAD_MULTISTREAM},
      {bad_noise, sizeof bad_noise, BFTNET_COUNTER_BAD_NOISE_HANDSHAKE},
  };
  for (size_t i = 0; i < BN_ARRAY_LEN(cases); i++) {
    uint64_t before = bn_counter_get(&f->b.ctr, cases[i].ctr);
    raw_t r;
    raw_start(f, &r, f->b.addr, cases[i].b, cases[i].n);
    if (!th_run_until(&f->loop, &r.closed_by_peer, 5000)) fail_msg("case %zu: not closed", i);
    assert_int_equal(bn_counter_get(&f->b.ctr, cases[i].ctr), before + 1);
    raw_cleanup(f, &r);
    ping_ok(f, ab);
  }
}

static void test_silent_client_times_out(void **state) {
  fx_t *f = *state;
  raw_t r;
  raw_start(f, &r, f->b.addr, NULL, 0);
  assert_true(th_run_until(&f->loop, &r.closed_by_peer, 6000)); /* handshake timeout 3 s */
  assert_int_equal(bn_counter_get(&f->b.ctr, BFTNET_COUNTER_HANDSHAKE_TIMEOUT), 1);
  raw_cleanup(f, &r);
}

static bool n_closed(void *arg) {
  raw_t *rs = arg;
  int n = 0;
  for (int i = 0; i < 8; i++)
    n += rs[i].closed_by_peer;
  return n >= 4;
}

static void test_pending_handshake_limit(void **state) {
  fx_t *f = *state;
  f->b.net->cfg.max_pending_handshakes = 4;
  raw_t rs[8];
  for (int i = 0; i < 8; i++) {
    raw_start(f, &rs[i], f->b.addr, NULL, 0);
    th_run_until(&f->loop, &rs[i].connected, 2000);
  }
  assert_true(th_run_until_fn(&f->loop, n_closed, rs, 2000)); /* well before the timeout */
  assert_int_equal(bn_counter_get(&f->b.ctr, BFTNET_COUNTER_CONN_LIMIT), 4);
  assert_int_equal(f->b.net->npending, 4);
  for (int i = 0; i < 8; i++)
    raw_cleanup(f, &rs[i]);
  /* An honest peer still gets in once the squatters are gone. */
  for (int i = 0; i < 20; i++)
    uv_run(&f->loop, UV_RUN_NOWAIT);
  net_conn_t *ab = connect_ab(f);
  ping_ok(f, ab);
}

/* ------------------------------------------------------------- pacing */

typedef struct paced {
  int woken[8], nwoken;
  bool ready[3];
} paced_t;

static paced_t g_paced;

static void pc_ready(void *ud, net_stream_t *s) {
  (void)s;
  g_paced.ready[(intptr_t)ud] = true;
}
static void pc_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  (void)ud;
  (void)p;
  net_stream_consume(s, n); /* the echo: read and dropped */
}
static void pc_writable(void *ud, net_stream_t *s) {
  (void)s;
  if (g_paced.nwoken < 8) g_paced.woken[g_paced.nwoken++] = (int)(intptr_t)ud;
}
static const net_stream_cbs_t pc_cbs = {
    .on_ready = pc_ready, .on_data = pc_data, .on_writable = pc_writable};

static bool pc_all_ready(void *arg) {
  (void)arg;
  return g_paced.ready[0] && g_paced.ready[1] && g_paced.ready[2];
}
static bool pc_three_woken(void *arg) {
  (void)arg;
  return g_paced.nwoken >= 3;
}

/* A paced connection takes a data write of at most one piece, and only
 * while its unsent output is below the slack: whoever writes next waits
 * behind less than a piece and the slack. Streams parked meanwhile go on
 * by priority, not in the order they parked. */
static void test_paced_pieces_by_priority(void **state) {
  fx_t *f = *state;
  memset(&g_paced, 0, sizeof g_paced);
  net_conn_t *ab = connect_ab(f);
  net_stream_t *s[3];
  for (intptr_t i = 0; i < 3; i++) {
    assert_ok(net_stream_open(ab, TH_ECHO_PROTO, &pc_cbs, (void *)i, &s[i]));
    net_stream_set_prio(s[i], (uint8_t)i);
  }
  assert_true(th_run_until_fn(&f->loop, pc_all_ready, NULL, 5000));
  for (int i = 0; i < 50; i++)
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the negotiation's bytes flushed */
  static uint8_t big[100 * 1024];
  for (int i = 0; i < 3; i++) {
    assert_true(net_stream_send_room(s[i]) > 0);
    assert_true(net_stream_send_room(s[i]) <= NET_PACE_PIECE);
  }
  /* The least urgent writes first: one piece, whatever it offered. */
  assert_int_equal(net_stream_write(s[2], big, sizeof big), NET_PACE_PIECE);
  size_t pending = ab->out.len + f->t->ops->write_queued(ab->sock);
  assert_true(pending <= NET_PACE_SLACK + NET_PACE_PIECE + 64); /* + yamux header, Noise framing */
  /* Now nobody may write until it drains: each parks, in an order that is
   * neither their priority's nor its reverse. */
  const int park[3] = {1, 0, 2};
  for (int k = 0; k < 3; k++) {
    assert_int_equal(net_stream_send_room(s[park[k]]), 0);
    assert_int_equal(net_stream_write(s[park[k]], big, sizeof big), 0);
  }
  assert_true(th_run_until_fn(&f->loop, pc_three_woken, NULL, 5000));
  assert_int_equal(g_paced.woken[0], 0); /* the most urgent goes on first */
  assert_int_equal(g_paced.woken[1], 1);
  assert_int_equal(g_paced.woken[2], 2);
  for (int i = 0; i < 3; i++)
    net_stream_reset(s[i]);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* the nodes run on this thread's own loop */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_paced_pieces_by_priority, setup_paced, th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_handshake_both_ways, th_pair_setup, th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_many_streams_both_ways, th_pair_setup, th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_reader_that_never_reads, th_pair_setup,
                                      th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_fin_is_half_close, th_pair_setup, th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_rst_aborts_both_sides, th_pair_setup, th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_unknown_protocol_gets_na, th_pair_setup,
                                      th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_peer_id_mismatch, th_pair_setup, th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_garbage_closes_only_that_connection, th_pair_setup,
                                      th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_silent_client_times_out, th_pair_setup,
                                      th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_pending_handshake_limit, th_pair_setup,
                                      th_pair_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
