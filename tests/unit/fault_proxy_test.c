/* fault_proxy: real sockets on 127.0.0.1, a plain libuv echo server (or a
 * sink that never reads) as the target, clients that write and collect
 * what comes back. Every test ends by closing the proxy, the server and
 * the clients and checking that uv_loop_close() succeeds. */
#include <errno.h>
#include <stdbool.h>

#include <uv.h>

#include "fault_proxy.h"
#include "harness.h"

/* --- Loop helpers -------------------------------------------------------- */

typedef bool (*pred_fn)(void *);

static void on_deadline(uv_timer_t *t) {
  *(bool *)t->data = true;
}
static void on_deadline_closed(uv_handle_t *h) {
  *(bool *)h->data = true;
}

/* Runs loop until pred(arg) or ms pass; returns pred(arg). */
static bool run_until(uv_loop_t *loop, pred_fn pred, void *arg, uint64_t ms) {
  uv_timer_t t;
  bool fired = false, closed = false;
  uv_timer_init(loop, &t);
  t.data = &fired;
  uv_timer_start(&t, on_deadline, ms, 0);
  while (!(pred && pred(arg)) && !fired)
    uv_run(loop, UV_RUN_ONCE);
  t.data = &closed;
  uv_close((uv_handle_t *)&t, on_deadline_closed);
  while (!closed)
    uv_run(loop, UV_RUN_ONCE);
  return pred && pred(arg);
}

static void run_for(uv_loop_t *loop, uint64_t ms) {
  run_until(loop, NULL, NULL, ms);
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed) {
  uint64_t x = seed ? seed : 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    p[i] = (uint8_t)(x >> 24);
  }
}

static struct sockaddr_storage addr4(int port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  uv_ip4_addr("127.0.0.1", port, (struct sockaddr_in *)&ss);
  return ss;
}

/* --- The target: an echo server, or a sink that accepts and never reads -- */

typedef struct sconn {
  uv_tcp_t tcp;
  struct srv *srv;
  struct sconn *next;
  bool closing;
} sconn_t;

typedef struct srv {
  uv_tcp_t tcp;
  bool sink;
  int accepted, eofs, errors, open;
  bool closed;
  sconn_t *conns;
  int port;
} srv_t;

typedef struct echo_req {
  uv_write_t req;
  char data[];
} echo_req_t;

static void on_sconn_closed(uv_handle_t *h) {
  sconn_t *c = h->data;
  srv_t *s = c->srv;
  for (sconn_t **pp = &s->conns; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  s->open--;
  free(c);
}

static void sconn_close(sconn_t *c) {
  if (c->closing) return;
  c->closing = true;
  uv_close((uv_handle_t *)&c->tcp, on_sconn_closed);
}

static void on_echo_written(uv_write_t *req, int status) {
  free(req);
}

static void on_srv_shutdown(uv_shutdown_t *req, int status) {
  sconn_t *c = req->handle->data;
  free(req);
  sconn_close(c);
}

static void on_srv_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  echo_req_t *r = malloc(sizeof *r + 65536);
  *buf = uv_buf_init(r ? r->data : NULL, r ? 65536 : 0);
}

static void on_srv_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  sconn_t *c = st->data;
  echo_req_t *r = buf->base ? (echo_req_t *)(buf->base - offsetof(echo_req_t, data)) : NULL;
  if (nread > 0) {
    uv_buf_t b = uv_buf_init(r->data, (unsigned)nread);
    if (uv_write(&r->req, st, &b, 1, on_echo_written) != 0) free(r);
    return;
  }
  free(r);
  if (nread == 0 || c->closing) return;
  if (nread == UV_EOF) {
    c->srv->eofs++;
    uv_shutdown_t *sr = malloc(sizeof *sr);
    if (!sr || uv_shutdown(sr, st, on_srv_shutdown) != 0) {
      free(sr);
      sconn_close(c);
    }
    return;
  }
  c->srv->errors++;
  sconn_close(c);
}

static void on_srv_conn(uv_stream_t *server, int status) {
  srv_t *s = server->data;
  if (status < 0) return;
  sconn_t *c = calloc(1, sizeof *c);
  assert_non_null(c);
  c->srv = s;
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  c->next = s->conns;
  s->conns = c;
  s->open++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    sconn_close(c);
    return;
  }
  s->accepted++;
  if (s->sink) {
    uv_recv_buffer_size((uv_handle_t *)&c->tcp, &(int){65536});
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, on_srv_alloc, on_srv_read);
}

