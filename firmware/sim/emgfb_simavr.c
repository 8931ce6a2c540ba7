/*
 * emgfb_simavr.c - run the emgfb firmware (an AVR ELF) in simavr behind a pty.
 *
 * The simulated AVR's (ATmega328P by default, --mcu atmega2560 for the Mega) UART0 is bridged to a pseudo-terminal, losslessly: bytes the
 * firmware sends are written to the pty master with back-pressure (a slow reader pauses
 * the simulation, nothing is dropped), and bytes a host writes to the pty are fed into the
 * UART on a 1 ms simulated-time timer, honouring the UART's XON/XOFF. Analog inputs are
 * answered at the moment each conversion starts with a waveform value in millivolts at
 * the current *simulated* time, so runs are deterministic. Idle SLEEP is skipped (no
 * wall-clock waiting) unless --speed asks for pacing; a board that has been idle (no UART
 * traffic, no conversions) for 20 simulated ms runs at real time until something happens.
 *
 * Usage: emgfb_simavr [options] FIRMWARE.elf
 *   --mcu NAME          simavr core: atmega328p (Uno, Nano; default) or atmega2560 (Mega)
 *   --link PATH         also create a symlink PATH -> pty slave (removed at exit)
 *   --sine CH:HZ:AMP_MV[:OFFSET_MV[:PHASE_DEG]]   add a sine on analog input CH (repeatable)
 *   --wave FILE         add a waveform file (format in firmware/README.md); it restarts at
 *                       row 0 with the first conversion after each "start" from the host
 *   --speed X           pace at X times real time (default 0: as fast as possible)
 *   --max-seconds S     stop after S simulated seconds
 *   --stats FILE        write run statistics (JSON) to FILE at exit
 *   --watch-stdin       exit when stdin reaches end of file (parent went away)
 *
 * Prints exactly one line on stdout: the pty path (the symlink if --link was given).
 * Diagnostics and simavr's own messages go to stderr. SIGTERM/SIGINT end it cleanly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "avr_adc.h"
#include "avr_uart.h"
#include "sim_avr.h"
#include "sim_cycle_timers.h"
#include "sim_elf.h"
#include "sim_irq.h"

#define DEFAULT_MCU "atmega328p"
#define F_CPU 16000000u
#define SUPPLY_MV 5000u
#define N_INPUTS 16
#define MAX_SINES 64
#define OUT_BUF 4096
#define IN_BUF 64
/* A waveform row is held from this fraction of a row period before its tick until the same
 * fraction before the next: the firmware's conversion chain of one tick spans at most 90 %
 * of it (fs_max), so every channel of tick i reads row i (16 ch @ 1 kHz on the Mega: the
 * last conversion starts 84 % into the tick), with margin for ISR jitter at 10 kHz. */
#define WAVE_LEAD 0.08
#define HIGH_BANK_MARK 0xA8u /* see remap_high_adc_inputs */

struct sine {
    int ch;
    double hz, amp_mv, offset_mv, phase_rad;
};

static struct {
    avr_t *avr;
    int master, slave, watch_stdin;
    char link[PATH_MAX];
    uint8_t out[OUT_BUF];
    size_t out_len;
    uint8_t in[IN_BUF];
    size_t in_len, in_pos;
    int xoff;
    avr_irq_t *uart_in, *adc_in;
    avr_cycle_count_t tick_cycles, max_cycles;
    unsigned ticks, idle_ticks;
    uint64_t last_activity;
    /* waveforms */
    struct sine sines[MAX_SINES];
    int n_sines;
    int32_t *wave;
    size_t wave_len;
    int wave_ch;
    double wave_rate;
    /* pacing */
    double speed;
    struct timespec wall0;
    /* statistics */
    uint64_t sleep_cycles, conversions, bytes_out, bytes_in;
    int triggered, start_seen;
    unsigned runs;
    char line[16];
    size_t line_len;
    uint64_t first_cycle, first_sleep, last_cycle, last_sleep;
} H;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "emgfb_simavr: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    if (H.link[0])
        unlink(H.link);
    exit(2);
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)(ts.tv_sec - H.wall0.tv_sec) + 1e-9 * (double)(ts.tv_nsec - H.wall0.tv_nsec);
}

