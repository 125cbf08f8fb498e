// How-to: cancellation (docs/how-to/cancellation.md). A read waits on an empty pipe; another
// thread triggers the stop token; the read completes with -ECANCELED, the pipe stays usable.
// Then a read that finishes before the stop keeps its result. Both dispatch modes.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <stop_token>
#include <thread>

#include <ksvc/executor/sys.hpp>
#include <ksvc/executor/task.hpp>
#include <ksvc/module/presets.hpp>

ksvc::task<std::int64_t> read_one(ksvc::default_instance& inst, int fd, std::stop_token stop) {
    char c;
    co_return (co_await ksvc::async(inst, ksvc::sys::read(fd, &c, 1), std::move(stop))).result;
}

int main() {
    for (ksvc::dispatch_mode mode : {ksvc::dispatch_mode::threaded, ksvc::dispatch_mode::inline_mode}) {
        ksvc::instance_options o;
        o.mode = mode;
        ksvc::default_instance inst(o);
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) return 1;
        const char* name = mode == ksvc::dispatch_mode::threaded ? "threaded" : "inline";

        // 1. Nothing to read: the stop from another thread cancels the read where it waits.
        std::stop_source stop;
        std::thread stopper([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            stop.request_stop(); // any thread; an inline loop asleep in the kernel is woken
        });
        const std::int64_t r1 = ksvc::sync_wait(inst, read_one(inst, p[0], stop.get_token()));
        stopper.join();

        // 2. A byte is there: the read completes first and a later stop changes nothing.
        std::stop_source late;
        if (::write(p[1], "x", 1) != 1) return 1;
        const std::int64_t r2 = ksvc::sync_wait(inst, read_one(inst, p[0], late.get_token()));
        late.request_stop();

        // 3. Stopped before it starts: nothing is submitted.
        std::stop_source early;
        early.request_stop();
        const std::int64_t r3 = ksvc::sync_wait(inst, read_one(inst, p[0], early.get_token()));

        ::close(p[0]);
        ::close(p[1]);
        if (r1 != -ECANCELED || r2 != 1 || r3 != -ECANCELED) {
            std::fprintf(stderr, "FAILED (%s): %lld %lld %lld\n", name, static_cast<long long>(r1),
                         static_cast<long long>(r2), static_cast<long long>(r3));
            return 1;
        }
        std::printf("%s: cancelled while waiting (-ECANCELED), kept a result that came first, submitted nothing once stopped\n", name);
    }
    return 0;
}
