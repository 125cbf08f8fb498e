#include <ksvc/module/notifiers/eventfd_notifier.hpp>

#include <cerrno>
#include <cstdint>
#include <system_error>

#include <poll.h>
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
