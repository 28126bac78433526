/*
 * th_msg.h — the sequence-numbered messages the migration tests send (each
 * message names its own sequence number, so a receiver sees any loss,
 * duplicate or reorder), and the monotonic clock they time out by. No
 * cmocka: the interop drivers use it too.
 */
#ifndef BFTNET_TH_MSG_H
#define BFTNET_TH_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest message th_msg_fill writes: a 64-byte buffer holds any. */
#define TH_MSG_MAX 56

/* The monotonic clock, in nanoseconds and in milliseconds. */
uint64_t th_mono_ns(void);
uint64_t th_now_ms(void);

/* The length of message seq: 16..56 bytes (so its lp frame is 1 + len). */
size_t th_msg_len(uint64_t seq);
/* Writes message seq into b (th_msg_len(seq) bytes): seq in 8 bytes, big
 * endian, then filler that depends on seq. */
void th_msg_fill(uint8_t *b, uint64_t seq);
/* True if p[0..len) is exactly message seq. */
bool th_msg_check(const uint8_t *p, size_t len, uint64_t seq);
/* The sequence number a message names (its first 8 bytes; fewer if short). */
uint64_t th_msg_seq(const uint8_t *p, size_t len);

#endif
