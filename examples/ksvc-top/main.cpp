// ksvc-top — live counters of running ksvc instances, read from outside the process.
//
//   ksvc-top [PID]              refresh every second, like top (q or Ctrl-C quits)
//   ksvc-top --json [PID]       one JSON object: totals, and rates over --delay seconds
//
// Each ksvc instance publishes its counters in /dev/shm/ksvc.<pid>.<serial> (mode 0600:
// only its user, or root, can read them; $KSVC_COUNTERS_DIR moves the directory). Exit status:
// 0, 1 when no running instance publishes counters (for PID), 2 on a usage error.
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ksvc/core/counters.hpp>
#include <ksvc/core/operations.hpp>
#include <ksvc/core/syscalls.hpp>
#include <ksvc/core/tier.hpp>
#include <ksvc/module/counters/publisher.hpp>

namespace {

struct options {
    std::optional<long> pid;
    bool json = false;
    double delay = 1.0;
    long iterations = -1; // -1: until quit
    std::size_t top = 15;
};

void usage(std::FILE* f) {
    std::fprintf(f,
                 "usage: ksvc-top [OPTIONS] [PID]\n"
                 "Show the live counters of running ksvc instances (all, or those of PID).\n"
                 "\n"
                 "  --json            print one JSON object and exit: totals, and rates over --delay\n"
                 "  -d, --delay SECS  seconds between refreshes (default 1; with --json, 0 means no rates)\n"
                 "  -n, --iterations N  refresh N times, then exit\n"
                 "  --top N           syscall rows shown (default 15)\n"
                 "  -h, --help        show this help\n"
                 "\n"
                 "Counters live in $KSVC_COUNTERS_DIR (default /dev/shm), one file per instance,\n"
                 "readable by the instance's user only. An instance publishes unless KSVC_COUNTERS=0.\n"
                 "Exit status: 0, 1 when no running instance publishes counters, 2 on a usage error.\n");
}

[[noreturn]] void usage_error(const std::string& m) {
    std::fprintf(stderr, "ksvc-top: %s\n", m.c_str());
    usage(stderr);
    std::exit(2);
}

double parse_double(const char* s, const char* what) {
    char* end = nullptr;
    const double v = std::strtod(s, &end);
    if (end == s || *end || v < 0 || v > 3600) usage_error(std::string("invalid ") + what + " '" + s + "'");
    return v;
}

options parse_args(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        auto value = [&](const char* what) -> const char* {
            if (i + 1 >= argc) usage_error(std::string(what) + " needs a value");
            return argv[++i];
        };
        if (a == "--json") o.json = true;
        else if (a == "-d" || a == "--delay") o.delay = parse_double(value("--delay"), "delay");
        else if (a == "-n" || a == "--iterations") o.iterations = static_cast<long>(parse_double(value("--iterations"), "iteration count"));
        else if (a == "--top") o.top = static_cast<std::size_t>(parse_double(value("--top"), "row count"));
        else if (a == "-h" || a == "--help") {
            usage(stdout);
            std::exit(0);
        } else if (!a.empty() && a[0] != '-') {
            char* end = nullptr;
            const long p = std::strtol(argv[i], &end, 10);
            if (*end || p <= 0 || o.pid) usage_error("invalid PID '" + std::string(a) + "'");
            o.pid = p;
        } else {
            usage_error("unknown option '" + std::string(a) + "'");
        }
    }
    return o;
}

std::string number_name(std::uint32_t nr) {
    if (nr == 0xffffffffu) return "(other)";
    if (ksvc::is_operation(nr)) {
        const auto i = nr - ksvc::operation_base;
        if (i < ksvc::operation_table.size()) return "op:" + std::string(ksvc::operation_table[i].name);
        return "op:" + std::to_string(i);
    }
    const std::string_view n = ksvc::syscalls::name_of(nr);
    return n.empty() ? "syscall " + std::to_string(nr) : std::string(n);
}

