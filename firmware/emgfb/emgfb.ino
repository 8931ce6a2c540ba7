/*
 * emgfb.ino - emgfb firmware for the Arduino Uno, Nano and Mega 2560 (16 MHz AVRs).
 *
 * Samples A0..A(n-1) at fs Hz and streams wire protocol v1 frames (firmware/PROTOCOL.md)
 * at 1 Mbaud. One sketch for all three boards, selected at compile time by the board
 * macro the Arduino IDE (or the Makefile's BOARD=uno|nano|mega) defines:
 *
 *   ARDUINO_AVR_UNO      board=uno   ATmega328P, A0..A5   (variant "standard", 6 inputs)
 *   ARDUINO_AVR_NANO     board=nano  ATmega328P, A0..A7   (variant "eightanaloginputs";
 *                                    A6/A7 are analog-only pins of the TQFP/QFN package)
 *   ARDUINO_AVR_MEGA2560 board=mega  ATmega2560, A0..A15  (A8..A15 need MUX5 in ADCSRB)
 *
 * Data path, all interrupt driven:
 *
 *   Timer1 CTC ISR (one per sample tick): seq++ for EVERY tick; if the ADC chain is idle
 *       and the queue has room, reserve the queue slot and start converting channel 0,
 *       otherwise drop the tick (it shows up as a seq gap and sets info bit 7 on the
 *       next frame).
 *   ADC ISR: store the result, switch ADMUX to the next channel and restart; after the
 *       last channel commit the slot to the queue.
 *   loop(): encode queued sample sets as frames (frame_encoder.c, table CRC) into the TX
 *       ring; the UDRE ISR drains it into the UART. With nothing to do the CPU sleeps
 *       (idle mode), so the simulator skips idle time and a real board saves power.
 *
 * No analogRead(), no HardwareSerial (its per-byte ISR and buffers cost ~20 % CPU at
 * 6 ch @ 2 kHz), no millis() (Timer0's interrupt is switched off: it only adds jitter).
 * Commands are ASCII lines (see PROTOCOL.md); text replies are only sent while stopped.
 *
 * Compile-time settings (make FS=... CH=... BAUD=..., or edit the defaults below).
 */
#include <Arduino.h>
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/pgmspace.h>
#include <avr/sleep.h>
#include <stdlib.h>
#include <string.h>

#include "frame_encoder.h"

#ifndef EMGFB_FS_HZ
#define EMGFB_FS_HZ 1000      /* default sample rate per channel, Hz */
#endif
#ifndef EMGFB_CHANNELS
#define EMGFB_CHANNELS 6      /* default channel count (A0..A5) */
#endif
#ifndef EMGFB_BAUD
#define EMGFB_BAUD 1000000UL  /* UART baud rate; 1 Mbaud is exact at 16 MHz */
#endif
#define EMGFB_FW_VERSION "0.2.0"
#if defined(ARDUINO_AVR_MEGA2560)
#define EMGFB_BOARD "mega"
#elif defined(ARDUINO_AVR_NANO)
#define EMGFB_BOARD "nano"
#elif defined(ARDUINO_AVR_UNO)
#define EMGFB_BOARD "uno"
#else
#error "unsupported board: build for Arduino Uno, Nano or Mega 2560 (make BOARD=uno|nano|mega)"
#endif
#define EMGFB_ADC_BITS 10
#define EMGFB_VREF_MV 5000    /* ADC reference: AVcc */
#define EMGFB_FS_MAX_ABS 10000u

#define MAX_CH NUM_ANALOG_INPUTS  /* 6 on the Uno, 8 on the Nano, 16 on the Mega */

/* Register and vector names that differ between the ATmega328P and the ATmega2560. */
#if defined(__AVR_ATmega2560__)
#define UART_RX_VECT USART0_RX_vect
#define UART_UDRE_VECT USART0_UDRE_vect
#else
#define UART_RX_VECT USART_RX_vect
#define UART_UDRE_VECT USART_UDRE_vect
#endif