static void srv_start(uv_loop_t *loop, srv_t *s, bool sink) {
  memset(s, 0, sizeof *s);
  s->sink = sink;
  uv_tcp_init(loop, &s->tcp);
  s->tcp.data = s;
  struct sockaddr_storage a = addr4(0);
  assert_ok(uv_tcp_bind(&s->tcp, (struct sockaddr *)&a, 0));
  assert_ok(uv_listen((uv_stream_t *)&s->tcp, 64, on_srv_conn));
  int len = sizeof a;
  assert_ok(uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&a, &len));
  s->port = ntohs(((struct sockaddr_in *)&a)->sin_port);
}

static void on_srv_closed(uv_handle_t *h) {
  ((srv_t *)h->data)->closed = true;
}

static void srv_close(srv_t *s) {
  uv_close((uv_handle_t *)&s->tcp, on_srv_closed);
  for (sconn_t *c = s->conns; c; c = c->next)
    sconn_close(c);
}

/* --- Clients ------------------------------------------------------------- */

typedef struct cli {
  uv_tcp_t tcp;
  uv_connect_t creq;
  bool connect_done, closed;
  int connect_status;
  uint8_t *rx;
  size_t rx_len, rx_cap, want;
  bool overflow;
  uint8_t scratch[256];
  size_t reads, max_read;
  int read_err; /* 0 until EOF (UV_EOF) or an error */
  int writes_done, write_err;
} cli_t;

static void on_cli_connect(uv_connect_t *req, int status) {
  cli_t *c = req->handle->data;
  c->connect_done = true;
  c->connect_status = status;
}

static void on_cli_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  cli_t *c = h->data;
  if (c->rx_len < c->rx_cap)
    *buf = uv_buf_init((char *)c->rx + c->rx_len, (unsigned)(c->rx_cap - c->rx_len));
  else
    *buf = uv_buf_init((char *)c->scratch, sizeof c->scratch);
}

static void on_cli_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  cli_t *c = st->data;
  if (nread > 0) {
    if (buf->base == (char *)c->scratch)
      c->overflow = true;
    else
      c->rx_len += (size_t)nread;
    c->reads++;
    if ((size_t)nread > c->max_read) c->max_read = (size_t)nread;
    return;
  }
  if (nread < 0 && !c->read_err) {
    c->read_err = (int)nread;
    uv_read_stop(st);
  }
}

static bool pred_connected(void *arg) {
  return ((cli_t *)arg)->connect_done;
}
static bool pred_has_want(void *arg) {
  cli_t *c = arg;
  return c->rx_len >= c->want || c->read_err;
}
static bool pred_ended(void *arg) {
  return ((cli_t *)arg)->read_err != 0;
}

/* Connects c to port and starts reading into a buffer of rx_cap bytes. */
static void cli_open(uv_loop_t *loop, cli_t *c, int port, size_t rx_cap) {
  memset(c, 0, sizeof *c);
  c->rx_cap = rx_cap;
  c->rx = malloc(rx_cap ? rx_cap : 1);
  assert_non_null(c->rx);
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  struct sockaddr_storage a = addr4(port);
  assert_ok(uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&a, on_cli_connect));
  assert_true(run_until(loop, pred_connected, c, 5000));
  if (c->connect_status == 0)
    assert_ok(uv_read_start((uv_stream_t *)&c->tcp, on_cli_alloc, on_cli_read));
}

typedef struct cli_wreq {
  uv_write_t req;
  cli_t *c;
} cli_wreq_t;

static void on_cli_written(uv_write_t *req, int status) {
  cli_wreq_t *w = (cli_wreq_t *)req;
  if (status == 0)
    w->c->writes_done++;
  else if (!w->c->write_err)
    w->c->write_err = status;
  free(w);
}

/* Writes len bytes of data (which must outlive the write). */
static void cli_write(cli_t *c, const void *data, size_t len) {
  cli_wreq_t *w = malloc(sizeof *w);
  assert_non_null(w);
  w->c = c;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  assert_ok(uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_cli_written));
}

