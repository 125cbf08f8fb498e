// A direct descriptor (a slot of the ring's file table) is its own type: a builder that takes an
// fd refuses it at compile time, so the slot number can never be read as an fd by a syscall.
// The twin passes a plain fd and compiles.
#include <ksvc/core/operations.hpp>
#include <ksvc/executor/sys.hpp>

int main() {
#ifdef KSVC_TWIN
    int fd = 3;
#else
    ksvc::direct_fd fd{3};
#endif
    char b[1];
    const ksvc::submit_entry e = ksvc::sys::read(fd, b, 1);
    return static_cast<int>(e.nr);
}