#if EMGFB_CHANNELS < 1 || EMGFB_CHANNELS > MAX_CH
#error "EMGFB_CHANNELS must be 1..NUM_ANALOG_INPUTS"
#endif
#if EMGFB_FS_HZ < 1 || EMGFB_FS_HZ > 10000
#error "EMGFB_FS_HZ must be 1..10000"
#endif

/* UART divisor in double-speed mode (U2X0): baud = F_CPU / (8 * (UBRR + 1)). */
#define UBRR_VALUE ((F_CPU + 4UL * EMGFB_BAUD) / (8UL * EMGFB_BAUD) - 1UL)
#define BAUD_REAL (F_CPU / (8UL * (UBRR_VALUE + 1UL)))
#if (BAUD_REAL * 100UL > EMGFB_BAUD * 102UL) || (BAUD_REAL * 100UL < EMGFB_BAUD * 98UL)
#error "EMGFB_BAUD cannot be generated within 2 % from F_CPU"
#endif

/* ---- queue between the sampling ISRs and loop() ------------------------------------- */

#define QUEUE_LEN 8u  /* power of two */
#define QUEUE_MASK (QUEUE_LEN - 1u)

struct SampleSet {
  uint16_t seq;
  uint8_t overrun;
  uint16_t counts[MAX_CH];
};

static SampleSet g_queue[QUEUE_LEN];
static volatile uint8_t g_q_head;   /* next slot the ADC chain commits (ISR-owned) */
static volatile uint8_t g_q_tail;   /* next slot loop() encodes (loop-owned) */
static volatile uint8_t g_adc_busy; /* a conversion chain is in flight */
static volatile uint8_t g_dropped;  /* ticks dropped since the last queued sample set */
static uint16_t g_seq;              /* tick counter, touched by the timer ISR only */
static uint8_t g_adc_ch;            /* channel being converted (ADC ISR) */
static uint8_t g_nch_isr;           /* channel count used by the ISRs while streaming */

static uint8_t g_nch = EMGFB_CHANNELS;
static uint16_t g_fs = EMGFB_FS_HZ;
static uint8_t g_streaming;

#define ADMUX_BASE _BV(REFS0) /* AVcc reference, right-adjusted result */

/* Select analog input ch (0..MAX_CH-1) for the next conversion. */
static inline void adc_select(uint8_t ch)
{
#if MAX_CH > 8
  /* ATmega2560: ADC8..ADC15 are MUX5 (ADCSRB) + MUX2:0. */
  ADCSRB = (ch & 8u) ? _BV(MUX5) : 0;
#endif
  ADMUX = ADMUX_BASE | (ch & 7u);
}

ISR(TIMER1_COMPA_vect)
{
  uint16_t seq = g_seq++;
  uint8_t head = g_q_head;
  if (g_adc_busy || ((head + 1u) & QUEUE_MASK) == g_q_tail) {
    g_dropped = 1;  /* the tick is lost; seq already counted it */
    return;
  }
  g_queue[head].seq = seq;
  g_queue[head].overrun = g_dropped;
  g_dropped = 0;
  g_adc_ch = 0;
  g_adc_busy = 1;
  ADCSRA |= _BV(ADSC);  /* ADMUX already selects channel 0 */
}

ISR(ADC_vect)
{
  uint8_t head = g_q_head;
  uint8_t ch = g_adc_ch;
  g_queue[head].counts[ch] = ADC;
  if (++ch < g_nch_isr) {
    adc_select(ch);
    ADCSRA |= _BV(ADSC);
    g_adc_ch = ch;
  } else {
    adc_select(0);  /* ready (and settled) for the next tick */
    g_q_head = (head + 1u) & QUEUE_MASK;
    g_adc_busy = 0;
  }
}

/* ---- UART: own minimal driver (interrupt-driven TX ring, RX ring) -------------------- */

#define TX_LEN 128u  /* power of two, > 3 frames of 6 channels */
#define TX_MASK (TX_LEN - 1u)
#define RX_LEN 32u
#define RX_MASK (RX_LEN - 1u)