/* Writes data and runs until its echo is back; returns the echo's time. */
static uint64_t cli_echo(uv_loop_t *loop, cli_t *c, const void *data, size_t len,
                         uint64_t timeout_ms) {
  size_t start = c->rx_len;
  uint64_t t0 = uv_hrtime();
  cli_write(c, data, len);
  c->want = start + len;
  if (!run_until(loop, pred_has_want, c, timeout_ms) || c->read_err)
    fail_msg("echo of %zu bytes: got %zu, read_err %s%s", len, c->rx_len - start,
             c->read_err ? uv_err_name(c->read_err) : "none",
             c->overflow ? " (receive buffer overflow)" : "");
  uint64_t dt = uv_hrtime() - t0;
  assert_int_equal(c->rx_len, start + len);
  assert_memory_equal(c->rx + start, data, len);
  return dt;
}

static void on_cli_closed(uv_handle_t *h) {
  ((cli_t *)h->data)->closed = true;
}

static void cli_close(cli_t *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_cli_closed);
}

/* --- The fixture: a loop, a target server and a proxy in front of it ----- */

typedef struct fx {
  uv_loop_t loop;
  srv_t srv;
  fault_proxy_t *proxy;
  int port; /* the proxy's */
  bool proxy_closed;
  cli_t cli[4];
  int ncli;
} fx_t;

static void fx_start(fx_t *f, bool sink, const fault_proxy_opts_t *opts) {
  memset(f, 0, sizeof *f);
  assert_ok(uv_loop_init(&f->loop));
  srv_start(&f->loop, &f->srv, sink);
  struct sockaddr_storage l = addr4(0), t = addr4(f->srv.port);
  assert_ok(
      fault_proxy_create(&f->loop, (struct sockaddr *)&l, (struct sockaddr *)&t, opts, &f->proxy));
  f->port = fault_proxy_port(f->proxy);
  assert_true(f->port > 0);
  assert_int_not_equal(f->port, f->srv.port);
}

static cli_t *fx_client(fx_t *f, size_t rx_cap) {
  assert_true(f->ncli < 4);
  cli_t *c = &f->cli[f->ncli++];
  cli_open(&f->loop, c, f->port, rx_cap);
  assert_int_equal(c->connect_status, 0);
  return c;
}

static void on_proxy_closed(fault_proxy_t *p, void *arg) {
  fx_t *f = arg;
  fault_proxy_stats_t st;
  fault_proxy_stats(p, &st); /* still valid inside the callback */
  assert_int_equal(st.active, 0);
  assert_int_equal(st.queued, 0);
  assert_false(f->proxy_closed); /* exactly once */
  f->proxy_closed = true;
}

static bool pred_all_closed(void *arg) {
  fx_t *f = arg;
  if (!f->proxy_closed || !f->srv.closed || f->srv.open) return false;
  for (int i = 0; i < f->ncli; i++)
    if (!f->cli[i].closed) return false;
  return true;
}

/* Closes everything and checks the loop closes cleanly. */
static void fx_finish(fx_t *f) {
  assert_ok(fault_proxy_close(f->proxy, on_proxy_closed, f));
  assert_err(fault_proxy_close(f->proxy, on_proxy_closed, f), -EINVAL);
  for (int i = 0; i < f->ncli; i++)
    cli_close(&f->cli[i]);
  srv_close(&f->srv);
  assert_true(run_until(&f->loop, pred_all_closed, f, 5000));
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  for (int i = 0; i < f->ncli; i++)
    free(f->cli[i].rx);
}

static fault_proxy_stats_t fx_stats(fx_t *f) {
  fault_proxy_stats_t st;
  fault_proxy_stats(f->proxy, &st);
  return st;
}

/* --- Tests --------------------------------------------------------------- */

/* 1 MiB of random bytes through the proxy and back, intact. */
static void test_passthrough(void **state) {
  fx_t f;
  fx_start(&f, false, NULL);
  size_t n = 1u << 20;
  uint8_t *data = malloc(n);
  assert_non_null(data);
  fill_random(data, n, th_seed());
  cli_t *c = fx_client(&f, n);
  cli_echo(&f.loop, c, data, n, 20000);
  assert_false(c->overflow);
  fault_proxy_stats_t st = fx_stats(&f);
  assert_int_equal(st.accepted, 1);
  assert_int_equal(st.active, 1);
  assert_int_equal(st.bytes_to_target, n);
  assert_int_equal(st.bytes_to_client, n);
  assert_true(st.queued_peak <= st.queue_max);
  assert_int_equal(st.queue_max, FAULT_PROXY_QUEUE_DEFAULT);
  fx_finish(&f);
  free(data);
}