struct sample {
    ksvc::counter_totals t;
    std::chrono::steady_clock::time_point at;
};

//! One instance being watched: its mapping and the previous sample (for rates).
struct watched {
    ksvc::published_counters where;
    ksvc::counters_view view;
    std::unique_ptr<sample> prev, cur;
};

std::unique_ptr<sample> take(const ksvc::counters_block& b) {
    auto s = std::make_unique<sample>();
    s->t = ksvc::read_totals(b);
    s->at = std::chrono::steady_clock::now();
    return s;
}

double rate(std::uint64_t now, std::uint64_t before, double secs) {
    return secs > 0 && now >= before ? static_cast<double>(now - before) / secs : 0.0;
}

std::uint64_t in_flight(std::uint64_t calls, std::uint64_t done) { return calls > done ? calls - done : 0; }

std::string json_str(std::string_view s) {
    std::string o = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') o += '\\', o += ch;
        else if (c == '\n') o += "\\n";
        else if (c < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            o += b;
        } else o += ch;
    }
    return o + "\"";
}

double uptime(const ksvc::counters_block& b) {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    const std::int64_t now = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    return static_cast<double>(now - b.started_ns) / 1e9;
}

std::string load_text(const char* field, std::size_t cap) { return std::string(field, strnlen(field, cap)); }

void print_json(const std::vector<std::unique_ptr<watched>>& ws) {
    std::printf("{\"instances\": [");
    bool first_inst = true;
    for (const auto& w : ws) {
        const ksvc::counters_block& b = *w->view;
        const ksvc::counter_totals& t = w->cur->t;
        const double secs = w->prev ? std::chrono::duration<double>(w->cur->at - w->prev->at).count() : 0.0;
        const ksvc::counter_totals* p = w->prev ? &w->prev->t : nullptr;
        std::printf("%s\n  {\"pid\": %ld, \"serial\": %" PRIu64 ", \"name\": %s, \"backend\": %s, \"dispatch\": %s, "
                    "\"uptime_s\": %.3f, \"interval_s\": %.3f,\n",
                    first_inst ? "" : ",", w->where.pid, w->where.serial, json_str(load_text(b.name, sizeof b.name)).c_str(),
                    json_str(load_text(b.backend, sizeof b.backend)).c_str(),
                    json_str(load_text(b.dispatch, sizeof b.dispatch)).c_str(), uptime(b), secs);
        first_inst = false;
        std::printf("   \"ring\": {\"setup_flags\": %u, \"features\": %u, \"sq_entries\": %u, \"cq_entries\": %u, "
                    "\"fixed_files\": %u, \"registered_ring_fd\": %s, \"notes\": %s},\n",
                    b.setup_flags.load(), b.ring_features.load(), b.sq_entries.load(), b.cq_entries.load(), b.fixed_files.load(),
                    b.registered_ring_fd.load() ? "true" : "false", json_str(load_text(b.features, sizeof b.features)).c_str());
        std::printf("   \"workers\": {\"busy\": %" PRIu64 ", \"total\": %" PRIu64 ", \"max\": %" PRIu64 ", \"queued\": %" PRIu64 "},\n",
                    b.workers_busy.load(), b.workers_total.load(), b.workers_max.load(), b.workers_queued.load());
        std::printf("   \"completions_delivered\": %" PRIu64 ", \"completions_per_s\": %.1f, \"enobufs\": %" PRIu64
                    ", \"cq_overflows\": %" PRIu64 ", \"stream_rearms\": %" PRIu64 ", \"loop_turns\": %" PRIu64 ",\n",
                    t.delivered, p ? rate(t.delivered, p->delivered, secs) : 0.0, t.enobufs, b.cq_overflows.load(),
                    b.stream_rearms.load(), b.loop_turns.load());
        std::printf("   \"tiers\": [");
        for (std::size_t i = 0; i < ksvc::tier_count; ++i) {
            std::printf("%s{\"tier\": \"%s\", \"calls\": %" PRIu64 ", \"failures\": %" PRIu64 ", \"in_flight\": %" PRIu64
                        ", \"calls_per_s\": %.1f}",
                        i ? ", " : "", std::string(ksvc::to_string(static_cast<ksvc::tier>(i))).c_str(), t.tier_calls[i],
                        t.tier_failures[i], in_flight(t.tier_calls[i], t.tier_done[i]),
                        p ? rate(t.tier_calls[i], p->tier_calls[i], secs) : 0.0);
        }
        std::printf("],\n   \"syscalls\": [");
        bool first = true;
        for (std::size_t i = 0; i < ksvc::counters_slots; ++i) {
            if (!t.calls[i]) continue;
            const std::uint32_t nr = ksvc::counter_number(i);
            std::printf("%s\n     {\"nr\": %" PRIu32 ", \"name\": %s, \"calls\": %" PRIu64 ", \"failures\": %" PRIu64
                        ", \"in_flight\": %" PRIu64 ", \"calls_per_s\": %.1f}",
                        first ? "" : ",", nr, json_str(number_name(nr)).c_str(), t.calls[i], t.failures[i],
                        in_flight(t.calls[i], t.done[i]), p ? rate(t.calls[i], p->calls[i], secs) : 0.0);
            first = false;
        }
        std::printf("]}");
    }
    std::printf("\n]}\n");
}