/* True if stdin says the parent is gone (EOF or error). */
static int stdin_closed(void)
{
    struct pollfd p = {.fd = 0, .events = POLLIN};
    char buf[64];
    if (!H.watch_stdin || poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
        return 1;
    return read(0, buf, sizeof buf) <= 0;
}

/* Write the output buffer to the pty master, waiting (back-pressure) as long as the reader
 * is slow; gives up only when asked to stop. */
static void flush_out(void)
{
    size_t done = 0;
    while (done < H.out_len && !g_stop) {
        ssize_t n = write(H.master, H.out + done, H.out_len - done);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            die("write to pty failed: %s", strerror(errno));
        struct pollfd p[2] = {{.fd = H.master, .events = POLLOUT}, {.fd = 0, .events = POLLIN}};
        if (poll(p, H.watch_stdin ? 2 : 1, 200) > 0 && H.watch_stdin && p[1].revents &&
            stdin_closed())
            g_stop = 1;
    }
    H.bytes_out += done;
    H.out_len = 0;
}

static void uart_out_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    H.out[H.out_len++] = (uint8_t)value;
    if (H.out_len == OUT_BUF)
        flush_out();
}

static void uart_xon_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    (void)param;
    H.xoff = 0;
}

static void uart_xoff_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    (void)param;
    H.xoff = 1;
}

/* Note a "start" command line from the host (see adc_trigger_hook). */
static void watch_for_start(uint8_t b)
{
    if (b == '\n') {
        H.line[H.line_len] = '\0';
        if (strcmp(H.line, "start") == 0 || strcmp(H.line, "start\r") == 0)
            H.start_seen = 1;
        H.line_len = 0;
    } else if (H.line_len < sizeof H.line - 1) {
        H.line[H.line_len++] = (char)b;
    }
}

/* Host -> UART: pass pending bytes while the UART's input FIFO has room. */
static void feed_input(void)
{
    if (H.in_pos == H.in_len) {
        ssize_t n = read(H.master, H.in, IN_BUF);
        if (n <= 0)
            return; /* EAGAIN: nothing written by the host */
        H.in_len = (size_t)n;
        H.in_pos = 0;
        H.bytes_in += (uint64_t)n;
    }
    while (H.in_pos < H.in_len && !H.xoff) {
        uint8_t b = H.in[H.in_pos++];
        watch_for_start(b);
        avr_raise_irq(H.uart_in, b);
    }
}

