#include <ksvc/module/notifiers/eventfd_notifier.hpp>
#include <ksvc/module/notifiers/futex_notifier.hpp>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <cstdint>
#include <system_error>

#include <linux/futex.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace ksvc {

eventfd_notifier::eventfd_notifier() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (fd_ < 0) throw std::system_error(errno, std::system_category(), "eventfd");
}

eventfd_notifier::~eventfd_notifier() {
    if (fd_ >= 0) ::close(fd_);
}

void eventfd_notifier::notify() noexcept {
    if (pending_.exchange(true, std::memory_order_acq_rel)) return; // coalesced
    const std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(fd_, &one, sizeof one);
}

// The flag is set before the eventfd is written and cleared only after a read took a value,
// so a non-zero eventfd always has the flag set: try_wait() can skip the read(2) when the flag
// is clear, which is nearly every time a loop wakes for a completion rather than a notify.
// Drain first, then clear: clearing first would let a notify() racing with us set the flag and
// write, our read would drain that write too, and the flag would stay set over an empty eventfd
// (every later notify() coalesced into a wake-up that never comes). A read that finds nothing
// leaves the flag alone: a notify() between its flag and its write will still write, and the
// next try_wait() takes it.
bool eventfd_notifier::consume() noexcept {
    std::uint64_t v = 0;
    if (::read(fd_, &v, sizeof v) != sizeof v) return false;
    pending_.exchange(false, std::memory_order_acq_rel);
    return true;
}

bool eventfd_notifier::try_wait() noexcept {
    if (!pending_.load(std::memory_order_acquire)) return false; // nothing written: no syscall
    return consume();
}

bool eventfd_notifier::wait_for_ms(int ms) noexcept {
    pollfd p{fd_, POLLIN, 0};
    for (;;) {
        const int r = ::poll(&p, 1, ms);
        if (r > 0) {
            if (consume()) return true;
            if (ms >= 0) return false; // somebody else consumed it
            continue;
        }
        if (r == 0) return false;
        if (errno != EINTR) return false;
    }
}

void eventfd_notifier::wait() noexcept { wait_for_ms(-1); }

} // namespace ksvc

// ---- futex_notifier ------------------------------------------------------------------------

namespace ksvc {
namespace {
long futex(const std::atomic<std::uint32_t>& w, int op, std::uint32_t val, const timespec* ts = nullptr) noexcept {
    return ::syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&w), op, val, ts, nullptr, 0);
}
} // namespace

futex_notifier::futex_notifier(const capabilities& c) {
    if (!c.has(opcode::futex_wait)) fallback_.emplace();
}

void futex_notifier::notify() noexcept {
    if (fallback_) return fallback_->notify();
    // One wake per burst: only the notify that made the word pending pays the syscall. A waiter
    // (a consumer in FUTEX_WAIT, or the ring's armed FUTEX_WAIT) sleeps only while it reads 0.
    if (word_.exchange(1, std::memory_order_acq_rel) == 0) futex(word_, FUTEX_WAKE_PRIVATE, INT32_MAX);
}

bool futex_notifier::try_wait() noexcept {
    if (fallback_) return fallback_->try_wait();
    return word_.load(std::memory_order_acquire) != 0 && word_.exchange(0, std::memory_order_acq_rel) != 0;
}

bool futex_notifier::wait_for_ms(int ms) noexcept {
    if (fallback_) return fallback_->wait_for_ms(ms);
    if (try_wait()) return true;
    if (ms == 0) return false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
        timespec ts{};
        const timespec* tp = nullptr;
        if (ms > 0) {
            const auto left = deadline - std::chrono::steady_clock::now();
            if (left <= std::chrono::nanoseconds::zero()) return try_wait();
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
            ts = {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
            tp = &ts;
        }
        futex(word_, FUTEX_WAIT_PRIVATE, 0, tp); // returns at once when the word is no longer 0
        if (try_wait()) return true;
    }
}

} // namespace ksvc