void print_screen(const std::vector<std::unique_ptr<watched>>& ws, const options& o, bool tty) {
    if (tty) std::printf("\x1b[H\x1b[2J");
    for (const auto& w : ws) {
        const ksvc::counters_block& b = *w->view;
        const ksvc::counter_totals& t = w->cur->t;
        const double secs = w->prev ? std::chrono::duration<double>(w->cur->at - w->prev->at).count() : 0.0;
        const ksvc::counter_totals* p = w->prev ? &w->prev->t : nullptr;
        std::printf("pid %ld  instance %" PRIu64 " \"%s\"  %s, %s  up %.0f s\n", w->where.pid, w->where.serial,
                    load_text(b.name, sizeof b.name).c_str(), load_text(b.backend, sizeof b.backend).c_str(),
                    load_text(b.dispatch, sizeof b.dispatch).c_str(), uptime(b));
        std::printf("ring: setup 0x%x  sq %u cq %u  fixed files %u  registered fd %s\n", b.setup_flags.load(),
                    b.sq_entries.load(), b.cq_entries.load(), b.fixed_files.load(), b.registered_ring_fd.load() ? "yes" : "no");
        const std::string notes = load_text(b.features, sizeof b.features);
        if (!notes.empty()) std::printf("fallbacks: %s\n", notes.c_str());
        std::printf("workers: %" PRIu64 " busy / %" PRIu64 " running (max %" PRIu64 "), %" PRIu64 " queued   "
                    "completions %.0f/s   ENOBUFS %" PRIu64 "   CQ overflows %" PRIu64 "   re-armed streams %" PRIu64 "\n\n",
                    b.workers_busy.load(), b.workers_total.load(), b.workers_max.load(), b.workers_queued.load(),
                    p ? rate(t.delivered, p->delivered, secs) : 0.0, t.enobufs, b.cq_overflows.load(), b.stream_rearms.load());
        std::printf("%-14s %12s %14s %10s %10s\n", "TIER", "CALLS/S", "CALLS", "FAILED", "IN FLIGHT");
        for (std::size_t i = 0; i < ksvc::tier_count; ++i)
            std::printf("%-14s %12.0f %14" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
                        std::string(ksvc::to_string(static_cast<ksvc::tier>(i))).c_str(),
                        p ? rate(t.tier_calls[i], p->tier_calls[i], secs) : 0.0, t.tier_calls[i], t.tier_failures[i],
                        in_flight(t.tier_calls[i], t.tier_done[i]));
        struct row {
            std::size_t slot;
            double r;
        };
        std::vector<row> rows;
        for (std::size_t i = 0; i < ksvc::counters_slots; ++i)
            if (t.calls[i]) rows.push_back({i, p ? rate(t.calls[i], p->calls[i], secs) : 0.0});
        std::sort(rows.begin(), rows.end(), [&](const row& a, const row& c) {
            return a.r != c.r ? a.r > c.r : t.calls[a.slot] > t.calls[c.slot];
        });
        std::printf("\n%-28s %12s %14s %10s %10s\n", "SYSCALL / OPERATION", "CALLS/S", "CALLS", "FAILED", "IN FLIGHT");
        for (std::size_t k = 0; k < rows.size() && k < o.top; ++k) {
            const std::size_t i = rows[k].slot;
            std::printf("%-28s %12.0f %14" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n", number_name(ksvc::counter_number(i)).c_str(),
                        rows[k].r, t.calls[i], t.failures[i], in_flight(t.calls[i], t.done[i]));
        }
        std::printf("\n");
    }
    std::fflush(stdout);
}