/* Half-close goes through: the client's FIN reaches the echo server, whose
 * FIN (after the echo) comes back; the proxy then drops the link. */
static bool pred_no_active(void *arg) {
  fault_proxy_stats_t st;
  fault_proxy_stats(((fx_t *)arg)->proxy, &st);
  return st.active == 0;
}

static void on_cli_shutdown(uv_shutdown_t *req, int status) {
  free(req);
}

static void test_half_close(void **state) {
  fx_t f;
  fx_start(&f, false, NULL);
  cli_t *c = fx_client(&f, 64);
  cli_write(c, "last words", 10);
  uv_shutdown_t *sr = malloc(sizeof *sr);
  assert_non_null(sr);
  assert_ok(uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_cli_shutdown));
  assert_true(run_until(&f.loop, pred_ended, c, 5000));
  assert_int_equal(c->read_err, UV_EOF);
  assert_int_equal(c->rx_len, 10);
  assert_memory_equal(c->rx, "last words", 10);
  assert_int_equal(f.srv.eofs, 1);
  assert_true(run_until(&f.loop, pred_no_active, &f, 5000));
  assert_int_equal(fx_stats(&f).conns_reset, 0);
  fx_finish(&f);
}

/* Slicing 1..3: the bytes arrive intact, in many small writes and reads. */
static void test_slice(void **state) {
  fault_proxy_opts_t o = {.slice_max = 3, .seed = th_seed()};
  fx_t f;
  fx_start(&f, false, &o);
  size_t n = 64 * 1024;
  uint8_t *data = malloc(n);
  assert_non_null(data);
  fill_random(data, n, th_seed() + 1);
  cli_t *c = fx_client(&f, n + 1024);
  cli_echo(&f.loop, c, data, n, 30000);
  fault_proxy_stats_t st = fx_stats(&f);
  /* Every segment is at most 3 bytes, in each direction. */
  assert_true(st.writes >= 2 * n / 3);
  /* The receiver sees many small reads (coalescing is allowed, so loose). */
  assert_true(c->reads >= n / 64);
  fprintf(stderr, "slice: %llu writes, client saw %zu reads (largest %zu) for %zu bytes\n",
          (unsigned long long)st.writes, c->reads, c->max_read, n);
  /* Off again: large chunks. */
  assert_ok(fault_proxy_slice(f.proxy, 0));
  uint64_t w0 = fx_stats(&f).writes;
  cli_echo(&f.loop, c, data, 1024, 5000);
  assert_true(fx_stats(&f).writes - w0 <= 4);
  assert_err(fault_proxy_slice(f.proxy, FAULT_PROXY_SLICE_MAX + 1), -EINVAL);
  fx_finish(&f);
  free(data);
}

/* 50 ms latency adds at least 50 ms each way to an echo round trip; with
 * jitter, bytes still arrive intact and in order. */
static void test_latency(void **state) {
  fault_proxy_opts_t o = {.latency_ms = 50, .seed = th_seed()};
  fx_t f;
  fx_start(&f, false, &o);
  cli_t *c = fx_client(&f, 1 << 20);
  for (int i = 0; i < 3; i++) {
    uint64_t dt = cli_echo(&f.loop, c, "ping", 4, 5000);
    if (dt < 2 * 50 * 1000000ull)
      fail_msg("round trip %llu ns, want >= 100 ms", (unsigned long long)dt);
    fprintf(stderr, "latency 50 ms each way: echo round trip %.1f ms\n", (double)dt / 1e6);
  }
  assert_ok(fault_proxy_latency(f.proxy, 2, 2));
  size_t n = 256 * 1024;
  uint8_t *data = malloc(n);
  assert_non_null(data);
  fill_random(data, n, th_seed() + 2);
  size_t start = c->rx_len;
  for (size_t off = 0; off < n; off += 1024)
    cli_write(c, data + off, 1024);
  c->want = start + n;
  assert_true(run_until(&f.loop, pred_has_want, c, 20000));
  assert_int_equal(c->rx_len, start + n);
  assert_memory_equal(c->rx + start, data, n);
  assert_ok(fault_proxy_latency(f.proxy, 0, 0));
  assert_err(fault_proxy_latency(f.proxy, FAULT_PROXY_LATENCY_MAX + 1, 0), -EINVAL);
  fx_finish(&f);
  free(data);
}

