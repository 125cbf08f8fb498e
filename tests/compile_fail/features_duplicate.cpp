// io_uring_backend feature set: a feature listed twice
// The twin (-DKSVC_TWIN) is the nearest valid set and must compile.
#include <ksvc/module/backends/io_uring_backend.hpp>

namespace cf {
#ifndef KSVC_TWIN
using backend = ksvc::io_uring_backend<ksvc::single_issuer, ksvc::single_issuer>;
#else
using backend = ksvc::io_uring_backend<ksvc::single_issuer>;
#endif
static_assert(sizeof(backend) > 0);
static_assert(ksvc::io_backend<backend>);
} // namespace cf