volatile sig_atomic_t quit = 0;
void on_signal(int) { quit = 1; }

//! Raw keyboard input while the screen refreshes (so 'q' quits without Enter); restored on exit.
struct raw_terminal {
    bool on = false;
    termios saved{};
    raw_terminal() {
        if (::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved) == 0) {
            termios t = saved;
            t.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
            on = ::tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
        }
    }
    ~raw_terminal() {
        if (on) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    }
};

// Waits up to `secs`; false when the user asked to quit (q, Ctrl-C, SIGTERM).
bool pause_for(double secs) {
    pollfd pf{STDIN_FILENO, POLLIN, 0};
    const bool keys = ::isatty(STDIN_FILENO);
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(secs);
    while (!quit) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count();
        if (left <= 0) return true;
        const int r = ::poll(&pf, keys ? 1 : 0, static_cast<int>(left));
        if (r > 0 && keys) {
            char c = 0;
            if (::read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q')) return false;
        }
    }
    return false;
}

std::vector<std::unique_ptr<watched>> open_all(const options& o) {
    std::vector<std::unique_ptr<watched>> ws;
    for (const auto& p : ksvc::list_published(o.pid)) {
        if (!p.alive) continue;
        try {
            ws.push_back(std::make_unique<watched>(watched{p, ksvc::counters_view(p.path), nullptr, nullptr}));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "ksvc-top: %s\n", e.what());
        }
    }
    return ws;
}

} // namespace

int main(int argc, char** argv) {
    const options o = parse_args(argc, argv);
    std::vector<std::unique_ptr<watched>> ws = open_all(o);
    if (ws.empty()) {
        if (o.pid)
            std::fprintf(stderr, "ksvc-top: no running ksvc instance of pid %ld publishes counters in %s (not a ksvc program, "
                                 "KSVC_COUNTERS=0, or another user's)\n",
                         *o.pid, ksvc::counters_directory().c_str());
        else
            std::fprintf(stderr, "ksvc-top: no running ksvc instance publishes counters in %s\n", ksvc::counters_directory().c_str());
        return 1;
    }
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    for (auto& w : ws) w->cur = take(*w->view);
    if (o.json) {
        if (o.delay > 0 && pause_for(o.delay))
            for (auto& w : ws) {
                w->prev = std::move(w->cur);
                w->cur = take(*w->view);
            }
        print_json(ws);
        return 0;
    }
    const bool tty = ::isatty(STDOUT_FILENO);
    raw_terminal term;
    for (long n = 0; o.iterations < 0 || n < o.iterations; ++n) {
        print_screen(ws, o, tty);
        if ((o.iterations >= 0 && n + 1 >= o.iterations) || !pause_for(o.delay)) break;
        for (auto& w : ws) {
            w->prev = std::move(w->cur);
            w->cur = take(*w->view);
        }
    }
    return 0;
}
