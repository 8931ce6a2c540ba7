/*
 * frame_encoder.h - emgfb wire protocol v1 frame encoder and CRC-8/SMBUS.
 *
 * Plain C99 with no AVR dependency beyond an optional PROGMEM table, so the very same
 * source is compiled into the Uno firmware and into the host test-vector program
 * (firmware/host/encoder_vectors.c). The byte layout is documented in firmware/PROTOCOL.md
 * and mirrored by emgfb/protocol.py.
 */
#ifndef EMGFB_FRAME_ENCODER_H
#define EMGFB_FRAME_ENCODER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMGFB_SYNC0 0xA5u
#define EMGFB_SYNC1 0x5Au
#define EMGFB_HEADER_LEN 5u
#define EMGFB_MAX_CHANNELS 16u
#define EMGFB_INFO_CHANNELS_MASK 0x1Fu
#define EMGFB_INFO_OVERRUN 0x80u
/* Length of one frame carrying n channels: sync(2) seq(2) info(1) 2n samples crc(1). */
#define EMGFB_FRAME_LEN(n) (EMGFB_HEADER_LEN + 2u * (n) + 1u)
#define EMGFB_MAX_FRAME_LEN EMGFB_FRAME_LEN(EMGFB_MAX_CHANNELS)

/* One CRC-8/SMBUS step (poly 0x07, init 0, no reflection, no xorout), table driven. */
uint8_t emgfb_crc8_update(uint8_t crc, uint8_t byte);

/* CRC-8/SMBUS of len bytes; emgfb_crc8("123456789", 9) == 0xF4. */
uint8_t emgfb_crc8(const uint8_t *data, uint16_t len);

/*
 * Write one protocol-v1 frame into out (at least EMGFB_FRAME_LEN(n_channels) bytes).
 * seq: tick counter (wraps at 65536); overrun: non-zero sets info bit 7 ("the board
 * dropped ticks since its previous frame"); counts: n_channels ADC counts.
 * Returns the frame length, or 0 (nothing written) if n_channels is not 1..16.
 */
uint8_t emgfb_encode_frame(uint8_t *out, uint16_t seq, uint8_t n_channels, uint8_t overrun,
                           const uint16_t *counts);

#ifdef __cplusplus
}
#endif

#endif /* EMGFB_FRAME_ENCODER_H */
