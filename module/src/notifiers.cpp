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

// Drain first, then clear the flag. Clearing first would let a notify() racing with us set the
// flag and write, and our read would then drain that write too: the flag stays set with the
// eventfd empty, and every later notify() is coalesced into a wake-up that never comes.
// In this order a notify() between the read and the clear is coalesced into the wake-up being
// consumed (the exchange makes its data visible to us); any later one finds the flag clear.
bool eventfd_notifier::consume() noexcept {
    std::uint64_t v = 0;
    const bool got = ::read(fd_, &v, sizeof v) == sizeof v;
    pending_.exchange(false, std::memory_order_acq_rel);
    return got;
}

bool eventfd_notifier::try_wait() noexcept { return consume(); }

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