static uint8_t g_tx[TX_LEN];
static volatile uint8_t g_tx_head;  /* loop writes here */
static volatile uint8_t g_tx_tail;  /* UDRE ISR reads here */
static uint8_t g_rx[RX_LEN];
static volatile uint8_t g_rx_head;  /* RX ISR writes here */
static volatile uint8_t g_rx_tail;  /* loop reads here */

ISR(UART_UDRE_VECT)
{
  uint8_t tail = g_tx_tail;
  if (tail == g_tx_head) {
    UCSR0B &= (uint8_t)~_BV(UDRIE0);
    return;
  }
  UDR0 = g_tx[tail];
  g_tx_tail = (tail + 1u) & TX_MASK;
}

ISR(UART_RX_VECT)
{
  uint8_t b = UDR0;
  uint8_t next = (g_rx_head + 1u) & RX_MASK;
  if (next != g_rx_tail) {  /* a full ring drops the byte; the line then fails to parse */
    g_rx[g_rx_head] = b;
    g_rx_head = next;
  }
}

static uint8_t tx_free(void)
{
  return (uint8_t)((g_tx_tail - g_tx_head - 1u) & TX_MASK);
}

static void tx_kick(void)
{
  UCSR0B |= _BV(UDRIE0);
}

static void tx_put(uint8_t b)
{
  while (tx_free() == 0) {
    tx_kick();
  }
  g_tx[g_tx_head] = b;
  g_tx_head = (g_tx_head + 1u) & TX_MASK;
}

static void tx_puts(const char *s)
{
  while (*s)
    tx_put((uint8_t)*s++);
  tx_kick();
}

/* Text from flash: string literals would otherwise be copied into the 2 KB of RAM. */
static void tx_puts_P(PGM_P s)
{
  char c;
  while ((c = (char)pgm_read_byte(s++)) != '\0')
    tx_put((uint8_t)c);
  tx_kick();
}

static void tx_put_uint(uint16_t v)
{
  char buf[6];
  utoa(v, buf, 10);
  tx_puts(buf);
}

static void uart_init(void)
{
  /* U2X0 before UBRR0: simavr derives its byte time when UBRR0L is written (the real
   * chip does not care about the order). */
  UCSR0A = _BV(U2X0);
  UBRR0 = (uint16_t)UBRR_VALUE;
  UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);  /* 8N1 */
  UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
}

/* ---- sampling configuration --------------------------------------------------------- */

/* Highest rate for n channels: the ADC chain (13 ADC clocks at /64 plus ~64 cycles of ISR
 * per channel) must fit in 90 % of a tick, and a frame in 90 % of the link's time. */
static uint16_t fs_max(uint8_t n)
{
  uint32_t adc = (F_CPU * 9UL / 10UL) / ((uint32_t)n * (13UL * 64UL + 64UL));
  uint32_t link = (EMGFB_BAUD * 9UL / 10UL) / (10UL * EMGFB_FRAME_LEN(n));
  uint32_t m = adc < link ? adc : link;
  return (uint16_t)(m < EMGFB_FS_MAX_ABS ? m : EMGFB_FS_MAX_ABS);
}

static void sampling_start(void)
{
  static const uint16_t prescalers[] = {1, 8, 64, 256, 1024};
  uint32_t period = F_CPU / g_fs;  /* CPU cycles per tick */
  uint8_t cs = 1;
  uint32_t top = period;
  for (uint8_t i = 0; i < 5; i++) {
    top = (F_CPU / prescalers[i] + g_fs / 2u) / g_fs;
    cs = i + 1u;
    if (top <= 65536UL)
      break;
  }
  /* Slowest ADC clock (most accurate) whose conversion chain fits in 90 % of a tick. */
  uint8_t adps = _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0);  /* /128 */
  if ((uint32_t)g_nch * (13UL * 128UL + 64UL) > period * 9UL / 10UL)
    adps = _BV(ADPS2) | _BV(ADPS1);  /* /64 */

  TCCR1B = 0;
  TIMSK1 = 0;
  g_nch_isr = g_nch;
  g_seq = 0;
  g_q_head = g_q_tail = 0;
  g_adc_busy = 0;
  g_dropped = 0;
  /* No digital input buffers on the EMG pins. ADC6/ADC7 of the 328P have none (DIDR0
   * bits 6-7 are reserved there); the 2560's ADC8..ADC15 are in DIDR2. */
  uint16_t pins = (uint16_t)((1UL << g_nch) - 1UL);
