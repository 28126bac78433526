/* net_internal.h — the structures shared by net.c, conn.c, stream.c, ping.c. */
#ifndef BFTNET_NET_INTERNAL_H
#define BFTNET_NET_INTERNAL_H

#include "identity.h"
#include "net.h"
#include "noise.h"
#include "yamux.h"

#define NET_MAX_HANDLERS 16
#define NET_MAX_LISTENERS 8
#define NET_MAX_PINGS 16     /* outstanding pings per connection */
#define NET_MAX_PENDING_DIALS 64

typedef struct net_handler {
  char proto[BN_MS_MAX_MSG];
  net_proto_open_cb cb;
  void *ud;
} net_handler_t;

/* Connection upgrade state machine (one enum, events in conn.c). */
typedef enum conn_state {
  CONN_DIALING = 0, /* TCP connect in flight */
  CONN_MS_SEC,      /* multistream-select of /noise, in the clear */
  CONN_NOISE,       /* Noise XX handshake messages */
  CONN_MS_MUX,      /* multistream-select of /yamux/1.0.0, encrypted */
  CONN_READY,       /* yamux session up */
  CONN_CLOSING      /* torn down; waiting for the socket's close callback */
} conn_state_t;

typedef struct ping_slot {
  uint8_t payload[BN_PING_SIZE];
  uint64_t sent_ns;
  net_ping_cb cb; /* NULL for a keepalive */
  void *ud;
} ping_slot_t;

typedef struct pending_done {
  net_dial_cb cb;
  void *ud;
  net_conn_t *conn;
  int err;
} pending_done_t;

struct net_conn {
  net_t *net;
  net_conn_t *prev, *next;
  conn_state_t state;
  bool outbound;
  uint64_t seq;
  bool counted_pending; /* counts against max_pending_handshakes */
  bn_tsock_t *sock;
  struct sockaddr_storage remote_sa;
  bool expect_peer;
  peerid_t expected;
  peerid_t peer;
  char peer_str[BFTNET_PEER_ID_MAX];
  net_dial_cb dial_cb; /* outbound: completes once */
  void *dial_ud;
  bftnet_reason_t down_reason;
  bool was_ready;
  int down_err;

  /* upgrade */
  bn_buf_t in;        /* received bytes not yet framed */
  bn_buf_t ms_in;     /* decrypted bytes during CONN_MS_MUX */
  bool ms_header_seen;
  bool ms_header_sent;
  unsigned ms_proposals;
  noise_hs_t *hs;
  noise_cipher_t tx, rx;

  /* output: sealed Noise frames, then one open frame at frame_start */
  bn_buf_t out;
  size_t frame_start;
  bool frame_open;
  bool flush_queued;
  bool urgent;        /* a window update or ping answer waits in out: flush
                          after this read, not after the loop's whole turn */
  net_conn_t *flush_next;

  yamux_session_t *ymx;
  uint64_t ymx_refused; /* yamux's refused-stream count already added to counters */
  int in_feed;        /* > 0 while inside yamux_session_feed */
  bool teardown_pending;

  bn_ttimer_t *hs_timer;
  bn_ttimer_t *ping_timer;
  net_stream_t *ping_stream;
  bool ping_opening;
  ping_slot_t pings[NET_MAX_PINGS];
  unsigned ping_head, ping_count;
  uint64_t last_ping_ns;
  uint8_t pong_buf[BN_PING_SIZE];
  size_t pong_len;

  net_stream_t *congested_head; /* streams to wake when the socket drains */
  net_stream_t *waking_head;    /* the list being woken right now */
  void *user;
  bn_ratelimit_t rl;
};

typedef enum ns_state {
  NS_PROPOSING = 0, /* outbound: proposal sent, waiting for the echo */
  NS_LISTENING,     /* inbound: waiting for a proposal we support */
  NS_READY,         /* protocol agreed */
  NS_DEAD           /* reset / refused / connection gone */
} ns_state_t;

struct net_stream {
  net_conn_t *conn;
  yamux_stream_t *ys;
  ns_state_t state;
  bool header_seen;
  bool header_sent;
  unsigned proposals;
  char proto[BN_MS_MAX_MSG];
  bn_buf_t pre;       /* bytes received before the handler took over */
  net_stream_cbs_t cbs;
  void *ud;
  bool congested;             /* waiting for the connection to drain */
  net_stream_t *congested_next;
};

struct net {
  bn_transport_t *t;
  const struct bftnet_key *key;
  net_config_t cfg;
  net_cbs_t cbs;
  void *ud;
  bn_counters_t *ctr;
  uint8_t static_priv[NOISE_DHLEN];
  uint8_t static_pub[NOISE_DHLEN];
  uint8_t payload[512]; /* our libp2p handshake payload (signed once) */
  size_t payload_len;
  uint64_t conn_seq;   /* creation counter (net_conn_seq) */
  net_handler_t handlers[NET_MAX_HANDLERS];
  unsigned nhandlers;
  bn_tlistener_t *listeners[NET_MAX_LISTENERS];
  unsigned nlisteners;
  net_conn_t *conns;      /* every connection not yet closed */
  unsigned nconns;
  unsigned npending;      /* inbound connections not yet authenticated */
  unsigned live_socks;    /* sockets whose close callback has not run */
  net_conn_t *flush_list;
  pending_done_t done[NET_MAX_PENDING_DIALS];
  unsigned ndone;
  bool closing;
  void (*close_done)(void *ud);
  void *close_ud;
  bn_ratelimit_t rl;
};

/* conn.c */
net_conn_t *conn_new(net_t *n, bn_tsock_t *sock, bool outbound);
void conn_start_inbound(net_conn_t *c);
void conn_fail(net_conn_t *c, bftnet_reason_t reason, int err, bftnet_counter_id_t counter);
void conn_out_secure(net_conn_t *c, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
bool conn_congested(const net_conn_t *c);
void net_flush_all(void *ud);
/* stream.c */
int stream_on_accept(void *ud, yamux_stream_t *ys);
void stream_on_data(void *ud, yamux_stream_t *ys, const uint8_t *p, size_t n);
void stream_on_fin(void *ud, yamux_stream_t *ys);
void stream_on_reset(void *ud, yamux_stream_t *ys);
void stream_on_writable(void *ud, yamux_stream_t *ys);
void stream_on_free(void *ud, yamux_stream_t *ys);
void stream_on_credit(void *ud, yamux_stream_t *ys, uint32_t delta);
void conn_writable_all(net_conn_t *c);
/* A write that ignores connection congestion (pings only). */
int stream_write_uncongested(net_stream_t *s, const uint8_t *p, size_t n);
/* ping.c */
int ping_register(net_t *n);
void ping_conn_ready(net_conn_t *c);
void ping_conn_down(net_conn_t *c, int err);
/* net.c */
void net_complete_later(net_t *n, net_dial_cb cb, void *ud, net_conn_t *c, int err);
void net_conn_unlink(net_conn_t *c);
void net_sock_closed(net_t *n);

#endif
