// io_uring_backend feature set: SQPOLL with DEFER_TASKRUN
// The twin (-DKSVC_TWIN) is the nearest valid set and must compile.
#include <ksvc/module/backends/io_uring_backend.hpp>

namespace cf {
#ifndef KSVC_TWIN
using backend = ksvc::io_uring_backend<ksvc::sqpoll<>, ksvc::single_issuer, ksvc::defer_taskrun>;
#else
using backend = ksvc::io_uring_backend<ksvc::sqpoll<>, ksvc::single_issuer>;
#endif
static_assert(sizeof(backend) > 0);
static_assert(ksvc::io_backend<backend>);
} // namespace cf