static void pace(void)
{
    if (H.speed <= 0)
        return;
    double sim = (double)H.avr->cycle / H.avr->frequency / H.speed;
    double ahead = sim - wall_now();
    if (ahead > 0.0005) {
        struct timespec ts = {.tv_sec = (time_t)ahead,
                              .tv_nsec = (long)((ahead - (double)(time_t)ahead) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* Unpaced, an idle board (stopped, waiting for a command) would still simulate its sleep
 * as fast as possible and burn a core: after 20 ms without UART traffic or conversions,
 * wait up to 1 ms of wall time per simulated ms for host input instead. */
static void idle_wait(void)
{
    uint64_t activity = H.bytes_out + H.bytes_in + H.conversions;
    struct pollfd p[2] = {{.fd = H.master, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    H.idle_ticks = activity == H.last_activity ? H.idle_ticks + 1 : 0;
    H.last_activity = activity;
    if (H.speed <= 0 && H.idle_ticks > 20 && H.in_pos == H.in_len &&
        poll(p, H.watch_stdin ? 2 : 1, 1) > 0 && H.watch_stdin && p[1].revents &&
        stdin_closed())
        g_stop = 1;
}

static avr_cycle_count_t periodic(avr_t *avr, avr_cycle_count_t when, void *param)
{
    (void)avr;
    (void)param;
    flush_out();
    feed_input();
    pace();
    idle_wait();
    if (++H.ticks % 64 == 0 && stdin_closed())
        g_stop = 1;
    return when + H.tick_cycles;
}

/* A conversion starts: set the input's voltage (mV) at this simulated instant. */
static void adc_trigger_hook(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    union {
        avr_adc_mux_t mux;
        uint64_t raw;
    } e;
    e.raw = value;
    if (e.mux.kind != ADC_MUX_SINGLE || e.mux.src >= N_INPUTS)
        return;
    int src = (int)e.mux.src;
    int input = src + (e.mux.diff == HIGH_BANK_MARK ? 8 : 0); /* see remap_high_adc_inputs */
    uint64_t cyc = H.avr->cycle;
    if (!H.triggered || H.start_seen) {
        /* A new sampling run: the first conversion after the host sent a "start" line (or
         * the very first, the firmware's warm-up at boot). The waveform file restarts at
         * row 0 and the load statistics cover the latest run only. Keyed to the command,
         * not to timing, so the result does not depend on how fast the host talks. */
        H.triggered = 1;
        H.start_seen = 0;
        H.first_cycle = cyc;
        H.first_sleep = H.sleep_cycles;
        H.runs++;
    }
    H.last_cycle = cyc;
    H.last_sleep = H.sleep_cycles;
    H.conversions++;

    double mv = 0.0;
    if (H.wave && input < H.wave_ch) {
        /* Row i is held from WAVE_LEAD of a row before first_cycle + i/rate: with rate == fs,
         * every conversion of tick i reads row i, despite a few cycles of ISR jitter. */
        double x = (double)(cyc - H.first_cycle) * H.wave_rate / H.avr->frequency + WAVE_LEAD;
        size_t row = (size_t)floor(x) % H.wave_len;
        mv += H.wave[row * (size_t)H.wave_ch + (size_t)input];
    }
    double t = (double)cyc / H.avr->frequency;
    for (int i = 0; i < H.n_sines; i++) {
        const struct sine *s = &H.sines[i];
        if (s->ch == input)
            mv += s->offset_mv + s->amp_mv * sin(2.0 * M_PI * s->hz * t + s->phase_rad);
    }
    long v = lround(mv);
    if (v < 0)
        v = 0;
    if (v > (long)SUPPLY_MV)
        v = SUPPLY_MV;
    avr_raise_irq(H.adc_in + src, (uint32_t)v);
}

/* simavr 1.6 keeps only 8 input voltages (avr_adc_t.adc_values[8]) although its ATmega2560
 * mux table selects ADC8..ADC15 (MUX5 = 1, mux index 32..39): those conversions read past
 * the array and return 0. Remap the eight single-ended high-bank modes onto slots 0..7,
 * tagged with an otherwise unused `diff` value, so the trigger hook knows the real input
 * (8 + src) and stores its voltage in slot src just before simavr reads it. Every
 * conversion is preceded by its own trigger, so slots shared with ADC0..7 never leak. */
static int remap_high_adc_inputs(avr_t *avr)
{
    for (avr_io_t *io = avr->io_port; io; io = io->next) {
        if (!io->kind || strcmp(io->kind, "adc") != 0)
            continue;
        avr_adc_t *adc = (avr_adc_t *)io;
        int n = 0;
        for (int i = 32; i < 40; i++) {
            avr_adc_mux_t *m = &adc->muxmode[i];
            if (m->kind == ADC_MUX_SINGLE && m->src == (unsigned)(i - 24)) {
                m->src = (unsigned)(i - 32);
                m->diff = HIGH_BANK_MARK;
                n++;
            }
        }
        return n;
    }
    return 0;
}

static void sim_sleep(avr_t *avr, avr_cycle_count_t how_long)
{
    (void)avr;
    H.sleep_cycles += how_long + 1; /* the core adds 1 + how_long cycles */
}

static void parse_sine(const char *arg)
{
    struct sine s = {.offset_mv = 0, .phase_rad = 0};
    double phase_deg = 0;
    int n = sscanf(arg, "%d:%lf:%lf:%lf:%lf", &s.ch, &s.hz, &s.amp_mv, &s.offset_mv, &phase_deg);
    if (n < 3 || s.ch < 0 || s.ch >= N_INPUTS || s.hz < 0)
        die("--sine %s: expected CH:HZ:AMP_MV[:OFFSET_MV[:PHASE_DEG]] with CH 0..15", arg);
    if (H.n_sines == MAX_SINES)
        die("--sine %s: too many sines (at most 64)", arg);
    s.phase_rad = phase_deg * M_PI / 180.0;
    H.sines[H.n_sines++] = s;
}

static void load_wave(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    size_t cap = 0, lineno = 0;
    int magic = 0;
    if (!f)
        die("--wave %s: cannot open", path);
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        lineno++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
            continue;
        if (!magic) {
            if (strncmp(p, "emgfb-wave 1", 12) != 0)
                die("--wave %s: first line must be 'emgfb-wave 1'", path);
            magic = 1;
        } else if (strncmp(p, "rate_hz ", 8) == 0) {
            H.wave_rate = strtod(p + 8, NULL);
        } else if (strncmp(p, "channels ", 9) == 0) {
            H.wave_ch = atoi(p + 9);
        } else {
            if (H.wave_ch < 1 || H.wave_ch > N_INPUTS || !(H.wave_rate > 0))
                die("--wave %s: rate_hz > 0 and channels 1..16 must precede the data", path);
            if (H.wave_len == cap) {
                cap = cap ? 2 * cap : 4096;
                H.wave = realloc(H.wave, cap * (size_t)H.wave_ch * sizeof *H.wave);
                if (!H.wave)
                    die("--wave %s: out of memory", path);
            }
            for (int c = 0; c < H.wave_ch; c++) {
                char *end;
                long v = strtol(p, &end, 10);
                if (end == p) {
                    fprintf(stderr, "emgfb_simavr: --wave %s line %zu: ", path, lineno);
                    die("expected %s integer millivolt values", "channels");
                }
                H.wave[H.wave_len * (size_t)H.wave_ch + (size_t)c] = (int32_t)v;
                p = end;
            }
            H.wave_len++;
        }
    }
    fclose(f);
    if (!H.wave_len)
        die("--wave %s: no data rows", path);
}

static void write_stats(const char *path, double wall)
{
    double sim = (double)H.avr->cycle / H.avr->frequency;
    double load = H.avr->cycle ? 1.0 - (double)H.sleep_cycles / (double)H.avr->cycle : 0;
    double span = (double)(H.last_cycle - H.first_cycle);
    double load_stream = span > 0 ? 1.0 - (double)(H.last_sleep - H.first_sleep) / span : 0;
    fprintf(stderr,
            "emgfb_simavr: %.3f s simulated in %.3f s (%.2fx), AVR load %.1f %% (while "
            "sampling %.1f %%), %u sampling runs, %llu conversions, %llu bytes out, %llu in\n",
            sim, wall, wall > 0 ? sim / wall : 0, 100 * load, 100 * load_stream, H.runs,
            (unsigned long long)H.conversions, (unsigned long long)H.bytes_out,
            (unsigned long long)H.bytes_in);
    if (!path)
        return;
    FILE *f = fopen(path, "w");
    if (!f)
        die("--stats %s: cannot write", path);
    fprintf(f,
            "{\"sim_seconds\": %.6f, \"wall_seconds\": %.6f, \"speed\": %.4f, "
            "\"cycles\": %llu, \"sleep_cycles\": %llu, \"cpu_load\": %.5f, "
            "\"cpu_load_sampling\": %.5f, \"sampling_runs\": %u, \"adc_conversions\": %llu, "
            "\"bytes_out\": %llu, \"bytes_in\": %llu}\n",
            sim, wall, wall > 0 ? sim / wall : 0, (unsigned long long)H.avr->cycle,
            (unsigned long long)H.sleep_cycles, load, load_stream, H.runs,
            (unsigned long long)H.conversions, (unsigned long long)H.bytes_out,
            (unsigned long long)H.bytes_in);
    fclose(f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"link", required_argument, 0, 'l'},   {"sine", required_argument, 0, 's'},
        {"wave", required_argument, 0, 'w'},   {"speed", required_argument, 0, 'x'},
        {"max-seconds", required_argument, 0, 'm'}, {"stats", required_argument, 0, 'j'},
        {"watch-stdin", no_argument, 0, 'i'},  {"mcu", required_argument, 0, 'u'},
        {0, 0, 0, 0}};
    const char *stats = NULL;
    const char *mcu = DEFAULT_MCU;
    double max_seconds = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l': snprintf(H.link, sizeof H.link, "%s", optarg); break;
        case 's': parse_sine(optarg); break;
        case 'w': load_wave(optarg); break;
        case 'x': H.speed = atof(optarg); break;
        case 'm': max_seconds = atof(optarg); break;
        case 'j': stats = optarg; break;
        case 'i': H.watch_stdin = 1; break;
        case 'u': mcu = optarg; break;
        default: die("usage: %s [options] FIRMWARE.elf (see the source header)", argv[0]);
        }
    }
    if (optind != argc - 1)
        die("usage: %s [options] FIRMWARE.elf (see the source header)", argv[0]);

    /* libsimavr prints to stdout; keep stdout for the one line announcing the pty. */
    int announce_fd = dup(1);
    dup2(2, 1);
    FILE *announce = fdopen(announce_fd, "w");

    elf_firmware_t fw;
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(argv[optind], &fw) != 0)
        die("cannot read firmware ELF %s", argv[optind]);
    H.avr = avr_make_mcu_by_name(mcu);
    if (!H.avr)
        die("simavr does not know %s", mcu);
    avr_init(H.avr);
    avr_load_firmware(H.avr, &fw);
    H.avr->frequency = F_CPU;
    H.avr->vcc = H.avr->avcc = H.avr->aref = SUPPLY_MV;
    H.avr->sleep = sim_sleep;
    H.avr->log = LOG_WARNING;
    if (remap_high_adc_inputs(H.avr))
        fprintf(stderr, "emgfb_simavr: %s: ADC8..ADC15 remapped (simavr 1.6 holds 8 inputs)\n",
                mcu);

    uint32_t flags = 0;
    avr_ioctl(H.avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
    avr_ioctl(H.avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    avr_irq_register_notify(avr_io_getirq(H.avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
                            uart_out_hook, NULL);
    avr_irq_register_notify(avr_io_getirq(H.avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
                            uart_xon_hook, NULL);
    avr_irq_register_notify(avr_io_getirq(H.avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
                            uart_xoff_hook, NULL);
    H.uart_in = avr_io_getirq(H.avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    H.adc_in = avr_io_getirq(H.avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0);
    avr_irq_register_notify(avr_io_getirq(H.avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_OUT_TRIGGER),
                            adc_trigger_hook, NULL);

    char slave_name[PATH_MAX];
    struct termios tio;
    if (openpty(&H.master, &H.slave, slave_name, NULL, NULL) != 0)
        die("openpty failed: %s", strerror(errno));
    tcgetattr(H.slave, &tio);
    cfmakeraw(&tio);
    tcsetattr(H.slave, TCSANOW, &tio);
    fcntl(H.master, F_SETFL, fcntl(H.master, F_GETFL) | O_NONBLOCK);
    if (H.link[0]) {
        struct stat st;
        if (lstat(H.link, &st) == 0 && S_ISLNK(st.st_mode))
            unlink(H.link);
        if (symlink(slave_name, H.link) != 0) {
            fprintf(stderr, "emgfb_simavr: cannot create symlink %s -> %s: %s\n", H.link,
                    slave_name, strerror(errno));
            return 2;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked poll/write returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    H.tick_cycles = F_CPU / 1000u;
    H.max_cycles = max_seconds > 0 ? (avr_cycle_count_t)(max_seconds * F_CPU) : 0;
    avr_cycle_timer_register(H.avr, H.tick_cycles, periodic, NULL);
    clock_gettime(CLOCK_MONOTONIC, &H.wall0);

    fprintf(announce, "%s\n", H.link[0] ? H.link : slave_name);
    fflush(announce);

    int state = cpu_Running;
    while (!g_stop) {
        state = avr_run(H.avr);
        if (state == cpu_Done || state == cpu_Crashed)
            break;
        if (H.max_cycles && H.avr->cycle >= H.max_cycles)
            break;
    }
    if (!g_stop)
        flush_out();
    write_stats(stats, wall_now());
    if (H.link[0])
        unlink(H.link);
    fclose(announce);
    close(H.master);
    close(H.slave);
    return state == cpu_Crashed ? 1 : 0;
}