#if MAX_CH > 8
  DIDR0 = (uint8_t)pins;
  DIDR2 = (uint8_t)(pins >> 8);
#else
  DIDR0 = (uint8_t)(pins & 0x3Fu);
#endif
  adc_select(0);
  ADCSRA = _BV(ADEN) | _BV(ADIE) | adps;
  /* CTC on OCR1A. The clock starts first (simavr only applies OCR1A in a running mode);
   * TCNT1 = 0 and the cleared flag then make tick 0 fall exactly one period later. */
  TCCR1A = 0;
  TCCR1B = _BV(WGM12) | cs;
  OCR1A = (uint16_t)(top - 1u);
  TCNT1 = 0;
  TIFR1 = _BV(OCF1A);
  g_streaming = 1;
  TIMSK1 = _BV(OCIE1A);
}

static uint8_t encode_pending(void)
{
  uint8_t len = EMGFB_FRAME_LEN(g_nch_isr);
  uint8_t sent = 0;
  while (g_q_tail != g_q_head && tx_free() >= len) {
    uint8_t frame[EMGFB_FRAME_LEN(MAX_CH)];
    const SampleSet *s = &g_queue[g_q_tail];
    emgfb_encode_frame(frame, s->seq, g_nch_isr, s->overrun, s->counts);
    g_q_tail = (g_q_tail + 1u) & QUEUE_MASK;
    for (uint8_t i = 0; i < len; i++) {
      g_tx[g_tx_head] = frame[i];
      g_tx_head = (g_tx_head + 1u) & TX_MASK;
    }
    sent = 1;
  }
  if (sent)
    tx_kick();
  return sent;
}

static void sampling_stop(void)
{
  TIMSK1 = 0;
  TCCR1B = 0;
  while (g_adc_busy) {
  }
  /* Frames of ticks sampled before the stop still go out, then text may follow. */
  while (g_q_tail != g_q_head)
    encode_pending();
  g_streaming = 0;
}

/* ---- commands ----------------------------------------------------------------------- */

#define LINE_LEN 24u
static char g_line[LINE_LEN];
static uint8_t g_line_len;
static uint8_t g_line_overflow;

static void send_info(void)
{
  tx_puts_P(PSTR("EMGFB fw=" EMGFB_FW_VERSION " board=" EMGFB_BOARD " ch="));
  tx_put_uint(g_nch);
  tx_puts_P(PSTR(" fs="));
  tx_put_uint(g_fs);
  tx_puts_P(PSTR(" bits="));
  tx_put_uint(EMGFB_ADC_BITS);
  tx_puts_P(PSTR(" vref_mv="));
  tx_put_uint(EMGFB_VREF_MV);
  tx_puts_P(PSTR("\n"));
}

/* Parse a decimal integer 1..max; returns 0 if arg is not one. */
static uint16_t parse_uint(const char *arg, uint16_t max)
{
  uint32_t v = 0;
  if (*arg == '\0')
    return 0;
  for (; *arg; arg++) {
    if (*arg < '0' || *arg > '9')
      return 0;
    v = v * 10u + (uint8_t)(*arg - '0');
    if (v > max)
      return 0;
  }
  return (uint16_t)v;
}