/* Cut resets both sides; new connections then work. */
static bool pred_srv_end(void *arg) {
  srv_t *s = arg;
  return s->errors + s->eofs >= 1;
}

static void test_cut(void **state) {
  fx_t f;
  fx_start(&f, false, NULL);
  cli_t *c1 = fx_client(&f, 1024);
  cli_echo(&f.loop, c1, "hello", 5, 5000);
  assert_int_equal(fault_proxy_cut(f.proxy), 1);
  assert_true(run_until(&f.loop, pred_ended, c1, 5000));
  assert_true(c1->read_err == UV_ECONNRESET || c1->read_err == UV_EOF);
  assert_true(run_until(&f.loop, pred_srv_end, &f.srv, 5000));
  assert_int_equal(f.srv.errors, 1); /* the target saw a reset, not a FIN */
  fault_proxy_stats_t st = fx_stats(&f);
  assert_int_equal(st.cuts, 1);
  assert_int_equal(st.conns_cut, 1);
  assert_int_equal(st.active, 0);
  /* New connections work. */
  cli_t *c2 = fx_client(&f, 1024);
  cli_echo(&f.loop, c2, "again", 5, 5000);
  assert_int_equal(fault_proxy_cut(f.proxy), 1);
  assert_int_equal(fault_proxy_cut(f.proxy), 0); /* nothing left to cut */
  assert_true(run_until(&f.loop, pred_ended, c2, 5000));
  assert_int_equal(fx_stats(&f).cuts, 3);
  fx_finish(&f);
}

/* Refuse resets new connections; existing ones keep working. */
static void test_refuse(void **state) {
  fx_t f;
  fx_start(&f, false, NULL);
  cli_t *c1 = fx_client(&f, 1024);
  cli_echo(&f.loop, c1, "one", 3, 5000);
  assert_ok(fault_proxy_refuse(f.proxy, 1));
  assert_true(fault_proxy_is_refusing(f.proxy));
  cli_t *c2 = &f.cli[f.ncli++];
  cli_open(&f.loop, c2, f.port, 1024);
  if (c2->connect_status == 0) { /* the kernel completed the handshake */
    cli_write(c2, "two", 3);
    assert_true(run_until(&f.loop, pred_ended, c2, 5000));
    assert_true(c2->read_err == UV_ECONNRESET || c2->read_err == UV_EOF);
    assert_int_equal(c2->rx_len, 0);
  } else {
    assert_int_equal(c2->connect_status, UV_ECONNRESET);
  }
  cli_echo(&f.loop, c1, "still here", 10, 5000);
  fault_proxy_stats_t st = fx_stats(&f);
  assert_int_equal(st.accepted, 2);
  assert_int_equal(st.refused, 1);
  assert_int_equal(st.active, 1);
  assert_int_equal(f.srv.accepted, 1); /* the target never saw it */
  assert_ok(fault_proxy_refuse(f.proxy, 0));
  cli_t *c3 = fx_client(&f, 1024);
  cli_echo(&f.loop, c3, "three", 5, 5000);
  fx_finish(&f);
}

/* Blackhole: no byte moves (300 ms), new connections too; off delivers
 * everything intact. */
static void test_blackhole(void **state) {
  fx_t f;
  fx_start(&f, false, NULL);
  size_t n = 200 * 1024;
  uint8_t *data = malloc(n);
  assert_non_null(data);
  fill_random(data, n, th_seed() + 3);
  cli_t *c1 = fx_client(&f, 4096 + n);
  cli_echo(&f.loop, c1, "before", 6, 5000);
  assert_ok(fault_proxy_blackhole(f.proxy, 1));
  assert_true(fault_proxy_is_blackholed(f.proxy));
  uint64_t to_target = fx_stats(&f).bytes_to_target;
  cli_write(c1, "during", 6);
  cli_write(c1, data, n);
  cli_t *c2 = fx_client(&f, 64); /* accepted, but sees no bytes either */
  cli_write(c2, "new", 3);
  run_for(&f.loop, 300);
  assert_int_equal(c1->rx_len, 6);
  assert_int_equal(c1->read_err, 0);
  assert_int_equal(c2->rx_len, 0);
  assert_int_equal(c2->read_err, 0);
  fault_proxy_stats_t st = fx_stats(&f);
  assert_int_equal(st.bytes_to_target, to_target);
  assert_int_equal(st.accepted, 2);
  assert_int_equal(st.active, 2);
  assert_ok(fault_proxy_blackhole(f.proxy, 0));
  c1->want = 6 + 6 + n;
  assert_true(run_until(&f.loop, pred_has_want, c1, 10000));
  assert_int_equal(c1->rx_len, 6 + 6 + n);
  assert_memory_equal(c1->rx + 6, "during", 6);
  assert_memory_equal(c1->rx + 12, data, n);
  c2->want = 3;
  assert_true(run_until(&f.loop, pred_has_want, c2, 5000));
  assert_memory_equal(c2->rx, "new", 3);
  fx_finish(&f);
  free(data);
}

