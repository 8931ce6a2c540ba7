/*
 * encoder_vectors.c - test vectors from the firmware's own frame encoder, built for the host.
 *
 * Links firmware/emgfb/frame_encoder.c unchanged and prints one JSON object per line:
 *   {"check": "123456789", "crc": 244}                         the CRC-8/SMBUS check value
 *   {"n": N, "seq": S, "overrun": 0|1, "counts": [...], "frame": "a55a..."}   one frame
 * Frames come in runs of consecutive seq per channel count (1, 6, 8, 16), crossing the
 * 16-bit wrap, with overrun flags and extreme counts (0, 1023, 0xFFFF, 0xA55A). The pytest
 * in tests/firmware checks emgfb.protocol.encode_frames gives identical bytes and that
 * FrameDecoder decodes them back. Deterministic (fixed LCG seed), no arguments.
 */
#include <stdint.h>
#include <stdio.h>

#include "frame_encoder.h"

static uint32_t lcg = 20261124u;

static uint16_t next_count(void)
{
    lcg = lcg * 1664525u + 1013904223u;
    switch ((lcg >> 28) & 7u) {
    case 0: return 0;
    case 1: return 1023;      /* 10-bit full scale */
    case 2: return 0xFFFF;    /* widest u16 */
    case 3: return 0xA55A;    /* sync bytes inside the payload */
    default: return (uint16_t)(lcg >> 8);
    }
}

static void emit(uint8_t n, uint16_t seq, uint8_t overrun)
{
    uint16_t counts[EMGFB_MAX_CHANNELS];
    uint8_t frame[EMGFB_MAX_FRAME_LEN];
    uint8_t i, len;

    for (i = 0; i < n; i++)
        counts[i] = next_count();
    len = emgfb_encode_frame(frame, seq, n, overrun, counts);
    printf("{\"n\": %u, \"seq\": %u, \"overrun\": %u, \"counts\": [", n, seq, overrun ? 1u : 0u);
    for (i = 0; i < n; i++)
        printf(i ? ", %u" : "%u", counts[i]);
    printf("], \"frame\": \"");
    for (i = 0; i < len; i++)
        printf("%02x", frame[i]);
    printf("\"}\n");
}

int main(void)
{
    static const uint8_t channels[] = {1, 6, 8, 16};
    const char *check = "123456789";
    unsigned k, j;

    printf("{\"check\": \"%s\", \"crc\": %u}\n", check, emgfb_crc8((const uint8_t *)check, 9));
    for (k = 0; k < sizeof channels; k++) {
        /* 40 consecutive ticks from 65516: crosses 65535 -> 0; every 7th frame overrun */
        for (j = 0; j < 40; j++)
            emit(channels[k], (uint16_t)(65516u + j), (uint8_t)(j % 7u == 3u));
    }
    return 0;
}