static void cmd_fs(const char *arg)
{
  uint16_t max = fs_max(g_nch);
  uint16_t fs = parse_uint(arg, max);
  if (!fs) {
    tx_puts_P(PSTR("ERR fs expects an integer 1.."));
    tx_put_uint(max);
    tx_puts_P(PSTR(" Hz for ch="));
    tx_put_uint(g_nch);
    tx_puts_P(PSTR("\n"));
    return;
  }
  g_fs = fs;
}

static void cmd_ch(const char *arg)
{
  uint8_t n = (uint8_t)parse_uint(arg, MAX_CH);
  if (!n) {
    tx_puts_P(PSTR("ERR ch expects an integer 1.."));
    tx_put_uint(MAX_CH);
    tx_puts_P(PSTR("\n"));
    return;
  }
  if (g_fs > fs_max(n)) {
    tx_puts_P(PSTR("ERR ch "));
    tx_put_uint(n);
    tx_puts_P(PSTR(" allows fs up to "));
    tx_put_uint(fs_max(n));
    tx_puts_P(PSTR(" Hz, lower fs first\n"));
    return;
  }
  g_nch = n;
}

static void handle_line(void)
{
  const char *line = g_line;
  if (g_streaming) {
    if (strcmp(line, "stop") == 0)
      sampling_stop();
    return;  /* text replies only while stopped: everything else is ignored */
  }
  if (g_line_overflow) {
    tx_puts_P(PSTR("ERR line too long\n"));
  } else if (line[0] == '\0' || strcmp(line, "stop") == 0) {
    /* empty line or already stopped: nothing to do */
  } else if (strcmp(line, "?") == 0) {
    send_info();
  } else if (strcmp(line, "start") == 0) {
    sampling_start();
  } else if (strncmp(line, "fs ", 3) == 0) {
    cmd_fs(line + 3);
  } else if (strncmp(line, "ch ", 3) == 0) {
    cmd_ch(line + 3);
  } else {
    tx_puts_P(PSTR("ERR unknown command '"));
    tx_puts(line);
    tx_puts_P(PSTR("', expected ?, start, stop, fs <Hz> or ch <n>\n"));
  }
}

static uint8_t poll_commands(void)
{
  uint8_t any = 0;
  while (g_rx_tail != g_rx_head) {
    char c = (char)g_rx[g_rx_tail];
    g_rx_tail = (g_rx_tail + 1u) & RX_MASK;
    any = 1;
    if (c == '\n') {
      g_line[g_line_len] = '\0';
      handle_line();
      g_line_len = 0;
      g_line_overflow = 0;
    } else if (c == '\r') {
      /* accept CR LF line ends */
    } else if (g_line_len < LINE_LEN - 1u) {
      g_line[g_line_len++] = c;
    } else {
      g_line_overflow = 1;
    }
  }
  return any;
}

/* ---- Arduino entry points ----------------------------------------------------------- */

void setup()
{
  TIMSK0 = 0;  /* no millis(): Timer0's 1 kHz interrupt would only add jitter and load */
  uart_init();
  set_sleep_mode(SLEEP_MODE_IDLE);
  /* One polled conversion now: the first after enabling the ADC takes 25 ADC clocks
   * instead of 13 and would make tick 0 of the first run late at high rates. */
  adc_select(0);
  ADCSRA = _BV(ADEN) | _BV(ADSC) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0);
  while (ADCSRA & _BV(ADSC)) {
  }
  sei();
  send_info();  /* once at boot, then wait for "start" */
}

void loop()
{
  poll_commands();
  if (g_streaming)
    encode_pending();
  /* Sleep until there is work. Each wake-up (every UART byte while sending) only re-checks
   * three conditions here instead of running the whole loop; SEI's one-instruction delay
   * guarantees no wake-up is lost between the check and SLEEP. */
  for (;;) {
    cli();
    if (g_rx_tail != g_rx_head ||
        (g_streaming && g_q_tail != g_q_head && tx_free() >= EMGFB_FRAME_LEN(g_nch_isr)))
      break;
    sleep_enable();
    sei();
    sleep_cpu();
    sleep_disable();
  }
  sei();
}