/* A target that never reads: the client keeps writing until it blocks; the
 * proxy's queue never passes its bound, and the proxy stops moving bytes. */
typedef struct flood {
  cli_t *c;
  const uint8_t *chunk;
  size_t len;
  bool stop;
  uint64_t completed;
  uv_write_t req;
  bool in_flight;
} flood_t;

static void flood_next(flood_t *fl);

static void on_flood_written(uv_write_t *req, int status) {
  flood_t *fl = req->data;
  fl->in_flight = false;
  if (status != 0) return;
  fl->completed++;
  flood_next(fl);
}

static void flood_next(flood_t *fl) {
  if (fl->stop || fl->in_flight) return;
  uv_buf_t b = uv_buf_init((char *)fl->chunk, (unsigned)fl->len);
  fl->req.data = fl;
  assert_ok(uv_write(&fl->req, (uv_stream_t *)&fl->c->tcp, &b, 1, on_flood_written));
  fl->in_flight = true;
}

static void test_backpressure(void **state) {
  fault_proxy_opts_t o = {.queue_max = 64 * 1024};
  fx_t f;
  fx_start(&f, true, &o);
  cli_t *c = fx_client(&f, 64);
  uv_send_buffer_size((uv_handle_t *)&c->tcp, &(int){65536});
  size_t len = 1u << 20;
  uint8_t *chunk = calloc(1, len);
  assert_non_null(chunk);
  flood_t fl = {.c = c, .chunk = chunk, .len = len};
  flood_next(&fl);
  fault_proxy_stats_t st;
  /* Keep writing for 1.5 s, sampling the proxy's queue. */
  for (int i = 0; i < 30; i++) {
    run_for(&f.loop, 50);
    st = fx_stats(&f);
    assert_true(st.queued <= st.queue_max);
    assert_true(st.queued_peak <= st.queue_max);
  }
  /* Now nothing moves: the client's write is stuck, the proxy is stalled
   * with its queue at the bound. */
  uint64_t done = fl.completed, to_target = st.bytes_to_target;
  run_for(&f.loop, 500);
  st = fx_stats(&f);
  assert_int_equal(fl.completed, done);
  assert_true(fl.in_flight);
  assert_true(uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0);
  assert_int_equal(st.bytes_to_target, to_target);
  assert_int_equal(st.queue_max, 64 * 1024);
  assert_true(st.queued <= st.queue_max);
  assert_true(st.queued_peak <= st.queue_max);
  assert_true(st.queued_peak >= st.queue_max / 2); /* the bound was reached */
  fprintf(stderr,
          "backpressure: client wrote %llu MiB, proxy forwarded %llu bytes, "
          "queued %zu (peak %zu, max %zu)\n",
          (unsigned long long)fl.completed, (unsigned long long)st.bytes_to_target, st.queued,
          st.queued_peak, st.queue_max);
  fl.stop = true;
  fx_finish(&f); /* the stuck write is canceled by the client's close */
  assert_false(fl.in_flight);
  free(chunk);
}

/* The target refuses: the client is reset, the failure counted. */
static void test_connect_failed(void **state) {
  fx_t f;
  fx_start(&f, false, NULL);
  /* Point a second proxy at a port nobody listens on. */
  uv_tcp_t probe;
  uv_tcp_init(&f.loop, &probe);
  struct sockaddr_storage a = addr4(0);
  assert_ok(uv_tcp_bind(&probe, (struct sockaddr *)&a, 0));
  int alen = sizeof a;
  assert_ok(uv_tcp_getsockname(&probe, (struct sockaddr *)&a, &alen));
  uv_close((uv_handle_t *)&probe, NULL); /* bound, never listening: refuses */
  run_for(&f.loop, 10);
  struct sockaddr_storage l = addr4(0);
  fault_proxy_t *p2;
  assert_ok(fault_proxy_create(&f.loop, (struct sockaddr *)&l, (struct sockaddr *)&a, NULL, &p2));
  cli_t *c = &f.cli[f.ncli++];
  cli_open(&f.loop, c, fault_proxy_port(p2), 64);
  assert_int_equal(c->connect_status, 0);
  assert_true(run_until(&f.loop, pred_ended, c, 5000));
  assert_true(c->read_err == UV_ECONNRESET || c->read_err == UV_EOF);
  fault_proxy_stats_t st;
  fault_proxy_stats(p2, &st);
  assert_int_equal(st.connect_failed, 1);
  assert_int_equal(st.active, 0);
  assert_ok(fault_proxy_close(p2, NULL, NULL));
  fx_finish(&f);
}

/* IPv6 loopback listens too; closing with open connections is clean. */
static void test_ipv6_and_close_busy(void **state) {
  fx_t f;
  fx_start(&f, false, NULL);
  struct sockaddr_storage l, t = addr4(f.srv.port);
  assert_ok(fault_proxy_addr_parse("[::1]:0", &l));
  fault_proxy_t *p6;
  int rc = fault_proxy_create(&f.loop, (struct sockaddr *)&l, (struct sockaddr *)&t, NULL, &p6);
  if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) { /* no IPv6 here */
    fprintf(stderr, "ipv6: %s, part skipped\n", uv_strerror(rc));
    fx_finish(&f);
    return;
  }
  assert_ok(rc);
  struct sockaddr_storage b;
  assert_ok(fault_proxy_bound_addr(p6, &b));
  char text[FAULT_PROXY_ADDRSTRLEN];
  assert_ok(fault_proxy_addr_format((struct sockaddr *)&b, text, sizeof text));
  assert_int_equal(strncmp(text, "[::1]:", 6), 0);
  cli_t *c = &f.cli[f.ncli++];
  memset(c, 0, sizeof *c);
  c->rx_cap = 64;
  c->rx = malloc(64);
  uv_tcp_init(&f.loop, &c->tcp);
  c->tcp.data = c;
  assert_ok(uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&b, on_cli_connect));
  assert_true(run_until(&f.loop, pred_connected, c, 5000));
  assert_int_equal(c->connect_status, 0);
  assert_ok(uv_read_start((uv_stream_t *)&c->tcp, on_cli_alloc, on_cli_read));
  cli_echo(&f.loop, c, "six", 3, 5000);
  assert_ok(fault_proxy_close(p6, NULL, NULL));
  assert_true(run_until(&f.loop, pred_ended, c, 5000)); /* closed: FIN or RST */
  fx_finish(&f);
}

/* Only loopback addresses; bad options; address parsing. */
static void test_loopback_only(void **state) {
  uv_loop_t loop;
  assert_ok(uv_loop_init(&loop));
  struct sockaddr_storage lo, other, any, v6;
  fault_proxy_t *p = NULL;
  assert_ok(fault_proxy_addr_parse("127.0.0.1:0", &lo));
  assert_ok(fault_proxy_addr_parse("10.1.2.3:80", &other));
  assert_ok(fault_proxy_addr_parse("0.0.0.0:0", &any));
  assert_ok(fault_proxy_addr_parse("[fd00::2]:80", &v6));
  assert_err(fault_proxy_create(&loop, (struct sockaddr *)&lo, (struct sockaddr *)&other, NULL, &p),
             -EPERM);
  assert_err(fault_proxy_create(&loop, (struct sockaddr *)&lo, (struct sockaddr *)&v6, NULL, &p),
             -EPERM);
  assert_err(fault_proxy_create(&loop, (struct sockaddr *)&any, (struct sockaddr *)&lo, NULL, &p),
             -EPERM);
  assert_null(p);
  /* private_ok (bftnet-cluster --netns): private targets, still never 0.0.0.0. */
  fault_proxy_opts_t priv = {.private_ok = 1};
  assert_err(fault_proxy_create(&loop, (struct sockaddr *)&any, (struct sockaddr *)&lo, &priv, &p),
             -EPERM);
  assert_true(fault_proxy_addr_is_private((struct sockaddr *)&other));
  assert_true(fault_proxy_addr_is_private((struct sockaddr *)&v6));
  assert_false(fault_proxy_addr_is_private((struct sockaddr *)&lo));
  assert_false(fault_proxy_addr_is_private((struct sockaddr *)&any));
  struct sockaddr_storage pub;
  assert_ok(fault_proxy_addr_parse("172.32.0.1:80", &pub));
  assert_false(fault_proxy_addr_is_private((struct sockaddr *)&pub));
  assert_err(fault_proxy_create(&loop, (struct sockaddr *)&lo, (struct sockaddr *)&pub, &priv, &p),
             -EPERM);
  assert_ok(
      fault_proxy_create(&loop, (struct sockaddr *)&lo, (struct sockaddr *)&other, &priv, &p));
  assert_ok(fault_proxy_close(p, NULL, NULL));
  p = NULL;
  assert_ok(uv_run(&loop, UV_RUN_DEFAULT));
  fault_proxy_opts_t bad = {.slice_max = FAULT_PROXY_SLICE_MAX + 1};
  assert_err(fault_proxy_create(&loop, (struct sockaddr *)&lo, (struct sockaddr *)&lo, &bad, &p),
             -EINVAL);
  bad = (fault_proxy_opts_t){.queue_max = 1};
  assert_err(fault_proxy_create(&loop, (struct sockaddr *)&lo, (struct sockaddr *)&lo, &bad, &p),
             -EINVAL);

  /* Address forms. */
  struct sockaddr_storage ss;
  char text[FAULT_PROXY_ADDRSTRLEN];
  static const struct {
    const char *in, *out;
  } ok[] = {
      {"127.0.0.1:9000", "127.0.0.1:9000"},
      {"[::1]:9001", "[::1]:9001"},
      {"/ip4/127.0.0.2/tcp/9002", "127.0.0.2:9002"},
      {"/ip6/::1/tcp/9003/p2p/12D3KooWabc", "[::1]:9003"},
      {"127.0.0.1:0", "127.0.0.1:0"},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    assert_ok(fault_proxy_addr_parse(ok[i].in, &ss));
    assert_ok(fault_proxy_addr_format((struct sockaddr *)&ss, text, sizeof text));
    assert_string_equal(text, ok[i].out);
    assert_true(fault_proxy_addr_is_loopback((struct sockaddr *)&ss));
  }
  static const char *const badaddr[] = {"",
                                        "127.0.0.1",
                                        "127.0.0.1:",
                                        "127.0.0.1:65536",
                                        "127.0.0.1:-1",
                                        "localhost:80",
                                        "::1:80",
                                        "[::1]80",
                                        "/ip4/127.0.0.1/udp/9",
                                        "/ip4/127.0.0.1/tcp/x",
                                        "127.0.0.1:80x"};
  for (size_t i = 0; i < sizeof badaddr / sizeof badaddr[0]; i++)
    if (fault_proxy_addr_parse(badaddr[i], &ss) != -EINVAL) fail_msg("parsed \"%s\"", badaddr[i]);
  assert_ok(fault_proxy_addr_parse("[::ffff:127.0.0.9]:1", &ss));
  assert_true(fault_proxy_addr_is_loopback((struct sockaddr *)&ss));
  assert_ok(fault_proxy_addr_parse("128.0.0.1:1", &ss));
  assert_false(fault_proxy_addr_is_loopback((struct sockaddr *)&ss));

  /* A bind error returns the error and leaves one handle closing. */
  fault_proxy_t *p1;
  assert_ok(fault_proxy_create(&loop, (struct sockaddr *)&lo, (struct sockaddr *)&lo, NULL, &p1));
  struct sockaddr_storage taken;
  assert_ok(fault_proxy_bound_addr(p1, &taken));
  assert_err(fault_proxy_create(&loop, (struct sockaddr *)&taken, (struct sockaddr *)&lo, NULL, &p),
             -EADDRINUSE);
  assert_ok(fault_proxy_close(p1, NULL, NULL));
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_passthrough),
      cmocka_unit_test(test_half_close),
      cmocka_unit_test(test_slice),
      cmocka_unit_test(test_latency),
      cmocka_unit_test(test_cut),
      cmocka_unit_test(test_refuse),
      cmocka_unit_test(test_blackhole),
      cmocka_unit_test(test_backpressure),
      cmocka_unit_test(test_connect_failed),
      cmocka_unit_test(test_ipv6_and_close_busy),
      cmocka_unit_test(test_loopback_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
